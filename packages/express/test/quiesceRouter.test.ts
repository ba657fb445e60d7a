import { request as httpRequest } from 'node:http';
import { createQuiesce, type QuiesceEngine } from '@quiesce/core';
import { contractRequest } from '@quiesce/testkit';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { allow, queue, quiesce, quiesceRouter } from '../src/index.js';
import { ADMIN_TOKEN, listen } from './expressApp.js';

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const inTenMinutes = () => new Date(Date.now() + 600_000).toISOString();

let engine: QuiesceEngine;
let app: { url: string; close(): Promise<void> };
let router: ReturnType<typeof quiesceRouter>;

async function start(options: Partial<Parameters<typeof quiesceRouter>[1]> = {}) {
  engine = createQuiesce({ soakMs: 0, heartbeatMs: 50, retryAfter: { jitterSeconds: 0 } });
  await engine.start();
  const a = express();
  a.use(quiesce(engine));
  router = quiesceRouter(engine, {
    adminToken: { alice: ADMIN_TOKEN, deploybot: 'deploybot-token-abcdef' },
    ...options,
  } as never);
  a.use('/quiesce', router);
  a.post('/orders', express.json(), (req, res) => {
    res.json({ ok: true, body: req.body });
  });
  a.post('/orders/:id/notes', queue({ name: 'notes.add' }), (_req, res) => {
    res.json({ ok: true });
  });
  a.post('/login', allow(), (_req, res) => {
    res.json({ ok: true });
  });
  app = await listen(a);
}

afterEach(async () => {
  router?.close();
  await app?.close();
  await engine?.close();
});

describe('GET /state', () => {
  beforeEach(() => start());

  it('answers the public state with nulls when there is no window', async () => {
    const asked = Date.now();
    const r = await contractRequest(app.url, 'GET', '/quiesce/state');
    const answered = Date.now();
    expect(r.status).toBe(200);
    const body = r.json();
    expect(body).toEqual({
      mode: 'read-write',
      phase: null,
      version: engine.state.version,
      windowId: null,
      message: null,
      reason: null,
      startsAt: null,
      endsAt: null,
      endedAt: null,
      contact: null,
      serverTime: expect.any(String),
    });
    // The server's clock at the time of the answer (bounds, not a tolerance a busy machine could exceed).
    expect(Date.parse(body.serverTime)).toBeGreaterThanOrEqual(Math.floor(asked / 1000) * 1000);
    expect(Date.parse(body.serverTime)).toBeLessThanOrEqual(answered);
    expect(r.headers['cache-control']).toBe('public, max-age=5');
    expect(r.headers.etag).toMatch(/^"[\w-]+"$/);
  });

  it('answers 304 on a matching If-None-Match, and a new ETag once the state changes', async () => {
    const first = await contractRequest(app.url, 'GET', '/quiesce/state');
    const etag = String(first.headers.etag);
    const again = await contractRequest(app.url, 'GET', '/quiesce/state', {
      headers: { 'if-none-match': `W/${etag}, "other"` },
    });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    expect(again.headers.etag).toBe(etag);
    expect(again.headers['cache-control']).toBe('public, max-age=5');

    const w = await engine.begin({
      reason: 'reindex',
      message: 'Reindexing search',
      endsAt: inTenMinutes(),
      contact: '#ops',
    });
    const changed = await contractRequest(app.url, 'GET', '/quiesce/state', {
      headers: { 'if-none-match': etag },
    });
    expect(changed.status).toBe(200);
    expect(changed.headers.etag).not.toBe(etag);
    expect(changed.json()).toMatchObject({
      mode: 'read-only',
      phase: expect.stringMatching(/^(freezing|frozen)$/),
      windowId: w.id,
      message: 'Reindexing search',
      reason: 'reindex',
      startsAt: w.startsAt,
      endsAt: w.endsAt,
      endedAt: null,
      contact: '#ops',
    });
  });

  it('takes a max-age of at most 5 seconds', async () => {
    await app.close();
    router.close();
    await engine.close();
    await start({ stateMaxAgeSeconds: 2 });
    const r = await contractRequest(app.url, 'GET', '/quiesce/state');
    expect(r.headers['cache-control']).toBe('public, max-age=2');
    expect(() => quiesceRouter(engine, { adminToken: ADMIN_TOKEN, stateMaxAgeSeconds: 6 })).toThrow(
      /stateMaxAgeSeconds/,
    );
  });
});

interface SseClient {
  events: Array<{ event?: string; id?: string; data?: string; retry?: string; comment?: string }>;
  waitFor(
    pred: (e: SseClient['events'][number]) => boolean,
    timeoutMs?: number,
  ): Promise<SseClient['events'][number]>;
  ended: Promise<void>;
  close(): void;
  headers: Promise<Record<string, string | string[] | undefined>>;
}

