import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createQuiesce, type QuiesceEngine } from '@quiesce/core';
import { queue, quiesce, quiesceRouter } from '@quiesce/express';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../src/index.js';
import { cli, listen, startCli } from './helpers.js';

const TOKEN = 'cli-test-token-0123456789';
const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

/** A real Express app with the quiesce middleware and the admin router: what the CLI drives. */
function buildApp(engine: QuiesceEngine) {
  const notes: string[] = [];
  let release: (() => void) | null = null;
  let arrived: (() => void) | null = null;
  const app = express();
  app.use(express.json());
  app.use('/quiesce', quiesceRouter(engine, { adminToken: TOKEN }));
  app.use(quiesce(engine));
  app.get('/notes', (_req, res) => void res.json(notes));
  app.post('/notes', queue({ name: 'notes.create' }), (req, res) => {
    notes.push(req.body.text);
    res.status(201).json({ ok: true });
  });
  // A write that takes as long as the test wants: an in-flight write the freeze must wait for.
  app.post('/slow', (_req, res) => {
    release = () => res.json({ ok: true });
    arrived?.();
  });
  app.delete('/notes', (_req, res) => {
    notes.length = 0;
    res.status(204).end();
  });
  engine.handle('notes.create', (payload: { body: { text: string } }) => {
    notes.push(payload.body.text);
  });
  return {
    app,
    notes,
    release: () => release?.(),
    /** Resolves when the next POST /slow is in the handler (in flight). */
    slowArrived: () => new Promise<void>((r) => (arrived = r)),
  };
}

