import { fork } from 'node:child_process';
import { once } from 'node:events';
import autocannon from 'autocannon';

const child = fork('/work/main/packages/express/bench/server.mjs', {
  execArgv: ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'],
});
const [{ ports }] = await once(child, 'message');
const body = JSON.stringify({ sku: 'A-1', qty: 1 });
const r = await autocannon({
  url: `http://127.0.0.1:${ports['POST refused (window)']}/orders`,
  connections: 50,
  duration: 4,
  method: 'POST',
  body,
  headers: { 'content-type': 'application/json' },
});
console.log(r.requests.average);
child.kill('SIGINT');
await once(child, 'exit');
