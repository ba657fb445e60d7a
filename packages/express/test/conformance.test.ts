import { createMemoryIntentQueue, createQuiesce, type IntentQueue, type QuiesceEngine } from '@quiesce/core';
import { createPostgresStore } from '@quiesce/postgres';
import { contractRequest, POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import express from 'express';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { queue as queueRoute, quiesce, quiesceRouter } from '../src/index.js';
import { ADMIN_TOKEN, listen } from './expressApp.js';

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
let engine: QuiesceEngine;
let app: { url: string; close(): Promise<void> };
let router: ReturnType<typeof quiesceRouter>;

beforeEach(async () => {
  engine = createQuiesce({ soakMs: 0, heartbeatMs: 50 });
  await engine.start();
  const a = express();
  a.use(quiesce(engine));
  router = quiesceRouter(engine, { adminToken: ADMIN_TOKEN });
  a.use('/quiesce', router);
  a.post('/orders', (_req, res) => {
    res.json({ ok: true });
  });
  app = await listen(a);
});

afterEach(async () => {
  router?.close();
  await app?.close();
  await engine?.close();
});

const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = auth) =>
  contractRequest(app.url, method, path, { headers, ...(body === undefined ? {} : { body }) });

describe('the admin surface is never refused by its own window (issue #15)', () => {
  beforeEach(async () => {
    await engine.begin({ reason: 'r', message: 'Back soon.' });
  });

  it.each([
    ['PUT', '/quiesce/admin/windows', 'POST'],
    ['DELETE', '/quiesce/admin/windows/current', 'PATCH'],
    ['GET', '/quiesce/admin/windows/current/end', 'POST'],
    ['POST', '/quiesce/admin/status', 'GET, HEAD'],
    ['DELETE', '/quiesce/admin/audit', 'GET, HEAD'],
    ['POST', '/quiesce/state', 'GET, HEAD'],
    ['PUT', '/quiesce/intents/int_1', 'GET, HEAD'],
  ])('%s %s → 405 with Allow: %s and a problem body', async (method, path, allowed) => {
    const r = await call(method, path, method === 'GET' ? undefined : {});
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe(allowed);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(r.json()).toMatchObject({ status: 405, code: 'METHOD_NOT_ALLOWED' });
  });

  it('OPTIONS answers 204 with Allow, without a token', async () => {
    const r = await call('OPTIONS', '/quiesce/admin/windows/current', undefined, {});
    expect(r.status).toBe(204);
    expect(r.headers.allow).toBe('PATCH');
  });

  it('unknown windows and admin paths → 404; without a token 401 first', async () => {
    for (const [method, path] of [
      ['PATCH', '/quiesce/admin/windows/w_123'],
      ['POST', '/quiesce/admin/windows/w_123/end'],
      ['DELETE', '/quiesce/admin/windows/w_123'],
      ['POST', '/quiesce/admin/nothing-here'],
    ] as const) {
      const r = await call(method, path, {});
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.json()).toMatchObject({ code: 'NOT_FOUND' });
      expect((await call(method, path, {}, {})).status).toBe(401);
    }
  });

  it('the app outside the router is still refused', async () => {
    expect((await call('POST', '/orders', {})).status).toBe(503);
  });
});

describe('times and text at the admin API (issue #15)', () => {
  it.each(['2030', '12/25/2030', 'Mon, 01 Jan 2035 00:00:00 GMT', 'March 7, 2035', '2035-01-01T00:00:00'])(
    'endsAt/startsAt %j → 400 naming the field with an example; nothing stored',
    async (bad) => {
      const before = await engine.status();
      for (const field of ['endsAt', 'startsAt']) {
        const r = await call('POST', '/quiesce/admin/windows', { reason: 'r', message: 'm', [field]: bad });
        expect(r.status).toBe(400);
        expect(r.json()).toMatchObject({ code: 'INVALID_INPUT', field });
        expect(r.json().detail).toContain('2035-01-01T09:30:00Z');
      }
      expect((await engine.status()).state.version).toBe(before.state.version);
      expect(await engine.audit()).toEqual([]);
    },
  );

  it('accepts any offset and stores UTC', async () => {
    const end = new Date(Date.now() + 3 * 3600_000);
    const local = new Date(end.getTime() + 5.5 * 3600_000).toISOString().slice(0, 19);
    const r = await call('POST', '/quiesce/admin/windows', {
      reason: 'r',
      message: 'm',
      endsAt: `${local}+05:30`,
    });
    expect(r.status).toBe(201);
    expect(r.json().window.endsAt).toBe(`${end.toISOString().slice(0, 19)}.000Z`);
    const p = await call('PATCH', '/quiesce/admin/windows/current', { endsAt: '2035-01-01T00:00:00' });
    expect(p.json()).toMatchObject({ code: 'INVALID_INPUT', field: 'endsAt' });
  });

  it.each([
    [{ reason: 'a\u0000b', message: 'm' }, 'reason'],
    [{ reason: 'r', message: 'x\ud800y' }, 'message'],
    [{ reason: 'r', message: 'm', contact: '\udfff' }, 'contact'],
  ])('unstorable text %j → 400 naming %s', async (body, field) => {
    const r = await call('POST', '/quiesce/admin/windows', body);
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ code: 'INVALID_INPUT', field });
    expect(engine.state.version).toBe(0);
  });
});

