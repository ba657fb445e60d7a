import { request as httpRequest } from 'node:http';
import { createQuiesce, type QuiesceEngine, type QuiesceOptions } from '@quiesce/core';
import { contractRequest, waitFor } from '@quiesce/testkit';
import express, { type Express } from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import {
  allow,
  drop,
  type QuiesceMiddlewareOptions,
  queue,
  quiesce,
  registerRoutes,
  writes,
} from '../src/index.js';
import { listen } from './expressApp.js';

let engine: QuiesceEngine;
let server: { url: string; close(): Promise<void> } | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
  await engine?.close();
});

async function serve(
  build: (app: Express) => void,
  options: QuiesceOptions = {},
  mw: QuiesceMiddlewareOptions = {},
  before?: (app: Express) => void,
) {
  engine = createQuiesce({ soakMs: 0, heartbeatMs: 50, retryAfter: { jitterSeconds: 0 }, ...options });
  await engine.start();
  const app = express();
  before?.(app);
  app.use(quiesce(engine, mw));
  build(app);
  server = await listen(app);
  return server.url;
}

async function freeze() {
  await engine.begin({
    reason: 'test',
    message: 'Writes paused for a test',
    endsAt: new Date(Date.now() + 600_000).toISOString(),
  });
  await engine.waitForPhase('frozen');
}

const ok = (_req: unknown, res: express.Response) => {
  res.json({ ok: true });
};

describe('route helpers in mounted routers', () => {
  it('finds allow() and queue() in nested routers, with mount paths and params', async () => {
    const url = await serve((app) => {
      const api = express.Router();
      const v1 = express.Router();
      api.post('/webhooks', allow(), ok);
      v1.post('/items/:id', queue({ name: 'items.update' }), ok);
      v1.route('/tags/:tag').post(drop(), ok).delete(ok);
      api.use('/v1', v1);
      app.use('/api', api);
    });
    await freeze();
    expect((await contractRequest(url, 'POST', '/api/webhooks', { body: {} })).status).toBe(200);
    const q = await contractRequest(url, 'POST', '/api/v1/items/9?dry=1', { body: { name: 'nine' } });
    expect(q.status, q.text).toBe(202);
    const intent = await engine.getIntent(q.json().intentId);
    expect(intent).toMatchObject({
      name: 'items.update',
      payload: {
        method: 'POST',
        path: '/api/v1/items/9',
        params: { id: '9' },
        query: { dry: '1' },
        body: { name: 'nine' },
      },
    });
    expect((await contractRequest(url, 'POST', '/api/v1/tags/red', { body: {} })).status).toBe(202);
    expect((await contractRequest(url, 'DELETE', '/api/v1/tags/red')).status).toBe(503);
    // Routes in the inventory carry their full paths.
    expect(engine.inventory().map((e) => [e.name, e.policy])).toEqual([
      ['DELETE /api/v1/tags/:tag', 'block'],
      ['POST /api/v1/items/:id', 'queue'],
      ['POST /api/v1/tags/:tag', 'drop'],
      ['POST /api/webhooks', 'allow'],
    ]);
  });

  it('a route helper without the middleware in front fails loudly instead of guarding nothing', async () => {
    engine = createQuiesce();
    const app = express();
    let called = false;
    app.post('/x', allow(), (_req, res) => {
      called = true;
      res.json({});
    });
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ message: err.message });
    });
    server = await listen(app);
    const r = await contractRequest(server.url, 'POST', '/x', { body: {} });
    expect(r.status).toBe(500);
    expect(r.json().message).toMatch(/allow\(\) route helper runs without the quiesce\(engine\) middleware/);
    expect(called).toBe(false);
  });

  it('a classification rule can queue a route that has no helper; the intent is named by the route', async () => {
    const url = await serve(
      (app) => {
        app.post('/legacy/:thing', ok);
      },
      { rules: [{ method: 'POST', path: '/legacy/**', policy: 'queue' }] },
    );
    await freeze();
    const r = await contractRequest(url, 'POST', '/legacy/widget', { body: { a: 1 } });
    expect(r.status).toBe(202);
    expect((await engine.getIntent(r.json().intentId))?.name).toBe('POST /legacy/:thing');
  });
});

