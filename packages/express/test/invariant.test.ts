import { createQuiesce } from '@quiesce/core';
import { checkEnforcementInvariant, type InvariantRoute, invariantRuns } from '@quiesce/testkit';
import express from 'express';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { allow, drop, queue, quiesce, writes } from '../src/index.js';
import { listen } from './expressApp.js';

// Issue #11's invariant against a real Express 5 app: a sub-app mounted under /app (rules relative
// to it), params, a `:name.json` suffix route declared before a guarded `:id`, helpers and rules.

const engine = createQuiesce({
  soakMs: 0,
  heartbeatMs: 20,
  retryAfter: { jitterSeconds: 0 },
  rules: [
    { surface: 'http', method: 'POST', path: '/hooks/**', policy: 'allow' },
    { surface: 'http', method: 'POST', path: '/app/reports/:id', policy: 'drop', pathFrom: 'root' },
  ],
});
const hits: string[] = [];
const routes: InvariantRoute[] = [
  { id: 'login', method: 'POST', paths: ['/app/login'], allowed: true },
  { id: 'hooks', method: 'POST', paths: ['/app/hooks/github', '/app/hooks/a/b'], allowed: true },
  { id: 'export', method: 'PUT', paths: ['/app/items/5.json', '/app/items/abc.json'], allowed: true },
  { id: 'list', method: 'GET', paths: ['/app/orders', '/app/orders/7'], allowed: true },
  { id: 'create', method: 'POST', paths: ['/app/orders'], allowed: false },
  { id: 'pay', method: 'POST', paths: ['/app/orders/7/pay'], allowed: false },
  { id: 'update', method: 'PUT', paths: ['/app/items/5', '/app/items/json'], allowed: false },
  { id: 'remove', method: 'DELETE', paths: ['/app/items/5'], allowed: false },
  { id: 'report', method: 'POST', paths: ['/app/reports/9'], allowed: false },
  { id: 'unsubscribe', method: 'GET', paths: ['/app/unsubscribe'], allowed: false },
];
let server: { url: string; close(): Promise<void> };

beforeAll(async () => {
  await engine.start();
  const hit = (id: string) => (_req: unknown, res: express.Response) => {
    hits.push(id);
    res.json({ ran: id });
  };
  const sub = express();
  sub.use(quiesce(engine));
  sub.post('/login', allow(), hit('login'));
  sub.post('/hooks/*rest', hit('hooks'));
  sub.put('/items/:name.json', allow(), hit('export'));
  sub.put('/items/:id', hit('update'));
  sub.delete('/items/:id', drop(), hit('remove'));
  sub.get('/orders', hit('list'));
  sub.get('/orders/:id', hit('list'));
  sub.post('/orders', hit('create'));
  sub.post('/orders/:id/pay', queue({ name: 'pay' }), hit('pay'));
  sub.post('/reports/:id', hit('report'));
  sub.get('/unsubscribe', writes(), hit('unsubscribe'));
  const outer = express();
  outer.use('/app', sub);
  server = await listen(outer);
  await engine.begin({
    reason: 'invariant',
    message: 'Paused',
    endsAt: new Date(Date.now() + 600_000).toISOString(),
  });
  await engine.waitForPhase('frozen');
});
afterAll(async () => {
  await server?.close();
  await engine.close();
});

describe('enforcement invariant (Express 5)', () => {
  it(`holds for ${invariantRuns()} generated requests (QUIESCE_INVARIANT_RUNS; CI: 10000)`, async () => {
    await checkEnforcementInvariant({
      url: server.url,
      routes,
      hits,
      routedLikePlain: { case: true, trailingSlash: true, spellings: ['absolute'] },
    });
  }, 600_000);
});
