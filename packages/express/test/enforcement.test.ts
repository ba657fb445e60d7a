import { createBypassToken, createQuiesce, type QuiesceEngine, type QuiesceOptions } from '@quiesce/core';
import { rawRequest } from '@quiesce/testkit';
import express, { type Express } from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { allow, queue, quiesce } from '../src/index.js';
import { listen } from './expressApp.js';

/* The cases of issue #11, tried from outside as a client would, against a real Express 5 app. */

let engine: QuiesceEngine;
let server: { url: string; close(): Promise<void> } | undefined;
const ran: string[] = [];

afterEach(async () => {
  await server?.close();
  server = undefined;
  await engine?.close();
  ran.length = 0;
});

const handler =
  (name: string) =>
  (_req: unknown, res: express.Response): void => {
    ran.push(name);
    res.json({ ran: name });
  };

async function start(build: () => Express, options: QuiesceOptions = {}) {
  engine = createQuiesce({ soakMs: 0, heartbeatMs: 50, retryAfter: { jitterSeconds: 0 }, ...options });
  await engine.start();
  server = await listen(build());
  await engine.begin({
    reason: 'test',
    message: 'Paused for a test',
    endsAt: new Date(Date.now() + 600_000).toISOString(),
  });
  await engine.waitForPhase('frozen');
  return server.url;
}

describe('a GET that a rule declares a write (#11)', () => {
  it('stays refused as HEAD, in upper case, with a trailing slash and in absolute-form', async () => {
    const url = await start(
      () => {
        const outer = express();
        outer.use(quiesce(engine));
        outer.get('/unsubscribe', handler('unsubscribe'));
        return outer;
      },
      { rules: [{ surface: 'http', method: 'GET', path: '/unsubscribe', classification: 'write' }] },
    );
    for (const [method, target] of [
      ['GET', '/unsubscribe?t=1'],
      ['HEAD', '/unsubscribe'],
      ['GET', '/UNSUBSCRIBE'],
      ['GET', '/unsubscribe/'],
      ['GET', `${url}/unsubscribe`],
      ['GET', '/%75nsubscribe'],
    ] as const) {
      const res = await rawRequest(url, method, target);
      expect(res.status, `${method} ${target}`).toBe(503);
    }
    expect(ran).toEqual([]);
  });
});

describe('allow rules and dot segments (#11)', () => {
  it('an allow rule for /hooks/** never lets a path with an upward segment through', async () => {
    const url = await start(
      () => {
        const outer = express();
        outer.use(quiesce(engine));
        outer.post('/hooks/*rest', handler('hooks'));
        outer.post('/orders', handler('orders'));
        return outer;
      },
      { rules: [{ surface: 'http', method: 'POST', path: '/hooks/**', policy: 'allow' }] },
    );
    expect((await rawRequest(url, 'POST', '/hooks/github', { body: '{}' })).status).toBe(200);
    for (const target of [
      '/hooks/../orders',
      '/hooks/%2e%2e/orders',
      '/hooks/..%2forders',
      '/hooks/.%2E/orders',
    ]) {
      const res = await rawRequest(url, 'POST', target, { body: '{}' });
      expect(res.status, target).toBe(503);
    }
    expect(ran).toEqual(['hooks']);
  });

  it(':name.ext in a rule keeps its literal suffix', async () => {
    const url = await start(
      () => {
        const outer = express();
        outer.use(quiesce(engine));
        outer.post('/:repo/info/lfs/locks', handler('locks'));
        return outer;
      },
      { rules: [{ surface: 'http', method: 'POST', path: '/:repo.git/info/lfs/locks', policy: 'allow' }] },
    );
    expect((await rawRequest(url, 'POST', '/x/info/lfs/locks', { body: '{}' })).status).toBe(503);
    expect((await rawRequest(url, 'POST', '/x.git/info/lfs/locks', { body: '{}' })).status).toBe(200);
    expect(ran).toEqual(['locks']);
  });
});

