import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import {
  createBypassToken,
  createQuiesce,
  type MaintenanceWindow,
  type QuiesceEngine,
  type QuiesceOptions,
} from '@quiesce/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/*
 * The HTTP contract every HTTP adapter keeps (DESIGN.md, "Contracts every adapter shares"). An
 * adapter's test runs it with a builder that turns a neutral route list into a real app of its
 * framework (Express, Nest on Express, Nest on Fastify…), guarded by the adapter, on 127.0.0.1:0.
 */

/** What a route's handler is told: the adapter passes what its framework parsed. */
export interface ContractCall {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

/** A route helper / decorator of the adapter, described neutrally. */
export type ContractPolicy =
  | { kind: 'allow' }
  | { kind: 'drop' }
  /** A safe-looking method that writes (`@Writes()`, `writes()`). */
  | { kind: 'writes' }
  | {
      kind: 'queue';
      /** Intent name: `engine.handle(name, …)` replays it. */
      name: string;
      /**
       * `header-or-content` (client's Idempotency-Key, else derived), `header` (required: 400
       * without), `content` (always derived), or a function of the request the adapter calls.
       */
      idempotencyKey:
        | 'header-or-content'
        | 'header'
        | 'content'
        | ((request: { headers: IncomingHttpHeaders; body: unknown }) => string | undefined);
    };

export interface ContractRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Express-style pattern (`/orders/:id`). */
  path: string;
  policy?: ContractPolicy;
  /**
   * The route's handler: the app calls it and answers `200` with its result as JSON. It may be slow
   * (it returns a promise the suite resolves later).
   */
  handle(call: ContractCall): unknown | Promise<unknown>;
}

export interface ContractAppInput {
  engine: QuiesceEngine;
  routes: ContractRoute[];
  /**
   * Mount the framework's usual CORS support with these settings *before* the adapter's guard
   * (Express: the `cors` package; Nest: `app.enableCors`). A refusal must keep its headers.
   */
  cors: { origin: string; exposedHeaders: string[] };
}

export interface ContractApp {
  /** `http://127.0.0.1:<port>` */
  url: string;
  close(): Promise<void>;
}

export interface HttpContractOptions {
  /** Names the suite (`express`, `nestjs (fastify)`). */
  name: string;
  /**
   * Build and start an app with these routes, guarded by the adapter, listening on 127.0.0.1:0.
   * Request bodies (JSON) must be parsed only after the guard has decided: a refused upload is
   * never read. Called once per engine the suite needs.
   */
  buildApp(input: ContractAppInput): Promise<ContractApp>;
  /** vitest timeout of each test. @default 15000 */
  testTimeoutMs?: number;
}

export interface ContractResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json(): any;
}

/** One request over a fresh connection (no pooling: each test sees exactly its own exchange). */
export function contractRequest(
  base: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown; timeoutMs?: number } = {},
): Promise<ContractResponse> {
  const url = new URL(path, base);
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  const headers: Record<string, string> = {
    ...(body !== undefined && typeof options.body !== 'string' ? { 'content-type': 'application/json' } : {}),
    ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}),
    ...options.headers,
  };
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json: () => {
            try {
              return JSON.parse(text);
            } catch {
              throw new Error(
                `${method} ${path}: expected JSON, got ${res.statusCode} ${JSON.stringify(text.slice(0, 200))}`,
              );
            }
          },
        });
      });
      res.on('error', reject);
    });
    req.setTimeout(options.timeoutMs ?? 5000, () =>
      req.destroy(new Error(`${method} ${path}: no response within ${options.timeoutMs ?? 5000} ms`)),
    );
    req.on('error', reject);
    req.end(body);
  });
}

const ORIGIN = 'https://app.example';
const CORS = { origin: ORIGIN, exposedHeaders: ['Retry-After', 'Location'] };
const MESSAGE = 'Upgrading the orders database; writes are paused.';

interface Harness {
  engine: QuiesceEngine;
  app: ContractApp;
  calls: Array<{ route: string } & ContractCall>;
  window: MaintenanceWindow | null;
  /** Resolves the slow handler waiting now. */
  release: () => void;
  /** Resolves when the slow handler has been entered. */
  slowEntered: Promise<void>;
}

