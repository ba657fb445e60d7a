import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createFileStore,
  createQuiesce,
  isStorableText,
  type QuiesceEngine,
  type StateStore,
} from '@quiesce/core';
import { createPostgresStore } from '@quiesce/postgres';
import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import express from 'express';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quiesce, quiesceRouter } from '../src/index.js';
import { listen } from './expressApp.js';

/*
 * Fuzz of the admin API (issue #15): arbitrary methods, paths, queries, headers and JSON bodies →
 * never a 5xx, never a crash, and the stored state and the audit unchanged after every rejection.
 * Runs per target: QUIESCE_FUZZ_RUNS (CI: 5000); the default keeps this file to about a minute on
 * a busy 2-core machine.
 */
const RUNS = Number(process.env.QUIESCE_FUZZ_RUNS) || 500;
const TOKEN = 'fuzz-admin-token-0123456789';
const SETTLED = new Set<string | null>([null, 'scheduled', 'frozen', 'closed']);

const printable = fc.string({
  unit: fc
    .integer({ min: 0x20, max: 0xff })
    .filter((c) => c !== 0x7f)
    .map((c) => String.fromCharCode(c)),
  maxLength: 40,
});
const hostile = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udc00y',
  '😀',
  'é',
  '2030',
  '12/25/2030',
  'Mon, 01 Jan 2035 00:00:00 GMT',
  'March 7, 2035',
  '2035-01-01T00:00:00',
  '2020-01-01T00:00:00Z',
  '__proto__',
  'constructor',
  'x'.repeat(3000),
);
const anyString = fc.oneof(hostile, printable, fc.string({ unit: 'binary', maxLength: 20 }));
// Valid times at least an hour away: a window never starts or ends by itself during the run.
const futureTime = fc
  .integer({ min: 1, max: 24 * 365 })
  .map((h) => new Date(Date.now() + h * 3_600_000).toISOString());
const minutes = fc.oneof(
  fc.constantFrom(60, 90, 1440, 10_080, 0, -5, 10_081, 1e308),
  fc.double({ min: -1e6, max: 0, noNaN: true }),
  fc.double({ min: 10_081, max: 1e9, noNaN: true }),
  anyString,
);
const junk = fc.oneof(anyString, fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }));
const body = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' }).map((v) => JSON.stringify(v)),
  anyString,
  fc.constantFrom('{', '[1,', '{"reason":"r"', 'null', '"x"', '1e999', `{"a":${'['.repeat(5000)}`),
);
const PATHS = [
  '/quiesce/state',
  '/quiesce/intents/int_00000000-0000-0000-0000-000000000000',
  '/quiesce/admin/status',
  '/quiesce/admin/windows',
  '/quiesce/admin/windows/current',
  '/quiesce/admin/windows/current/end',
  '/quiesce/admin/windows/w_1',
  '/quiesce/admin/inventory',
  '/quiesce/admin/intents',
  '/quiesce/admin/audit',
];
const path = fc.oneof(
  fc.constantFrom(...PATHS),
  fc
    .tuple(
      fc.constantFrom('/quiesce/admin/', '/quiesce/intents/', '/quiesce/admin/windows/'),
      fc.webSegment(),
    )
    .map(([a, b]) => a + b),
  fc
    .tuple(fc.constantFrom('/quiesce/intents/', '/quiesce/admin/windows/'), anyString)
    .map(([a, b]) => a + encodeURIComponent(isStorableText(b) ? b : 'x')),
);
const query = fc.option(
  fc.dictionary(
    fc.constantFrom('limit', 'status', 'windowId', 'x', '__proto__'),
    fc.oneof(printable, hostile),
    {
      maxKeys: 3,
    },
  ),
  { nil: undefined },
);
const headers = fc.record(
  {
    authorization: fc.oneof(
      fc.constant(`Bearer ${TOKEN}`),
      fc.constant(`bearer   ${TOKEN}  `),
      printable,
      printable.map((t) => `Bearer ${t}`),
    ),
    'content-type': fc.oneof(
      fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'application/merge-patch+json',
        'text/plain',
      ),
      printable,
    ),
    'idempotency-key': printable,
    'x-quiesce-bypass': printable,
    'if-none-match': printable,
    cookie: printable,
    accept: fc.oneof(fc.constantFrom('text/html', 'application/json', '*/*'), printable),
    'x-fuzz': printable,
  },
  { requiredKeys: [] },
);
// Mostly the router's real routes, with a valid token, JSON and a body shaped for the route, so
// most cases reach validation and some change the state (then rejections are checked against it).
const valid = <T>(good: fc.Arbitrary<T>) => fc.oneof({ arbitrary: good, weight: 6 }, junk);
const withJunkKey = (base: fc.Arbitrary<Record<string, unknown>>) =>
  fc.oneof(
    { arbitrary: base, weight: 5 },
    fc.tuple(base, fc.constantFrom('extra', '__proto__', 'actor', 'id'), junk).map(([b, k, v]) => {
      const o: Record<string, unknown> = { ...b };
      Object.defineProperty(o, k, { value: v, enumerable: true, configurable: true, writable: true });
      return o;
    }),
  );
