// The apps under load, in their own process so the load generator does not share their CPU.
// Each scenario listens on its own port; run.mjs drives one at a time.
import { once } from 'node:events';
import { createQuiesce } from '@quiesce/core';
import express from 'express';
import { quiesce } from '../dist/index.js';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

function hello(app) {
  app.get('/hello', (_req, res) => {
    res.send('hello');
  });
}
function orders(app) {
  app.use(express.json());
  app.post('/orders', (req, res) => {
    res.status(201).json({ id: 1, sku: req.body?.sku ?? null });
  });
}

async function scenario(build) {
  const app = express();
  app.disable('x-powered-by');
  build(app);
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server.address().port;
}

const open = createQuiesce({ logger: quiet });
const closed = createQuiesce({ logger: quiet, retryAfter: { jitterSeconds: 0 } });
await Promise.all([open.start(), closed.start()]);
await closed.begin({
  reason: 'bench',
  message: 'Benchmarking refusals',
  endsAt: new Date(Date.now() + 3_600_000).toISOString(),
});
await closed.waitForPhase('frozen');

const ports = {
  'GET bare': await scenario(hello),
  'GET + quiesce (no window)': await scenario((app) => {
    app.use(quiesce(open));
    hello(app);
  }),
  'POST bare': await scenario(orders),
  'POST + quiesce (no window)': await scenario((app) => {
    app.use(quiesce(open));
    orders(app);
  }),
  'POST refused (window)': await scenario((app) => {
    app.use(quiesce(closed));
    orders(app);
  }),
};
process.send?.({ ports });
// CPU time of this process, so the runner can divide it by the requests served.
process.on('message', (m) => {
  if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() });
});
process.on('SIGINT', () => process.exit(0));