function sse(url: string): SseClient {
  const events: SseClient['events'] = [];
  const waiters = new Set<() => void>();
  let buffer = '';
  let endResolve!: () => void;
  const ended = new Promise<void>((r) => {
    endResolve = r;
  });
  let headersResolve!: (h: Record<string, string | string[] | undefined>) => void;
  const headers = new Promise<Record<string, string | string[] | undefined>>((r) => {
    headersResolve = r;
  });
  const req = httpRequest(url, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
    headersResolve({ ...res.headers, status: String(res.statusCode) });
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\n\n'); i !== -1; i = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        const e: SseClient['events'][number] = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) e.comment = line.slice(1).trim();
          else {
            const c = line.indexOf(':');
            const field = line.slice(0, c) as 'event' | 'id' | 'data' | 'retry';
            e[field] = line.slice(c + 1).replace(/^ /, '');
          }
        }
        events.push(e);
        for (const w of waiters) w();
      }
    });
    res.on('end', endResolve);
    res.on('close', endResolve);
  });
  req.on('error', () => endResolve());
  req.end();
  return {
    events,
    headers,
    ended,
    close: () => req.destroy(),
    waitFor(pred, timeoutMs = 3000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(pred);
          if (found) {
            waiters.delete(check);
            clearTimeout(t);
            resolve(found);
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(events)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

describe('GET /events', () => {
  beforeEach(() => start({ heartbeatMs: 100 }));

  it('sends retry, the state on connect, each change once, and pings', async () => {
    const client = sse(`${app.url}/quiesce/events`);
    const headers = await client.headers;
    expect(headers['content-type']).toMatch(/^text\/event-stream/);
    expect(headers['cache-control']).toContain('no-cache');
    const first = await client.waitFor((e) => e.event === 'state');
    expect(client.events[0]).toEqual({ retry: '2000' });
    const initial = JSON.parse(first.data!);
    expect(initial).toMatchObject({
      mode: 'read-write',
      phase: null,
      windowId: null,
      serverTime: expect.any(String),
    });
    expect(first.id).toBe(String(initial.version));

    const w = await engine.begin({
      reason: 'migration',
      message: 'Migrating orders',
      endsAt: inTenMinutes(),
    });
    await client.waitFor((e) => e.event === 'state' && JSON.parse(e.data!).phase === 'freezing');
    await client.waitFor((e) => e.event === 'state' && JSON.parse(e.data!).phase === 'frozen');
    await engine.extend({ message: 'Migrating orders (almost done)' });
    await client.waitFor(
      (e) => e.event === 'state' && JSON.parse(e.data!).message === 'Migrating orders (almost done)',
    );
    await engine.end();
    await client.waitFor((e) => e.event === 'state' && JSON.parse(e.data!).phase === 'closed');
    await client.waitFor((e) => e.comment === 'ping');

    const states = client.events.filter((e) => e.event === 'state').map((e) => JSON.parse(e.data!));
    // Window record updates (notices, the read-health report) also move the version: a phase may repeat.
    const phases = states.map((s) => s.phase).filter((p, i, all) => i === 0 || p !== all[i - 1]);
    expect(phases).toEqual([null, 'freezing', 'frozen', 'thawing', 'backfilling', 'closed']);
    expect(states.filter((s) => s.message === 'Migrating orders (almost done)').length).toBeGreaterThan(0);
    // Never the same view twice: each event has a newer version.
    expect(states.every((s, i) => i === 0 || s.version > states[i - 1].version)).toBe(true);
    expect(states.slice(1).every((s) => s.windowId === w.id)).toBe(true);
    client.close();
  });

  it('unsubscribes when the client goes away, and router.close() ends open streams', async () => {
    const a = sse(`${app.url}/quiesce/events`);
    const b = sse(`${app.url}/quiesce/events`);
    await a.waitFor((e) => e.event === 'state');
    await b.waitFor((e) => e.event === 'state');
    a.close();
    await a.ended;
    router.close();
    await b.ended;
    // A stream is not a slow read: the read-health watcher never hears of it.
    expect((await engine.status()).readHealth.baseline.count).toBe(0);
    const count = b.events.length;
    // A change after the streams closed reaches nobody and throws nothing.
    // Listeners run in the order they subscribed: once ours has heard the change, a stream still
    // subscribed would have been pushed it.
    const broadcast = new Promise<void>((resolve) => {
      const off = engine.on('state', () => {
        off();
        resolve();
      });
    });
    await engine.begin({ reason: 'after close', message: 'x', endsAt: inTenMinutes() });
    await broadcast;
    expect(b.events.length).toBe(count);
  });
});

describe('GET /intents/:id', () => {
  beforeEach(() => start());

  it('shows a queued write without its payload, and 404 for an unknown id', async () => {
    await engine.begin({ reason: 'r', message: 'm', endsAt: inTenMinutes() });
    await engine.waitForPhase('frozen');
    const q = await contractRequest(app.url, 'POST', '/orders/42/notes', {
      headers: { 'idempotency-key': 'note-1' },
      body: { text: 'secret note' },
    });
    expect(q.status).toBe(202);
    const { statusUrl, intentId } = q.json();
    expect(statusUrl).toBe(`/quiesce/intents/${intentId}`);
    const s = await contractRequest(app.url, 'GET', statusUrl);
    expect(s.status).toBe(200);
    expect(s.json()).toEqual({
      id: intentId,
      name: 'notes.add',
      status: 'queued',
      idempotencyKey: 'note-1',
      windowId: engine.window!.id,
      createdAt: expect.any(String),
      attempts: 0,
      appliedAt: null,
    });
    expect(s.text).not.toContain('secret note');
    const intent = await engine.getIntent(intentId);
    expect(intent!.payload).toEqual({
      method: 'POST',
      path: '/orders/42/notes',
      params: { id: '42' },
      query: {},
      body: { text: 'secret note' },
    });
    const missing = await contractRequest(app.url, 'GET', '/quiesce/intents/nope');
    expect(missing.status).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'NOT_FOUND', status: 404 });
  });

  it('GET /admin/intents lists intents without payloads, filtered by status; bad queries name the field', async () => {
    await engine.begin({ reason: 'r', message: 'm', endsAt: inTenMinutes() });
    await engine.waitForPhase('frozen');
    for (const key of ['a', 'b']) {
      const q = await contractRequest(app.url, 'POST', '/orders/42/notes', {
        headers: { 'idempotency-key': key },
        body: { text: `secret ${key}` },
      });
      expect(q.status).toBe(202);
    }
    const list = await contractRequest(app.url, 'GET', '/quiesce/admin/intents?status=queued', {
      headers: auth,
    });
    expect(list.status).toBe(200);
    expect(list.json().intents.map((i: { idempotencyKey: string }) => i.idempotencyKey)).toEqual(['a', 'b']);
    expect(list.text).not.toContain('secret');
    const none = await contractRequest(app.url, 'GET', '/quiesce/admin/intents?status=applied', {
      headers: auth,
    });
    expect(none.json().intents).toEqual([]);
    const bad = await contractRequest(app.url, 'GET', '/quiesce/admin/intents?status=done', {
      headers: auth,
    });
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'INVALID_INPUT', field: 'status' });
    const noAuth = await contractRequest(app.url, 'GET', '/quiesce/admin/intents');
    expect(noAuth.status).toBe(401);
  });
});

