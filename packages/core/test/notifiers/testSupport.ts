import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger, NotifierContext, NotifierEvent, NotifierEventKind } from '../../src/notifier.js';
import { type MaintenanceWindow, type Phase, windowSchema } from '../../src/window.js';

/** Time that moves only when a notifier sleeps: retries and rate-limit waits cost no real time. */
export function virtualTime(start = Date.UTC(2026, 0, 1, 9, 0, 0)) {
  let t = start;
  return {
    now: () => t,
    clock: { now: () => t },
    sleep: async (ms: number) => {
      t += ms;
    },
    advance: (ms: number) => {
      t += ms;
    },
  };
}

export function testWindow(overrides: Partial<MaintenanceWindow> = {}): MaintenanceWindow {
  return windowSchema.parse({
    id: 'win_test_1',
    reason: 'Postgres 17 upgrade',
    message: 'Editing is paused while we upgrade the database. Reading works as usual.',
    startsAt: '2026-01-01T10:00:00.000Z',
    endsAt: '2026-01-01T11:30:00.000Z',
    contact: '#ops-oncall',
    rollbackPlan: 'Fail back to the old primary',
    phase: 'scheduled',
    ...overrides,
  });
}

export interface RecordedLog {
  logger: Logger;
  entries: Array<{ level: string; message: string; fields?: Record<string, unknown> }>;
}

export function recordingLogger(): RecordedLog {
  const entries: RecordedLog['entries'] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    entries.push({ level, message, ...(fields ? { fields } : {}) });
  };
  return { entries, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

export function event(
  kind: NotifierEventKind,
  window: MaintenanceWindow,
  phase: Phase,
  at = new Date().toISOString(),
): NotifierEvent {
  return { kind, window: { ...window, phase }, phase, at };
}

export function context(
  data?: Record<string, unknown>,
  log: Logger = recordingLogger().logger,
): NotifierContext {
  return {
    record: data ? { status: 'ok', attempts: 1, updatedAt: new Date().toISOString(), data } : undefined,
    signal: new AbortController().signal,
    log,
  };
}

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Receiver {
  base: string;
  received: Received[];
  /** Statuses to answer, in order (then 200); paths under `/broken` always answer 500. */
  script: number[];
  close(): Promise<void>;
}

/** A real HTTP receiver on loopback that records every request. */
export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const script: number[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      const status = req.url?.startsWith('/broken') ? 500 : (script.shift() ?? 200);
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    script,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
