// The middleware's own cost per request, without the network: real node:http request and response
// objects, the middleware called directly, against the same loop without it. Run in run.mjs's
// child-free process after the HTTP rounds.
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { createQuiesce } from '@quiesce/core';
import { quiesce } from '../dist/index.js';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

function exchange(method, url) {
  const req = new IncomingMessage(new Socket());
  req.method = method;
  req.url = url;
  req.headers = { host: '127.0.0.1', 'content-type': 'application/json', 'content-length': '20' };
  const res = new ServerResponse(req);
  return { req, res };
}

function loop(n, method, fn) {
  let calls = 0;
  const next = () => {
    calls++;
  };
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const { req, res } = exchange(method, '/orders/42?x=1');
    fn(req, res, next);
    res.emit('finish');
    res.emit('close');
  }
  const ns = Number(process.hrtime.bigint() - t0) / n;
  if (calls !== n && method === 'GET') throw new Error('the middleware did not call next');
  return ns;
}

export async function measureOverhead({ n = 100_000, repeats = 7 } = {}) {
  const open = createQuiesce({ logger: quiet });
  const closed = createQuiesce({ logger: quiet });
  await Promise.all([open.start(), closed.start()]);
  await closed.begin({
    reason: 'bench',
    message: 'Benchmarking refusals',
    endsAt: new Date(Date.now() + 3_600_000).toISOString(),
  });
  const mwOpen = quiesce(open, { inventory: false });
  const mwClosed = quiesce(closed, { inventory: false });
  const none = (_req, _res, next) => next();
  const rows = {
    'GET, no window': [],
    'POST, no window': [],
    'POST refused': [],
  };
  const base = { GET: [], POST: [] };
  loop(n, 'GET', mwOpen); // warm up
  loop(n, 'POST', mwClosed);
  for (let r = 0; r < repeats; r++) {
    base.GET.push(loop(n, 'GET', none));
    rows['GET, no window'].push(loop(n, 'GET', mwOpen));
    base.POST.push(loop(n, 'POST', none));
    rows['POST, no window'].push(loop(n, 'POST', mwOpen));
    rows['POST refused'].push(loop(n / 4, 'POST', mwClosed));
  }
  await Promise.all([open.close(), closed.close()]);
  return { base, rows };
}