describe('admin routes', () => {
  beforeEach(() => start());

  it('401 without a token (with WWW-Authenticate), 403 with a wrong one', async () => {
    const none = await contractRequest(app.url, 'GET', '/quiesce/admin/status');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="quiesce"');
    expect(none.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(none.json()).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
    const basic = await contractRequest(app.url, 'GET', '/quiesce/admin/status', {
      headers: { authorization: 'Basic Zm9vOmJhcg==' },
    });
    expect(basic.status).toBe(401);
    const wrong = await contractRequest(app.url, 'GET', '/quiesce/admin/status', {
      headers: { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}X` },
    });
    expect(wrong.status).toBe(403);
    expect(wrong.json()).toMatchObject({ code: 'FORBIDDEN' });
    const post = await contractRequest(app.url, 'POST', '/quiesce/admin/windows', {
      body: { reason: 'r', message: 'm' },
    });
    expect(post.status).toBe(401);
    expect(engine.window).toBeNull();
  });

  it('begins, conflicts, extends, ends a window; the audit names the actor', async () => {
    const begun = await contractRequest(app.url, 'POST', '/quiesce/admin/windows', {
      headers: auth,
      body: {
        reason: 'db upgrade',
        message: 'Upgrading Postgres',
        durationMinutes: 30,
        contact: '#ops',
        rollbackPlan: 'restore snapshot',
      },
    });
    expect(begun.status, begun.text).toBe(201);
    const w = begun.json().window;
    expect(w).toMatchObject({
      reason: 'db upgrade',
      message: 'Upgrading Postgres',
      phase: 'freezing',
      openedBy: 'alice',
      contact: '#ops',
    });
    expect(Date.parse(w.endsAt) - Date.now()).toBeGreaterThan(29 * 60_000);
    expect(engine.readOnly).toBe(true);

    // Admin routes stay open during the window (the middleware is in front of the router).
    const conflict = await contractRequest(app.url, 'POST', '/quiesce/admin/windows', {
      headers: { authorization: 'Bearer deploybot-token-abcdef' },
      body: { reason: 'another', message: 'another' },
    });
    expect(conflict.status).toBe(409);
    expect(conflict.json()).toMatchObject({ code: 'WINDOW_CONFLICT', windowId: w.id });

    const ext = await contractRequest(app.url, 'PATCH', '/quiesce/admin/windows/current', {
      headers: auth,
      body: { extendMinutes: 15, message: 'Upgrading Postgres (vacuum)' },
    });
    expect(ext.status, ext.text).toBe(200);
    expect(Date.parse(ext.json().window.endsAt) - Date.parse(w.endsAt)).toBe(15 * 60_000);
    expect(ext.json().window.message).toBe('Upgrading Postgres (vacuum)');

    const status = await contractRequest(app.url, 'GET', '/quiesce/admin/status', { headers: auth });
    expect(status.status).toBe(200);
    expect(status.json()).toMatchObject({
      readOnly: true,
      state: { window: { id: w.id } },
      instanceId: engine.instanceId,
    });

    const ended = await contractRequest(app.url, 'POST', '/quiesce/admin/windows/current/end', {
      headers: { authorization: 'Bearer deploybot-token-abcdef' },
      body: { reason: 'done' },
    });
    expect(ended.status, ended.text).toBe(200);
    expect(ended.json().window.phase).toBe('thawing');
    expect(engine.readOnly).toBe(false);

    const again = await contractRequest(app.url, 'POST', '/quiesce/admin/windows/current/end', {
      headers: auth,
    });
    expect(again.status).toBe(409);
    expect(again.json()).toMatchObject({ code: 'NO_ACTIVE_WINDOW' });

    const audit = await contractRequest(app.url, 'GET', `/quiesce/admin/audit?windowId=${w.id}&limit=50`, {
      headers: auth,
    });
    expect(audit.status).toBe(200);
    const entries = audit.json().entries as Array<{ action: string; actor: string }>;
    expect(entries.filter((e) => e.action !== 'phase').map((e) => [e.action, e.actor])).toEqual([
      ['begin', 'alice'],
      ['extend', 'alice'],
      ['end', 'deploybot'],
    ]);
  });

  it('schedules with startsAt', async () => {
    const startsAt = new Date(Date.now() + 3_600_000).toISOString();
    const r = await contractRequest(app.url, 'POST', '/quiesce/admin/windows', {
      headers: auth,
      body: { reason: 'planned', message: 'Planned maintenance', startsAt, durationMinutes: 60 },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.json().window).toMatchObject({
      phase: 'scheduled',
      startsAt,
      endsAt: new Date(Date.parse(startsAt) + 3_600_000).toISOString(),
    });
    expect(engine.readOnly).toBe(false);
    const state = await contractRequest(app.url, 'GET', '/quiesce/state');
    expect(state.json()).toMatchObject({ mode: 'read-write', phase: 'scheduled', startsAt });
  });

  it('validates bodies and names the field (400), refuses oversized bodies (413)', async () => {
    const cases: Array<[string, string, unknown, string]> = [
      ['POST', '/quiesce/admin/windows', { message: 'm' }, 'reason'],
      ['POST', '/quiesce/admin/windows', { reason: 'r', message: 'm', endsAt: 'tomorrow' }, 'endsAt'],
      [
        'POST',
        '/quiesce/admin/windows',
        { reason: 'r', message: 'm', durationMinutes: -5 },
        'durationMinutes',
      ],
      [
        'POST',
        '/quiesce/admin/windows',
        { reason: 'r', message: 'm', durationMinutes: '30' },
        'durationMinutes',
      ],
      [
        'POST',
        '/quiesce/admin/windows',
        { reason: 'r', message: 'm', endsAt: inTenMinutes(), durationMinutes: 5 },
        'durationMinutes',
      ],
      ['POST', '/quiesce/admin/windows', { reason: 'r', message: 'm', colour: 'red' }, 'colour'],
      [
        'POST',
        '/quiesce/admin/windows',
        { reason: 'r', message: 'm', endsAt: new Date(Date.now() - 60_000).toISOString() },
        'endsAt',
      ],
      ['POST', '/quiesce/admin/windows', [1, 2], 'body'],
      ['PATCH', '/quiesce/admin/windows/current', { extendMinutes: 0 }, 'extendMinutes'],
      ['POST', '/quiesce/admin/windows/current/end', { reason: 42 }, 'reason'],
    ];
    for (const [method, path, body, field] of cases) {
      const r = await contractRequest(app.url, method, path, { headers: auth, body });
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}: ${r.text}`).toBe(400);
      expect(r.json(), JSON.stringify(body)).toMatchObject({ code: 'INVALID_INPUT', field });
      expect(r.json().detail).toContain(field);
    }
    const notJson = await contractRequest(app.url, 'POST', '/quiesce/admin/windows', {
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"reason": ',
    });
    expect(notJson.status).toBe(400);
    expect(notJson.json()).toMatchObject({ field: 'body' });
    const form = await contractRequest(app.url, 'POST', '/quiesce/admin/windows', {
      headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'reason=r&message=m',
    });
    expect(form.status).toBe(400);
    expect(form.json().detail).toMatch(/application\/json/);
    const big = await contractRequest(app.url, 'POST', '/quiesce/admin/windows', {
      headers: auth,
      body: { reason: 'r', message: 'x'.repeat(20_000) },
    });
    expect(big.status).toBe(413);
    expect(big.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', status: 413 });
    const badLimit = await contractRequest(app.url, 'GET', '/quiesce/admin/audit?limit=0', { headers: auth });
    expect(badLimit.status).toBe(400);
    expect(badLimit.json()).toMatchObject({ field: 'limit' });
    expect(engine.window).toBeNull();
  });

  it('lists the inventory with the unclassified write routes', async () => {
    const r = await contractRequest(app.url, 'GET', '/quiesce/admin/inventory', { headers: auth });
    expect(r.status).toBe(200);
    const { entries, unclassified } = r.json();
    const byName = Object.fromEntries(entries.map((e: { name: string }) => [e.name, e]));
    expect(byName['POST /orders']).toMatchObject({
      policy: 'block',
      explicit: false,
      source: 'express',
      classification: 'write',
    });
    expect(byName['POST /orders/:id/notes']).toMatchObject({
      policy: 'queue',
      explicit: true,
      path: '/orders/:id/notes',
    });
    expect(byName['POST /login']).toMatchObject({ policy: 'allow', explicit: true });
    expect(byName['POST /quiesce/admin/windows']).toMatchObject({ policy: 'allow', explicit: true });
    expect(byName['GET /quiesce/state']).toBeUndefined();
    expect(unclassified.map((e: { name: string }) => e.name)).toEqual(['POST /orders']);
  });

  it('options are checked and the failing field named', () => {
    expect(() => quiesceRouter(engine, {} as never)).toThrow(/adminToken is required/);
    expect(() => quiesceRouter(engine, { adminToken: 'short' })).toThrow(
      /adminToken must be a string of at least 16/,
    );
    expect(() => quiesceRouter(engine, { adminToken: { bob: 'short' } })).toThrow(/adminToken\.bob/);
    expect(() => quiesceRouter(engine, { adminToken: ADMIN_TOKEN, heartbeatMs: 0 })).toThrow(/heartbeatMs/);
    expect(() => quiesceRouter({} as never, { adminToken: ADMIN_TOKEN })).toThrow(/engine/);
    expect(() => quiesceRouter(engine, { admin: false })).not.toThrow();
  });

  it('works in front of the middleware too', async () => {
    await app.close();
    router.close();
    await engine.close();
    engine = createQuiesce();
    const a = express();
    router = quiesceRouter(engine, { adminToken: ADMIN_TOKEN });
    a.use('/quiesce', router);
    a.use(quiesce(engine));
    app = await listen(a);
    const body = { reason: 'r', message: 'm', durationMinutes: 5 };
    expect(
      (await contractRequest(app.url, 'POST', '/quiesce/admin/windows', { headers: auth, body })).status,
    ).toBe(201);
    await engine.waitForPhase('frozen');
    const ended = await contractRequest(app.url, 'POST', '/quiesce/admin/windows/current/end', {
      headers: auth,
    });
    expect(ended.status).toBe(200);
  });

  it('admin: false leaves the admin routes out', async () => {
    await app.close();
    router.close();
    await engine.close();
    engine = createQuiesce();
    const a = express();
    router = quiesceRouter(engine, { admin: false });
    a.use('/quiesce', router);
    app = await listen(a);
    expect((await contractRequest(app.url, 'GET', '/quiesce/admin/status', { headers: auth })).status).toBe(
      404,
    );
    expect((await contractRequest(app.url, 'GET', '/quiesce/state')).status).toBe(200);
  });
});
