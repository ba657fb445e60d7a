import type { MaintenanceWindow, NoticeRecord, Phase } from './window.js';

export type NotifierEventKind = 'scheduled' | 'started' | 'extended' | 'ended' | 'closed';

/**
 * What a notifier is told. `ended` is the closure notice (after the soak); `closed` follows the
 * backfill. Times are ISO 8601 UTC.
 */
export interface NotifierEvent {
  kind: NotifierEventKind;
  window: MaintenanceWindow;
  phase: Phase;
  at: string;
}

export interface NotifierContext {
  /** This notifier's record in the window (`window.notices[name]`), e.g. the Statuspage incident id. */
  record: NoticeRecord | undefined;
  signal: AbortSignal;
  log: Logger;
}

/**
 * A way to tell people. `notify` may return data to keep in the window's record (an incident id);
 * a throw is logged, counted and recorded, and never stops or delays the freeze.
 */
export interface Notifier {
  readonly name: string;
  // biome-ignore lint/suspicious/noConfusingVoidType: a notifier with nothing to keep simply returns.
  notify(event: NotifierEvent, context: NotifierContext): Promise<Record<string, unknown> | undefined | void>;
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A logger writing one JSON line per entry to stderr. */
export function createConsoleLogger(level: 'debug' | 'info' | 'warn' | 'error' = 'info'): Logger {
  const order = { debug: 0, info: 1, warn: 2, error: 3 } as const;
  const at = (l: keyof typeof order) => (message: string, fields?: Record<string, unknown>) => {
    if (order[l] < order[level]) return;
    process.stderr.write(
      `${JSON.stringify({ level: l, time: new Date().toISOString(), msg: message, ...fields })}\n`,
    );
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