const BODIES: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  '/quiesce/admin/windows': withJunkKey(
    fc.record(
      {
        reason: valid(fc.constantFrom('fuzz', 'index rebuild')),
        message: valid(fc.constantFrom('Back soon.', 'Read-only for a while.')),
        endsAt: valid(futureTime),
        durationMinutes: minutes,
        startsAt: fc.oneof(futureTime, { arbitrary: junk, weight: 2 }),
        contact: valid(fc.constant('ops@example.com')),
        scope: valid(fc.constant(['http'])),
        autoEnd: valid(fc.boolean()),
      },
      { requiredKeys: ['reason', 'message'] },
    ),
  ),
  '/quiesce/admin/windows/current': withJunkKey(
    fc.record(
      { endsAt: valid(futureTime), extendMinutes: minutes, message: valid(fc.constant('Still going.')) },
      { requiredKeys: [] },
    ),
  ),
  '/quiesce/admin/windows/current/end': withJunkKey(
    fc.record(
      { reason: valid(fc.constant('done')), message: valid(fc.constant('Back.')) },
      { requiredKeys: [] },
    ),
  ),
};
const ROUTES: Array<[string, string]> = [
  ['POST', '/quiesce/admin/windows'],
  ['PATCH', '/quiesce/admin/windows/current'],
  ['POST', '/quiesce/admin/windows/current/end'],
  ['GET', '/quiesce/admin/status'],
  ['GET', '/quiesce/admin/intents'],
  ['GET', '/quiesce/admin/audit'],
  ['GET', '/quiesce/admin/inventory'],
  ['GET', '/quiesce/state'],
];
const routed = fc.constantFrom(...ROUTES).chain(([method, path]) =>
  fc.record({
    method: fc.constant(method),
    path: fc.constant(path),
    body: fc.oneof(
      { arbitrary: (BODIES[path] ?? fc.constant({})).map((b) => JSON.stringify(b)), weight: 4 },
      body,
    ),
  }),
);
const random = fc.record({
  method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
  path,
  body,
});
const requestArb = fc
  .record({
    target: fc.oneof({ arbitrary: routed, weight: 3 }, random),
    query,
    headers: fc.tuple(headers, fc.nat(9), fc.nat(9)).map(([h, auth, json]) => ({
      ...h,
      ...(auth < 8 ? { authorization: `Bearer ${TOKEN}` } : {}),
      ...(json < 8 ? { 'content-type': 'application/json' } : {}),
    })),
  })
  .map(({ target: t, ...rest }) => ({ ...t, ...rest }));
type FuzzRequest = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

function send(base: string, r: FuzzRequest): Promise<{ status: number; headers: Record<string, unknown> }> {
  const url = new URL(r.path, base);
  if (r.query) for (const [k, v] of Object.entries(r.query)) url.searchParams.append(k, v);
  const payload = r.body === undefined ? undefined : Buffer.from(r.body);
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) h[k] = v;
  if (payload) h['content-length'] = String(payload.length);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: r.method, headers: h, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function adminFuzz(name: string, setup: () => Promise<{ store: StateStore; cleanup(): Promise<void> }>) {
  describe(`admin API fuzz on the ${name} (issue #15)`, () => {
    let engine: QuiesceEngine;
    let store: StateStore;
    let cleanup: () => Promise<void>;
    let app: { url: string; close(): Promise<void> };
    let router: ReturnType<typeof quiesceRouter>;

    beforeAll(async () => {
      ({ store, cleanup } = await setup());
      engine = createQuiesce({ store, soakMs: 0, drainDeadlineMs: 500, heartbeatMs: 50 });
      await engine.start();
      const a = express();
      a.use(quiesce(engine));
      router = quiesceRouter(engine, { adminToken: TOKEN });
      a.use('/quiesce', router);
      a.post('/orders', (_req, res) => void res.json({ ok: true }));
      app = await listen(a);
    }, 30_000);
    afterAll(async () => {
      router?.close();
      await app?.close();
      await engine?.close();
      await cleanup?.();
    }, 30_000);

    const snapshot = async () => JSON.stringify([await store.read(), await engine.audit({ limit: 1000 })]);

    it(`${RUNS} arbitrary requests: never a 5xx; a rejection leaves state and audit unchanged`, async () => {
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(requestArb, async (r) => {
          // A change accepted by the previous request settles first (freezing → frozen, end → closed).
          await expect.poll(() => engine.phase, { timeout: 15_000 }).toSatisfy((p) => SETTLED.has(p));
          const before = await snapshot();
          const res = await send(app.url, r);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expect(res.status).toBeGreaterThanOrEqual(200);
          expect(res.status).toBeLessThan(500);
          if (res.status >= 400) {
            expect(await snapshot()).toBe(before);
            if (r.method !== 'HEAD')
              expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
          }
        }),
        { numRuns: RUNS },
      );
      // The run reached past validation: some requests were accepted, some refused for each reason.
      expect([...statuses.keys()].some((s) => s < 300)).toBe(true);
      expect(statuses.get(400) ?? 0).toBeGreaterThan(0);
    }, 600_000);
  });
}

let dir = '';
adminFuzz('file store', async () => {
  dir = await mkdtemp(join(tmpdir(), 'quiesce-fuzz-'));
  return {
    store: createFileStore({ path: join(dir, 'state.json'), pollMs: 50 }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

const pgUp = await serviceAvailable('postgres', '@quiesce/express admin API fuzz on PostgreSQL');
if (pgUp) {
  adminFuzz('PostgreSQL store', async () => {
    const schema = uniqueName('qfuzz');
    return {
      store: createPostgresStore({ connectionString: POSTGRES_URL, schema }),
      async cleanup() {
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.end();
      },
    };
  });
}