describe('Idempotency-Key through Express (issue #15)', () => {
  it('the same key while the first request is still being stored → 409 problem; then the same intent', async () => {
    const inner = createMemoryIntentQueue();
    let entered!: () => void;
    const reached = new Promise<void>((r) => {
      entered = r;
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const queue: IntentQueue = {
      ...inner,
      kind: 'gated',
      async enqueue(input) {
        entered();
        await gate;
        return inner.enqueue(input);
      },
    };
    const e = createQuiesce({ soakMs: 0, intentQueue: queue });
    await e.start();
    const a = express();
    a.use(quiesce(e));
    a.post('/notes', queueRoute({ name: 'notes.add', idempotencyKey: 'header' }), (_req, res) => {
      res.json({ ran: true });
    });
    const server = await listen(a);
    try {
      await e.begin({ reason: 'r', message: 'm' });
      const headers = { 'idempotency-key': '"note-42"' };
      const missing = await contractRequest(server.url, 'POST', '/notes', { body: { n: 1 } });
      expect(missing.status).toBe(400);
      expect(missing.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REQUIRED', field: 'Idempotency-Key' });
      const first = contractRequest(server.url, 'POST', '/notes', { headers, body: { n: 1 } });
      await reached;
      const second = await contractRequest(server.url, 'POST', '/notes', { headers, body: { n: 1 } });
      expect(second.status).toBe(409);
      expect(second.headers['content-type']).toBe('application/problem+json');
      expect(second.json()).toMatchObject({ code: 'IDEMPOTENCY_IN_PROGRESS', field: 'Idempotency-Key' });
      release();
      const r1 = await first;
      expect(r1.status).toBe(202);
      const again = await contractRequest(server.url, 'POST', '/notes', { headers, body: { n: 1 } });
      expect(again.json()).toMatchObject({ intentId: r1.json().intentId, created: false });
      const other = await contractRequest(server.url, 'POST', '/notes', { headers, body: { n: 2 } });
      expect(other.status).toBe(422);
      expect(other.json()).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    } finally {
      release();
      await server.close();
      await e.close();
    }
  });
});

const pgUp = await serviceAvailable('postgres', '@quiesce/express text checks on the PostgreSQL store');
describe.skipIf(!pgUp)('text the database cannot hold, on the PostgreSQL store (issue #15)', () => {
  it('NUL or a lone surrogate in reason/message is 400 naming the field, not 503 STORE_UNAVAILABLE', async () => {
    const schema = uniqueName('qconftext');
    const e = createQuiesce({
      store: createPostgresStore({ connectionString: POSTGRES_URL, schema }),
      soakMs: 0,
    });
    await e.start();
    const a = express();
    a.use(quiesce(e));
    const r = quiesceRouter(e, { adminToken: ADMIN_TOKEN });
    a.use('/quiesce', r);
    const server = await listen(a);
    try {
      for (const [body, field] of [
        [{ reason: 'a\u0000b', message: 'm' }, 'reason'],
        [{ reason: 'r', message: 'back \ud800soon' }, 'message'],
      ] as const) {
        const res = await contractRequest(server.url, 'POST', '/quiesce/admin/windows', {
          headers: auth,
          body,
        });
        expect(res.status).toBe(400);
        expect(res.json()).toMatchObject({ code: 'INVALID_INPUT', field });
      }
      expect((await e.status()).store.healthy).toBe(true);
      expect(e.state.version).toBe(0);
    } finally {
      r.close();
      await server.close();
      await e.close();
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  });
});