describe('where a helper stands', () => {
  it('handlers before queue() run first: an invalid write gets 400, not an intent', async () => {
    const seen: string[] = [];
    const valid = (req: express.Request, res: express.Response, next: express.NextFunction) => {
      seen.push('validate');
      if (typeof req.body?.text !== 'string') {
        res.status(400).json({ field: 'text' });
        return;
      }
      next();
    };
    const url = await serve(
      (app) => {
        app.use(express.json());
        app.post('/notes', valid, queue({ name: 'notes.create' }), (_req, res) => {
          seen.push('handler');
          res.status(201).json({});
        });
        app.post('/views', valid, drop(), ok);
      },
      {},
      {},
    );
    await freeze();
    const bad = await contractRequest(url, 'POST', '/notes', { body: { text: 42 } });
    expect(bad.status).toBe(400);
    const good = await contractRequest(url, 'POST', '/notes', { body: { text: 'hello' } });
    expect(good.status).toBe(202);
    expect((await engine.getIntent(good.json().intentId))?.payload).toMatchObject({
      method: 'POST',
      path: '/notes',
      body: { text: 'hello' },
    });
    expect((await contractRequest(url, 'POST', '/views', { body: {} })).status).toBe(400);
    expect((await contractRequest(url, 'POST', '/views', { body: { text: 'v' } })).status).toBe(202);
    expect(seen).toEqual(['validate', 'validate', 'validate', 'validate']);
    // Decided once each: one intent, one drop; nothing counted for the requests the validator answered.
    const { counters } = await engine.status();
    expect([counters.queued.http, counters.dropped.http]).toEqual([1, 1]);
  });

  it('a plain write is still refused before the route runs or its body is read', async () => {
    const seen: string[] = [];
    const url = await serve((app) => {
      app.use(express.json());
      app.post(
        '/w',
        (_req, _res, next) => {
          seen.push('route middleware');
          next();
        },
        ok,
      );
    });
    await freeze();
    expect((await contractRequest(url, 'POST', '/w', { body: {} })).status).toBe(503);
    expect(seen).toEqual([]);
  });
});

describe('queued bodies', () => {
  const routes = (app: Express) => {
    app.post('/q', queue({ name: 'q' }), ok);
  };

  it('uses a body parsed before the middleware', async () => {
    const url = await serve(routes, {}, {}, (app) => app.use(express.json()));
    await freeze();
    const r = await contractRequest(url, 'POST', '/q', { body: { parsed: true } });
    expect(r.status).toBe(202);
    expect((await engine.getIntent(r.json().intentId))?.payload).toMatchObject({ body: { parsed: true } });
  });

  it('reads form, text and binary bodies itself, refuses bad JSON (400) and large bodies (413)', async () => {
    const url = await serve(routes, {}, { queueBodyLimit: 64 });
    await freeze();
    const payload = async (body: string, type: string) => {
      const r = await contractRequest(url, 'POST', '/q', { headers: { 'content-type': type }, body });
      expect(r.status, r.text).toBe(202);
      return (await engine.getIntent(r.json().intentId))!.payload as { body: unknown };
    };
    expect((await payload('a=1&b=two', 'application/x-www-form-urlencoded')).body).toEqual({
      a: '1',
      b: 'two',
    });
    expect((await payload('hello', 'text/plain; charset=utf-8')).body).toBe('hello');
    expect((await payload('\u0001\u0002', 'application/octet-stream')).body).toEqual({
      encoding: 'base64',
      contentType: 'application/octet-stream',
      data: Buffer.from('\u0001\u0002').toString('base64'),
    });
    const bad = await contractRequest(url, 'POST', '/q', {
      headers: { 'content-type': 'application/json' },
      body: '{"a":',
    });
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'INVALID_INPUT', field: 'body' });
    const big = await contractRequest(url, 'POST', '/q', { body: { text: 'x'.repeat(100) } });
    expect(big.status).toBe(413);
    expect(big.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', field: 'body' });
    const long = await contractRequest(url, 'POST', '/q', {
      headers: { 'idempotency-key': 'k'.repeat(300) },
      body: {},
    });
    expect(long.status).toBe(400);
    expect(long.json()).toMatchObject({ field: 'Idempotency-Key' });
  });

  it('keeps the principal with the intent', async () => {
    const url = await serve(routes, {}, { principal: (req) => req.headers['x-user'] as string | undefined });
    await freeze();
    const r = await contractRequest(url, 'POST', '/q', { headers: { 'x-user': 'ada' }, body: { n: 1 } });
    expect((await engine.getIntent(r.json().intentId))?.principal).toBe('ada');
  });
});