function routesFor(h: Pick<Harness, 'calls'> & { slow: () => Promise<unknown> }): ContractRoute[] {
  const rec =
    (route: string, result: unknown = { ok: true, route }) =>
    (call: ContractCall) => {
      h.calls.push({ route, ...call });
      return result;
    };
  return [
    { method: 'GET', path: '/orders', handle: rec('GET /orders', { orders: [] }) },
    { method: 'POST', path: '/orders', handle: rec('POST /orders') },
    { method: 'PUT', path: '/orders/:id', handle: rec('PUT /orders/:id') },
    { method: 'PATCH', path: '/orders/:id', handle: rec('PATCH /orders/:id') },
    { method: 'DELETE', path: '/orders/:id', handle: rec('DELETE /orders/:id') },
    { method: 'GET', path: '/unsubscribe', policy: { kind: 'writes' }, handle: rec('GET /unsubscribe') },
    { method: 'POST', path: '/session', policy: { kind: 'allow' }, handle: rec('POST /session') },
    { method: 'POST', path: '/analytics', policy: { kind: 'drop' }, handle: rec('POST /analytics') },
    {
      method: 'POST',
      path: '/queued',
      policy: { kind: 'queue', name: 'orders.create', idempotencyKey: 'header-or-content' },
      handle: rec('POST /queued'),
    },
    {
      method: 'POST',
      path: '/queued-keyed',
      policy: { kind: 'queue', name: 'orders.keyed', idempotencyKey: 'header' },
      handle: rec('POST /queued-keyed'),
    },
    {
      method: 'POST',
      path: '/queued-by-content',
      policy: { kind: 'queue', name: 'orders.content', idempotencyKey: 'content' },
      handle: rec('POST /queued-by-content'),
    },
    {
      method: 'POST',
      path: '/queued-by-function',
      policy: {
        kind: 'queue',
        name: 'orders.ref',
        idempotencyKey: ({ headers }) => {
          const v = headers['x-order-ref'];
          return typeof v === 'string' ? `ref:${v}` : undefined;
        },
      },
      handle: rec('POST /queued-by-function'),
    },
    { method: 'POST', path: '/upload', handle: rec('POST /upload') },
    {
      method: 'POST',
      path: '/slow',
      handle: async (call) => {
        h.calls.push({ route: 'POST /slow', ...call });
        return h.slow();
      },
    },
  ];
}

async function harness(build: HttpContractOptions['buildApp'], options: QuiesceOptions): Promise<Harness> {
  const engine = createQuiesce({
    retryAfter: { jitterSeconds: 0, floorSeconds: 1 },
    soakMs: 0,
    heartbeatMs: 50,
    drainDeadlineMs: 10_000,
    ...options,
  });
  await engine.start();
  let entered!: () => void;
  const h: Harness = {
    engine,
    app: undefined as unknown as ContractApp,
    calls: [],
    window: null,
    release: () => {},
    slowEntered: new Promise<void>((r) => {
      entered = r;
    }),
  };
  const slow = () =>
    new Promise((resolve) => {
      h.release = () => resolve({ ok: true, route: 'POST /slow' });
      entered();
    });
  h.app = await build({ engine, routes: routesFor({ calls: h.calls, slow }), cors: CORS });
  return h;
}

async function beginWindow(h: Harness): Promise<MaintenanceWindow> {
  await h.engine.begin({
    reason: 'contract suite',
    message: MESSAGE,
    endsAt: new Date(Date.now() + 600_000).toISOString(),
  });
  h.window = await h.engine.waitForPhase('frozen', { timeoutMs: 5000 });
  return h.window;
}

async function dispose(h: Harness | undefined): Promise<void> {
  if (!h) return;
  await h.app?.close();
  await h.engine.close();
}

const callsTo = (h: Harness, route: string) => h.calls.filter((c) => c.route === route);

/** Every unsafe method gets exactly the refusal of DESIGN.md. */
function expectRefusal(r: ContractResponse, w: MaintenanceWindow, status = 503): void {
  expect(r.status, r.text).toBe(status);
  const retryAfter = Number(r.headers['retry-after']);
  expect(Number.isInteger(retryAfter), `Retry-After: ${r.headers['retry-after']}`).toBe(true);
  // endsAt is ten minutes out and the suite's engine has no jitter.
  expect(retryAfter).toBeGreaterThan(540);
  expect(retryAfter).toBeLessThanOrEqual(600);
  expect(r.headers['cache-control']).toBe('no-store');
  expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = r.json();
  expect(body).toMatchObject({
    title: expect.any(String),
    status,
    detail: MESSAGE,
    code: 'READ_ONLY_MODE',
    windowId: w.id,
    endsAt: w.endsAt,
    retryAfter,
  });
  expect(typeof body.type).toBe('string');
  expect(() => new URL(body.type)).not.toThrow();
}