describe('quiesce CLI against an Express app (admin API)', () => {
  let engine: QuiesceEngine;
  let server: Server;
  let base: string;
  let app: ReturnType<typeof buildApp>;
  let target: string[];

  beforeAll(async () => {
    engine = createQuiesce({ soakMs: 100, drainDeadlineMs: 800 });
    app = buildApp(engine);
    server = createServer(app.app);
    base = await listen(server);
    target = ['--url', `${base}/quiesce`, '--token', TOKEN];
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await engine.close();
  });

  it('begin waits until frozen, then writes are refused and the status says so', async () => {
    const r = await cli([
      'begin',
      ...target,
      '--reason',
      'orders migration',
      '--message',
      'Notes are read-only',
      '--for',
      '30m',
      '--contact',
      '#ops',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/window win_\w+ began: writes are refused/);
    expect(r.stdout).toMatch(/frozen at \d{4}-.*1 live instance confirmed/);

    const refused = await fetch(`${base}/slow`, { method: 'POST' });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(60);

    const s = await cli(['status', ...target, '--json']);
    expect(s.code).toBe(EXIT.ok);
    expect(s.json.state.mode).toBe('read-only');
    expect(s.json.phase).toBe('frozen');
    expect(s.json.state.window.contact).toBe('#ops');
    expect(Date.parse(s.json.state.window.endsAt) - Date.now()).toBeGreaterThan(29 * 60_000);
    expect(s.json.counters.refused.http).toBe(1);

    const human = await cli(['status', ...target]);
    expect(human.stdout).toMatch(/mode\s+read-only/);
    expect(human.stdout).toContain('Notes are read-only');
    expect(human.stdout).toMatch(/refused 1 · queued 0/);
  });

  it('a second begin conflicts (exit 5) and names the open window', async () => {
    const r = await cli(['begin', ...target, '--reason', 'again', '--message', 'again', '--for', '5m']);
    expect(r.code).toBe(EXIT.conflict);
    expect(r.stderr).toMatch(/already frozen.*WINDOW_CONFLICT/);
  });

  it('extend moves the end; a queued write during the window is visible by its intent id', async () => {
    const before = Date.parse(engine.window!.endsAt!);
    const r = await cli(['extend', ...target, '--by', '15m', '--message', 'Back by lunch']);
    expect(r.code).toBe(EXIT.ok);
    expect(Date.parse(engine.window!.endsAt!) - before).toBe(15 * 60_000);
    expect(engine.window!.message).toBe('Back by lunch');

    const q = await fetch(`${base}/notes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'note-1' },
      body: JSON.stringify({ text: 'written during the window' }),
    });
    expect(q.status).toBe(202);
    const { intentId } = (await q.json()) as { intentId: string };
    const i = await cli(['intents', ...target, intentId, '--json']);
    expect(i.code).toBe(EXIT.ok);
    expect(i.json).toMatchObject({
      id: intentId,
      status: 'queued',
      idempotencyKey: 'note-1',
      name: 'notes.create',
    });
    const all = await cli(['intents', ...target]);
    expect(all.stdout).toMatch(/queued 1/);
    expect(all.stdout).toContain(`${intentId}  queued`);
    const listed = await cli(['intents', ...target, '--status', 'queued', '--json']);
    expect(listed.json.intents).toEqual([
      expect.objectContaining({ id: intentId, idempotencyKey: 'note-1' }),
    ]);
    const badStatus = await cli(['intents', ...target, '--status', 'done']);
    expect(badStatus.code).toBe(EXIT.usage);
    expect(badStatus.stderr).toMatch(/--status: must be one of/);
    const missing = await cli(['intents', ...target, 'int_nope']);
    expect(missing.code).toBe(EXIT.conflict);
  });

  it('inventory lists the routes and --fail-on-unclassified fails on the undecided ones', async () => {
    const r = await cli(['inventory', ...target, '--json']);
    expect(r.code).toBe(EXIT.ok);
    const names = r.json.entries.map((e: { name: string }) => e.name);
    expect(names).toEqual(expect.arrayContaining(['POST /notes', 'POST /slow', 'DELETE /notes']));
    const strict = await cli(['inventory', ...target, '--fail-on-unclassified']);
    expect(strict.code).toBe(EXIT.unclassified);
    expect(strict.stdout).toMatch(/no decided policy.*POST \/slow/);
    expect(strict.stdout).toMatch(/POST \/notes\s+write\s+queue\s+yes/);
  });

  it('end shows thaw and backfill progress until closed, and the queued write is applied', async () => {
    const r = await cli(['end', ...target, '--reason', 'migration done']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/writes are back on/);
    expect(r.stdout).toMatch(/closed at \d{4}-/);
    expect(r.stdout).toMatch(/backfill: 1\/1 intents applied, 0 failed/);
    expect(app.notes).toContain('written during the window');
    const again = await cli(['end', ...target]);
    expect(again.code).toBe(EXIT.conflict);
    expect(again.stderr).toMatch(/NO_ACTIVE_WINDOW/);
  });

  it("audit shows who did what, with the token's actor", async () => {
    const r = await cli(['audit', ...target, '--json']);
    expect(r.code).toBe(EXIT.ok);
    const actions = r.json.entries.map((e: { action: string; actor: string }) => `${e.action}:${e.actor}`);
    expect(actions).toEqual(expect.arrayContaining(['begin:admin', 'extend:admin', 'end:admin']));
    const human = await cli(['audit', ...target, '--limit', '2']);
    expect(human.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('begin names a straggler when an in-flight write outlives the drain deadline (exit 7)', async () => {
    const inFlight = app.slowArrived();
    const pending = fetch(`${base}/slow`, { method: 'POST' });
    await inFlight;
    const r = await cli(['begin', ...target, '--reason', 'r', '--message', 'm', '--for', '10m']);
    expect(r.code).toBe(EXIT.stragglers);
    expect(r.stdout).toMatch(
      /freezing: 1\/1 instances acknowledged · 1 write in flight · waiting on .*POST \/slow/,
    );
    expect(r.stdout).toMatch(/stragglers \(1\)/);
    expect(r.stdout).toMatch(/1 write still in flight, oldest POST \/slow/);
    app.release();
    expect((await pending).status).toBe(200);
    expect((await cli(['end', ...target, '--no-wait'])).code).toBe(EXIT.ok);
    await engine.waitForPhase('closed', { timeoutMs: 5000 });
  });

  it('a scheduled window (--at) is announced and cancelled by end', async () => {
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const r = await cli([
      'begin',
      ...target,
      '--reason',
      'r',
      '--message',
      'm',
      '--at',
      at,
      '--for',
      '20m',
      '--json',
    ]);
    expect(r.code).toBe(EXIT.ok);
    expect(r.json.window).toMatchObject({ phase: 'scheduled', startsAt: at });
    expect(Date.parse(r.json.window.endsAt) - Date.parse(at)).toBe(20 * 60_000);
    const e = await cli(['end', ...target]);
    expect(e.code).toBe(EXIT.ok);
    expect(e.stdout).toMatch(/cancelled/);
  });

  it('status --watch prints each change until interrupted', async () => {
    const ctrl = new AbortController();
    const watching = startCli(
      ['status', ...target, '--watch', '--interval', '50ms', '--json'],
      {},
      ctrl.signal,
    );
    await watching.printed(/"phase":"closed"/);
    await cli(['begin', ...target, '--reason', 'watch', '--message', 'watch', '--for', '5m']);
    await watching.printed(/"phase":"frozen"/);
    ctrl.abort();
    const r = await watching.result;
    expect(r.code).toBe(EXIT.ok);
    const phases = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).phase);
    expect(phases[0]).toBe('closed');
    expect(phases).toContain('frozen');
    await cli(['end', ...target, '--no-wait']);
    await engine.waitForPhase('closed', { timeoutMs: 5000 });
  });

  it('reads QUIESCE_URL / QUIESCE_TOKEN; a wrong or missing token is exit 4', async () => {
    const ok = await cli(['status'], { QUIESCE_URL: `${base}/quiesce`, QUIESCE_TOKEN: TOKEN });
    expect(ok.code).toBe(EXIT.ok);
    const wrong = await cli(['status', '--url', `${base}/quiesce`, '--token', 'not-the-token-at-all']);
    expect(wrong.code).toBe(EXIT.auth);
    expect(wrong.stderr).toMatch(/admin token is not valid/);
    const none = await cli(['status', '--url', `${base}/quiesce`]);
    expect(none.code).toBe(EXIT.auth);
    expect(none.stderr).toMatch(/--token or set QUIESCE_TOKEN/);
  });

  it('a URL that is not the router is exit 2; an unreachable app is exit 3', async () => {
    const wrongBase = await cli(['status', '--url', `${base}/nope`, '--token', TOKEN]);
    expect(wrongBase.code).toBe(EXIT.usage);
    expect(wrongBase.stderr).toMatch(/is .* the base of the app's quiesce router/);
    const closed = createServer();
    const dead = await listen(closed);
    await new Promise((r) => closed.close(r));
    const down = await cli(['status', '--url', `${dead}/quiesce`, '--token', TOKEN]);
    expect(down.code).toBe(EXIT.unreachable);
    expect(down.stderr).toMatch(/cannot reach .*ECONNREFUSED/);
  });

  it('the built bin runs as a command with the same exit codes', async () => {
    const run = promisify(execFile);
    const ok = await run(process.execPath, [BIN, 'status', '--json'], {
      env: { ...process.env, QUIESCE_URL: `${base}/quiesce`, QUIESCE_TOKEN: TOKEN },
    });
    expect(JSON.parse(ok.stdout).phase).toBe('closed');
    const bad = await run(process.execPath, [
      BIN,
      'extend',
      '--url',
      `${base}/quiesce`,
      '--token',
      TOKEN,
      '--by',
      '10',
    ]).catch((e) => e);
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.stderr).toMatch(/--by: "10" is not a duration/);
  });
});