describe('bypass by principal and by address', () => {
  it('lets an operator principal through', async () => {
    const url = await serve(
      (app) => app.post('/w', ok),
      { bypass: { principal: (p) => p === 'ops' } },
      { principal: (req) => req.headers['x-user'] as string | undefined },
    );
    await freeze();
    expect(
      (await contractRequest(url, 'POST', '/w', { headers: { 'x-user': 'ops' }, body: {} })).status,
    ).toBe(200);
    expect(
      (await contractRequest(url, 'POST', '/w', { headers: { 'x-user': 'ada' }, body: {} })).status,
    ).toBe(503);
  });

  it('a malformed bypass cookie is no token: the write is refused, not a 500', async () => {
    const url = await serve((app) => app.post('/w', ok), { bypass: { secret: 'bypass-secret-for-tests' } });
    await freeze();
    const r = await contractRequest(url, 'POST', '/w', {
      headers: { cookie: 'quiesce_bypass=%E0%A4%A' },
      body: {},
    });
    expect(r.status).toBe(503);
    expect(r.json()).toMatchObject({ code: 'READ_ONLY_MODE' });
  });

  it('lets an allowlisted address through', async () => {
    const url = await serve((app) => app.post('/w', ok), { bypass: { allow: ['127.0.0.0/8'] } });
    await freeze();
    expect((await contractRequest(url, 'POST', '/w', { body: {} })).status).toBe(200);
  });
});

describe('in-flight writes and read health', () => {
  it('a write whose client goes away is no longer in flight', async () => {
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => {
      entered = r;
    });
    const url = await serve((app) =>
      app.post('/slow', () => {
        entered(); // never answers
      }),
    );
    const req = httpRequest(`${url}/slow`, {
      method: 'POST',
      agent: false,
      headers: { 'content-length': '0' },
    });
    req.on('error', () => {});
    req.end();
    await inHandler;
    expect((await engine.status()).inFlight.count).toBe(1);
    req.destroy();
    await waitFor(
      'the aborted write to leave the in-flight count',
      async () => (await engine.status()).inFlight.count === 0,
    );
  });

  it('tracks a GET marked writes(), not an allow() write', async () => {
    const release: Array<() => void> = [];
    const url = await serve((app) => {
      app.get('/unsubscribe', writes(), (_req, res) => {
        release.push(() => res.json({}));
      });
      app.post('/login', allow(), (_req, res) => {
        release.push(() => res.json({}));
      });
    });
    const a = contractRequest(url, 'GET', '/unsubscribe');
    const b = contractRequest(url, 'POST', '/login', { body: {} });
    await waitFor('both requests to reach their handlers', () => release.length === 2);
    const s = await engine.status();
    expect(s.inFlight.count).toBe(1);
    expect(s.inFlight.oldest?.name).toBe('GET /unsubscribe');
    for (const r of release) r();
    await Promise.all([a, b]);
    const after = await engine.status();
    expect(after.inFlight.count).toBe(0);
    // A GET that writes is not a read: read health never hears of it.
    expect(after.readHealth.baseline.count).toBe(0);
  });

  it('reports read latency and 5xx to the read-health watcher', async () => {
    const url = await serve((app) => {
      app.get('/fine', ok);
      app.get('/broken', (_req, res) => {
        res.status(500).json({});
      });
    });
    for (let i = 0; i < 3; i++) await contractRequest(url, 'GET', '/fine');
    await contractRequest(url, 'GET', '/broken');
    const { baseline } = (await engine.status()).readHealth;
    expect(baseline.count).toBe(4);
    expect(baseline.errorRatio).toBe(0.25);
  });

  it('reportReads: false reports nothing', async () => {
    const url = await serve((app) => app.get('/fine', ok), {}, { reportReads: false });
    await contractRequest(url, 'GET', '/fine');
    expect((await engine.status()).readHealth.baseline.count).toBe(0);
  });
});