describe('an app mounted under a base path (#11)', () => {
  it('keeps its allow() helpers and its own rules, relative to the mount point', async () => {
    const url = await start(
      () => {
        const sub = express();
        sub.use(quiesce(engine));
        sub.post('/login', allow(), handler('login'));
        sub.post('/webhook', handler('webhook'));
        sub.post('/orders', handler('orders'));
        sub.post('/tasks', queue({ name: 'tasks' }), handler('tasks'));
        const outer = express();
        outer.use('/app', sub);
        return outer;
      },
      {
        rules: [
          { surface: 'http', method: 'POST', path: '/webhook', policy: 'allow' },
          { surface: 'http', method: 'POST', path: '/app/orders', policy: 'drop', pathFrom: 'root' },
        ],
      },
    );
    expect((await rawRequest(url, 'POST', '/app/login', { body: '{}' })).status).toBe(200);
    expect((await rawRequest(url, 'POST', '/app/webhook', { body: '{}' })).status).toBe(200);
    const dropped = await rawRequest(url, 'POST', '/app/orders', { body: '{}' });
    expect(dropped.status).toBe(202);
    expect(JSON.parse(dropped.text)).toMatchObject({ code: 'WRITE_DROPPED' });
    const queued = await rawRequest(url, 'POST', '/app/tasks', { body: '{"a":1}' });
    expect(queued.status, queued.text).toBe(202);
    const intent = await engine.getIntent(JSON.parse(queued.text).intentId);
    expect(intent).toMatchObject({ name: 'tasks', payload: { path: '/app/tasks', body: { a: 1 } } });
    expect(ran).toEqual(['login', 'webhook']);
  });
});

describe('fail closed (#11)', () => {
  it('a throwing principal function refuses the write (503, never 500, never runs)', async () => {
    const logged: unknown[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void logged.push(args);
    try {
      const url = await start(() => {
        const outer = express();
        outer.use(
          quiesce(engine, {
            principal: () => {
              throw new Error('session store down');
            },
          }),
        );
        outer.post('/orders', handler('orders'));
        outer.get('/orders', handler('list'));
        return outer;
      });
      const res = await rawRequest(url, 'POST', '/orders', { body: '{}' });
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBeDefined();
      expect(JSON.parse(res.text)).toMatchObject({ code: 'READ_ONLY_MODE' });
      expect(JSON.stringify(logged)).toMatch(/session store down/);
      expect((await rawRequest(url, 'GET', '/orders')).status).toBe(200);
      expect(ran).toEqual(['list']);
    } finally {
      console.warn = warn;
    }
  });

  it('a malformed bypass cookie is no token: the write is refused, not a 500', async () => {
    const url = await start(() => {
      const outer = express();
      outer.use(quiesce(engine));
      outer.post('/orders', handler('orders'));
      return outer;
    });
    const res = await rawRequest(url, 'POST', '/orders', {
      body: '{}',
      headers: { cookie: 'quiesce_bypass=%E0%A4%A' },
    });
    expect(res.status).toBe(503);
    expect(ran).toEqual([]);
  });

  it('reads the bypass header name from the engine', async () => {
    const secret = 'bypass-secret-0123456789';
    const url = await start(
      () => {
        const outer = express();
        outer.use(quiesce(engine));
        outer.post('/orders', handler('orders'));
        return outer;
      },
      { bypass: { secret, header: 'x-ops' } },
    );
    const token = createBypassToken(secret, { sub: 'ops', expiresInMs: 60_000 });
    expect(
      (await rawRequest(url, 'POST', '/orders', { body: '{}', headers: { 'x-quiesce-bypass': token } }))
        .status,
    ).toBe(503);
    expect(
      (await rawRequest(url, 'POST', '/orders', { body: '{}', headers: { 'x-ops': token } })).status,
    ).toBe(200);
    expect(ran).toEqual(['orders']);
  });
});