/**
 * Run the shared HTTP contract against an adapter. Each `describe` builds its own engine and app
 * through `options.buildApp`.
 */
export function runHttpContractSuite(options: HttpContractOptions): void {
  const timeout = options.testTimeoutMs ?? 15_000;
  const secret = 'contract-suite-bypass-secret';

  describe(`${options.name}: HTTP contract`, { timeout }, () => {
    describe('outside a window', () => {
      let h: Harness;
      beforeAll(async () => {
        h = await harness(options.buildApp, {});
      }, timeout);
      afterAll(() => dispose(h));

      it('every route runs', async () => {
        const r = await contractRequest(h.app.url, 'POST', '/orders', { body: { sku: 'A-1' } });
        expect(r.status).toBe(200);
        expect(callsTo(h, 'POST /orders')).toHaveLength(1);
        expect(callsTo(h, 'POST /orders')[0]!.body).toEqual({ sku: 'A-1' });
        const q = await contractRequest(h.app.url, 'POST', '/queued', { body: { sku: 'A-2' } });
        expect(q.status).toBe(200);
        expect(callsTo(h, 'POST /queued')).toHaveLength(1);
        const d = await contractRequest(h.app.url, 'POST', '/analytics', { body: { e: 'view' } });
        expect(d.status).toBe(200);
        const g = await contractRequest(h.app.url, 'GET', '/unsubscribe');
        expect(g.status).toBe(200);
        expect(callsTo(h, 'GET /unsubscribe')).toHaveLength(1);
      });

      it('a write in flight holds the window in freezing until it finishes', async () => {
        const pending = contractRequest(h.app.url, 'POST', '/slow', { body: { n: 1 }, timeoutMs: 10_000 });
        await h.slowEntered;
        await h.engine.begin({
          reason: 'contract suite',
          message: MESSAGE,
          endsAt: new Date(Date.now() + 600_000).toISOString(),
        });
        expect(h.engine.readOnly).toBe(true);
        // New writes are refused at once, while the old one is still running.
        const refused = await contractRequest(h.app.url, 'POST', '/orders', { body: {} });
        expect(refused.status).toBe(503);
        await expect(h.engine.waitForPhase('frozen', { timeoutMs: 400 })).rejects.toThrow(
          /did not reach "frozen"/,
        );
        expect(h.engine.phase).toBe('freezing');
        const status = await h.engine.status();
        expect(status.inFlight.count).toBe(1);
        expect(status.inFlight.oldest?.name).toContain('/slow');
        const releasedAt = Date.now();
        h.release();
        const r = await pending;
        expect(r.status).toBe(200);
        const w = await h.engine.waitForPhase('frozen', { timeoutMs: 5000 });
        expect(Date.parse(w.frozenAt!)).toBeGreaterThanOrEqual(releasedAt - 5);
        expect(w.stragglers).toEqual([]);
        await h.engine.end({ reason: 'contract suite' });
      });
    });

    describe('during a window', () => {
      let h: Harness;
      let w: MaintenanceWindow;
      beforeAll(async () => {
        h = await harness(options.buildApp, { bypass: { secret } });
        w = await beginWindow(h);
      }, timeout);
      afterAll(() => dispose(h));

      it('reads proceed', async () => {
        const r = await contractRequest(h.app.url, 'GET', '/orders', {
          headers: { accept: 'application/json' },
        });
        expect(r.status).toBe(200);
        expect(r.json()).toEqual({ orders: [] });
        expect(callsTo(h, 'GET /orders')).toHaveLength(1);
      });

      it('HEAD proceeds without a body', async () => {
        const r = await contractRequest(h.app.url, 'HEAD', '/orders');
        expect(r.status).toBe(200);
        expect(r.text).toBe('');
      });

      it('OPTIONS (a CORS preflight) proceeds and runs no handler', async () => {
        const before = h.calls.length;
        const r = await contractRequest(h.app.url, 'OPTIONS', '/orders', {
          headers: { origin: ORIGIN, 'access-control-request-method': 'POST' },
        });
        expect(r.status).toBeGreaterThanOrEqual(200);
        expect(r.status).toBeLessThan(300);
        expect(r.headers['access-control-allow-origin']).toBe(ORIGIN);
        expect(h.calls.length).toBe(before);
      });

      for (const [method, path, route] of [
        ['POST', '/orders', 'POST /orders'],
        ['PUT', '/orders/7', 'PUT /orders/:id'],
        ['PATCH', '/orders/7', 'PATCH /orders/:id'],
        ['DELETE', '/orders/7', 'DELETE /orders/:id'],
      ] as const) {
        it(`${method} is refused with status, Retry-After and the problem body`, async () => {
          const r = await contractRequest(h.app.url, method, path, {
            headers: { accept: 'application/json' },
            ...(method === 'DELETE' ? {} : { body: { sku: 'B-1' } }),
          });
          expectRefusal(r, w);
          expect(callsTo(h, route)).toHaveLength(0);
        });
      }

      it("keeps the app's CORS headers on a refusal", async () => {
        const r = await contractRequest(h.app.url, 'POST', '/orders', {
          headers: { origin: ORIGIN },
          body: {},
        });
        expectRefusal(r, w);
        expect(r.headers['access-control-allow-origin']).toBe(ORIGIN);
        expect(String(r.headers['access-control-expose-headers']).toLowerCase()).toContain('retry-after');
      });

      it('a browser asking for HTML gets a page; an API client gets the problem body', async () => {
        const page = await contractRequest(h.app.url, 'POST', '/orders', {
          headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
          body: { sku: 'C-1' },
        });
        expect(page.status).toBe(503);
        expect(page.headers['content-type']).toMatch(/^text\/html/);
        expect(page.headers['retry-after']).toMatch(/^\d+$/);
        expect(page.text).toContain('<!doctype html>');
        expect(page.text).toContain(MESSAGE);
        const api = await contractRequest(h.app.url, 'POST', '/orders', {
          headers: { accept: '*/*' },
          body: {},
        });
        expectRefusal(api, w);
      });

      it('a GET marked as writing is refused', async () => {
        const r = await contractRequest(h.app.url, 'GET', '/unsubscribe?token=abc');
        expectRefusal(r, w);
        expect(callsTo(h, 'GET /unsubscribe')).toHaveLength(0);
      });

      it('an allowed write runs', async () => {
        const r = await contractRequest(h.app.url, 'POST', '/session', { body: { user: 'ada' } });
        expect(r.status).toBe(200);
        expect(callsTo(h, 'POST /session')).toHaveLength(1);
        expect(callsTo(h, 'POST /session')[0]!.body).toEqual({ user: 'ada' });
      });

      it('a dropped write is acknowledged with 202 and discarded', async () => {
        const r = await contractRequest(h.app.url, 'POST', '/analytics', { body: { e: 'view' } });
        expect(r.status).toBe(202);
        expect(r.json()).toEqual({
          status: 'dropped',
          code: 'WRITE_DROPPED',
          windowId: w.id,
          endsAt: w.endsAt,
        });
        expect(callsTo(h, 'POST /analytics')).toHaveLength(0);
        expect((await h.engine.status()).counters.dropped.http).toBeGreaterThanOrEqual(1);
      });

      let firstIntentId = '';
      it('a queued write is kept as an intent: 202, id, key, status URL', async () => {
        const body = { sku: 'Q-1', qty: 2 };
        const r = await contractRequest(h.app.url, 'POST', '/queued', {
          headers: { 'idempotency-key': 'order-q1' },
          body,
        });
        expect(r.status, r.text).toBe(202);
        const b = r.json();
        expect(b).toMatchObject({
          status: 'queued',
          code: 'WRITE_QUEUED',
          intentId: expect.any(String),
          idempotencyKey: 'order-q1',
          statusUrl: expect.any(String),
          windowId: w.id,
          endsAt: w.endsAt,
        });
        expect(r.headers.location).toBe(b.statusUrl);
        expect(b.statusUrl).toContain(encodeURIComponent(b.intentId));
        expect(callsTo(h, 'POST /queued')).toHaveLength(0);
        const intent = await h.engine.getIntent(b.intentId);
        expect(intent).toMatchObject({
          name: 'orders.create',
          idempotencyKey: 'order-q1',
          status: 'queued',
          windowId: w.id,
        });
        // The payload shape is the adapter's; what the contract promises is that the body comes back.
        expect(intent!.payload).toMatchObject({ body });
        firstIntentId = b.intentId;
      });

      it('same key and same body return the same intent; another body is a 422', async () => {
        const again = await contractRequest(h.app.url, 'POST', '/queued', {
          headers: { 'idempotency-key': 'order-q1' },
          body: { qty: 2, sku: 'Q-1' },
        });
        expect(again.status).toBe(202);
        expect(again.json().intentId).toBe(firstIntentId);
        const conflict = await contractRequest(h.app.url, 'POST', '/queued', {
          headers: { 'idempotency-key': 'order-q1' },
          body: { sku: 'Q-1', qty: 3 },
        });
        expect(conflict.status).toBe(422);
        expect(conflict.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(conflict.json()).toMatchObject({ status: 422, code: 'IDEMPOTENCY_CONFLICT' });
      });

      it('a route that demands a client key answers 400 without one', async () => {
        const r = await contractRequest(h.app.url, 'POST', '/queued-keyed', { body: { sku: 'K-1' } });
        expect(r.status).toBe(400);
        expect(r.json()).toMatchObject({ status: 400, code: 'IDEMPOTENCY_KEY_REQUIRED' });
        const ok = await contractRequest(h.app.url, 'POST', '/queued-keyed', {
          headers: { 'idempotency-key': 'k-1' },
          body: { sku: 'K-1' },
        });
        expect(ok.status).toBe(202);
        expect(ok.json().idempotencyKey).toBe('k-1');
      });

      it('without a key, one is derived from the content', async () => {
        const a = await contractRequest(h.app.url, 'POST', '/queued-by-content', { body: { sku: 'D-1' } });
        const b = await contractRequest(h.app.url, 'POST', '/queued-by-content', {
          headers: { 'idempotency-key': 'ignored-by-this-route' },
          body: { sku: 'D-1' },
        });
        const c = await contractRequest(h.app.url, 'POST', '/queued-by-content', { body: { sku: 'D-2' } });
        expect([a.status, b.status, c.status]).toEqual([202, 202, 202]);
        expect(a.json().idempotencyKey).toBeTruthy();
        expect(b.json().intentId).toBe(a.json().intentId);
        expect(c.json().intentId).not.toBe(a.json().intentId);
        const plain = await contractRequest(h.app.url, 'POST', '/queued', { body: { sku: 'D-3' } });
        expect(plain.status).toBe(202);
        expect(plain.json().idempotencyKey).toBeTruthy();
      });

      it('a key function picks the key', async () => {
        const r = await contractRequest(h.app.url, 'POST', '/queued-by-function', {
          headers: { 'x-order-ref': 'R-9' },
          body: { sku: 'F-1' },
        });
        expect(r.status).toBe(202);
        expect(r.json().idempotencyKey).toBe('ref:R-9');
      });

      it('a streaming upload is refused before its body is read', async () => {
        const url = new URL('/upload', h.app.url);
        const result = await new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>(
          (resolve, reject) => {
            const req = httpRequest(url, {
              method: 'POST',
              agent: false,
              headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
            });
            // The body never ends: no answer at all means the server waited for it. A hang guard, not
            // a timed assertion (generous, under the test's timeout).
            req.setTimeout(10_000, () =>
              req.destroy(
                new Error('no response within 10 s: the body was probably read before the decision'),
              ),
            );
            req.on('response', (res) => {
              let body = '';
              res.on('data', (c) => {
                body += c;
              });
              res.on('end', () => {
                resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
                req.destroy();
              });
            });
            req.on('error', (err) => {
              if (!(err as NodeJS.ErrnoException).code?.startsWith('EPIPE')) reject(err);
            });
            // The upload starts and never finishes.
            req.write('{"part":"one",');
          },
        );
        expect(result.status).toBe(503);
        expect(JSON.parse(result.body)).toMatchObject({ code: 'READ_ONLY_MODE', windowId: w.id });
        expect(callsTo(h, 'POST /upload')).toHaveLength(0);
      });

      it('an operator bypass token (header or cookie) lets a write through; a forged one does not', async () => {
        const token = createBypassToken(secret, { sub: 'ops-oncall', expiresInMs: 60_000 });
        const viaHeader = await contractRequest(h.app.url, 'POST', '/orders', {
          headers: { 'x-quiesce-bypass': token },
          body: { sku: 'BY-1' },
        });
        expect(viaHeader.status).toBe(200);
        const viaCookie = await contractRequest(h.app.url, 'POST', '/orders', {
          headers: { cookie: `theme=dark; quiesce_bypass=${encodeURIComponent(token)}` },
          body: { sku: 'BY-2' },
        });
        expect(viaCookie.status).toBe(200);
        expect(callsTo(h, 'POST /orders').map((c) => c.body)).toEqual([{ sku: 'BY-1' }, { sku: 'BY-2' }]);
        const forged = await contractRequest(h.app.url, 'POST', '/orders', {
          headers: { 'x-quiesce-bypass': `${token.slice(0, -4)}AAAA` },
          body: { sku: 'BY-3' },
        });
        expectRefusal(forged, w);
        expect(callsTo(h, 'POST /orders')).toHaveLength(2);
        expect((await h.engine.status()).counters.bypassed.http).toBe(2);
      });

      it('nothing acknowledged is lost: queued intents replay after the window', async () => {
        const replayed: Array<{ name: string; payload: any; key: string }> = [];
        for (const name of ['orders.create', 'orders.keyed', 'orders.content', 'orders.ref']) {
          h.engine.handle(name, (payload, ctx) => {
            replayed.push({ name, payload, key: ctx.idempotencyKey });
          });
        }
        await h.engine.end({ reason: 'contract suite done' });
        const closed = await h.engine.waitForPhase('closed', { timeoutMs: 10_000 });
        expect(closed.report.backfill).toMatchObject({ failed: 0 });
        const first = replayed.find((r) => r.key === 'order-q1');
        expect(first).toMatchObject({ name: 'orders.create', payload: { body: { sku: 'Q-1', qty: 2 } } });
        // Each distinct intent replays once: q1, D-3 (create); k-1 (keyed); D-1, D-2 (content); R-9 (ref).
        expect(replayed.map((r) => r.name).sort()).toEqual(
          [
            'orders.content',
            'orders.content',
            'orders.create',
            'orders.create',
            'orders.keyed',
            'orders.ref',
          ].sort(),
        );
        // Writes are back on.
        const r = await contractRequest(h.app.url, 'POST', '/orders', { body: { sku: 'after' } });
        expect(r.status).toBe(200);
      });
    });

    describe('refusal status 423 by option', () => {
      let h: Harness;
      beforeAll(async () => {
        h = await harness(options.buildApp, { refusalStatus: 423 });
      }, timeout);
      afterAll(() => dispose(h));

      it('refuses with 423 and the same body', async () => {
        const w = await beginWindow(h);
        const r = await contractRequest(h.app.url, 'PATCH', '/orders/1', { body: { qty: 1 } });
        expectRefusal(r, w, 423);
      });
    });

    describe('dry-run', () => {
      let h: Harness;
      beforeAll(async () => {
        h = await harness(options.buildApp, { dryRun: true });
      }, timeout);
      afterAll(() => dispose(h));

      it('computes and counts every decision but refuses nothing', async () => {
        await beginWindow(h);
        const r = await contractRequest(h.app.url, 'POST', '/orders', { body: { sku: 'DR-1' } });
        expect(r.status).toBe(200);
        const q = await contractRequest(h.app.url, 'POST', '/queued', { body: { sku: 'DR-2' } });
        expect(q.status).toBe(200);
        expect(callsTo(h, 'POST /orders')).toHaveLength(1);
        expect(callsTo(h, 'POST /queued')).toHaveLength(1);
        const s = await h.engine.status();
        expect(s.counters.dryRun.http).toBe(2);
        expect(s.counters.refused.http ?? 0).toBe(0);
        expect(s.counters.queued.http ?? 0).toBe(0);
      });
    });
  });
}

/**
 * One request with the target sent exactly as given (`/a/../b`, `%2e%2e`, `//x`, absolute-form
 * `http://host/x`): no client-side normalisation, as a hand-written or hostile client sends it.
 */
export function rawRequest(
  baseUrl: string,
  method: string,
  target: string,
  options: { headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: hostname,
        port,
        method,
        path: target,
        // A fresh connection per request: what one request does to a connection never shows on another.
        agent: false,
        headers: {
          connection: 'close',
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