describe('refusals', () => {
  it('a large upload is refused with Connection: close instead of being drained', async () => {
    const url = await serve((app) => app.put('/files/:name', ok));
    await freeze();
    const res = await new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      const req = httpRequest(`${url}/files/big.bin`, {
        method: 'PUT',
        agent: false,
        headers: { 'content-length': String(10 * 1024 * 1024), 'content-type': 'application/octet-stream' },
      });
      req.on('response', (r) => {
        resolve({ status: r.statusCode!, connection: r.headers.connection });
        r.resume();
        req.destroy();
      });
      req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'EPIPE' ? undefined : reject(e)));
      req.write(Buffer.alloc(1024));
    });
    expect(res).toEqual({ status: 503, connection: 'close' });
  });

  it('a small refused write keeps the connection alive', async () => {
    const url = await serve((app) => app.post('/w', ok));
    await freeze();
    const r = await contractRequest(url, 'POST', '/w', {
      headers: { connection: 'keep-alive' },
      body: { a: 1 },
    });
    expect(r.status).toBe(503);
    expect(r.headers.connection).toBe('keep-alive');
  });
});

describe('inventory', () => {
  it('registers the write routes on the first request', async () => {
    const url = await serve((app) => {
      app.get('/a', ok);
      app.post('/a', ok);
      app.delete('/a/:id', drop(), ok);
      app.get('/b', writes(), ok);
      app.all('/c', ok);
    });
    expect(engine.inventory()).toEqual([]);
    await contractRequest(url, 'GET', '/a');
    await new Promise((r) => setImmediate(r));
    const byName = Object.fromEntries(engine.inventory().map((e) => [e.name, e]));
    expect(Object.keys(byName).sort()).toEqual(['* /c', 'DELETE /a/:id', 'GET /b', 'POST /a']);
    expect(byName['DELETE /a/:id']).toMatchObject({
      policy: 'drop',
      explicit: true,
      details: { helper: 'drop' },
    });
    expect(byName['GET /b']).toMatchObject({ classification: 'write', policy: 'block', explicit: true });
    expect(byName['POST /a']).toMatchObject({ policy: 'block', explicit: false });
  });

  it('a rule that decides a route makes it explicit', async () => {
    await serve(() => {}, { rules: [{ method: 'POST', path: '/metrics', policy: 'drop' }] });
    const app = express();
    app.post('/metrics', ok);
    expect(registerRoutes(engine, app)).toEqual([
      expect.objectContaining({ name: 'POST /metrics', policy: 'drop', explicit: true, source: 'express' }),
    ]);
  });
});

describe('options', () => {
  it('are checked and the failing field named', () => {
    engine = createQuiesce();
    expect(() => quiesce(engine, { queueBodyLimit: 0 })).toThrow(/queueBodyLimit/);
    expect(() => quiesce(engine, { bypassHeader: 'x-ops' } as never)).toThrow(
      /bypassHeader is read from the engine/,
    );
    expect(() => quiesce(engine, { principal: 'ada' as never })).toThrow(/principal/);
    expect(() => quiesce(engine, { reportReads: 'yes' as never })).toThrow(/reportReads/);
    expect(() => quiesce({} as never)).toThrow(/engine must be a QuiesceEngine/);
    expect(() => queue({ idempotencyKey: 'cookie' as never })).toThrow(/idempotencyKey/);
    expect(() => queue({ name: ' ' })).toThrow(/name/);
  });
});
