// `pnpm bench`: Nest on Express with vs without ReadOnlyGuard, measured side by side in one run
// on loopback. Servers run in a child process so the load generator does not share
// their event loop. Each round interleaves the scenarios in small blocks (a fixed number of
// requests each, rotating the order), so a noisy neighbour slows every scenario of a round alike;
// the table shows the median of the rounds, the ratios the median of per-round ratios.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
/** Blocks per scenario in a round, alternating between scenarios. */
const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 6);
/** Requests per block. */
const BLOCK = Number(process.env.BENCH_BLOCK ?? 400);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);

const server = spawn(process.execPath, [fileURLToPath(new URL('./server.mjs', import.meta.url))], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
server.stdout.setEncoding('utf8');
const lines = [];
let waiting = null;
let buffered = '';
server.stdout.on('data', (chunk) => {
  buffered += chunk;
  let i = buffered.indexOf('\n');
  while (i !== -1) {
    lines.push(buffered.slice(0, i));
    buffered = buffered.slice(i + 1);
    i = buffered.indexOf('\n');
  }
  if (waiting && lines.length > 0) waiting();
});
async function nextLine() {
  while (lines.length === 0) await new Promise((r) => (waiting = r));
  waiting = null;
  return lines.shift();
}
async function serverCpu() {
  server.stdin.write('cpu\n');
  return Number(await nextLine());
}
const ports = JSON.parse(await nextLine());
const url = (name, path) => `http://127.0.0.1:${ports[name]}${path}`;

const post = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sku":"A"}' };
const scenarios = [
  { id: 'get-bare', label: 'GET /hello, no guard', url: url('bare', '/hello'), status: 200 },
  { id: 'get-noop', label: 'GET /hello, no-op guard', url: url('noop', '/hello'), status: 200 },
  { id: 'get-guarded', label: 'GET /hello, guard, no window', url: url('guarded', '/hello'), status: 200 },
  { id: 'post-bare', label: 'POST /orders, no guard', url: url('bare', '/orders'), status: 201, ...post },
  { id: 'post-noop', label: 'POST /orders, no-op guard', url: url('noop', '/orders'), status: 201, ...post },
  {
    id: 'post-guarded',
    label: 'POST /orders, guard, no window',
    url: url('guarded', '/orders'),
    status: 201,
    ...post,
  },
  {
    id: 'post-refused',
    label: 'POST /orders, guard, window (503)',
    url: url('frozen', '/orders'),
    status: 503,
    ...post,
  },
];

// A block is a fixed number of requests over CONNECTIONS keep-alive connections (fetch), timed
// exactly; autocannon's `amount` mode ends on its own timer tick, which quantises short blocks.
async function measure(s, amount) {
  const cpuBefore = await serverCpu();
  const latencies = [];
  let left = amount;
  const init = { method: s.method ?? 'GET', headers: s.headers, body: s.body };
  const worker = async () => {
    while (left-- > 0) {
      const t = performance.now();
      const res = await fetch(s.url, init);
      await res.arrayBuffer();
      latencies.push(performance.now() - t);
      if (res.status !== s.status) throw new Error(`${s.label}: expected ${s.status}, got ${res.status}`);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const ms = performance.now() - start;
  const cpu = (await serverCpu()) - cpuBefore;
  latencies.sort((a, b) => a - b);
  const at = (q) =>
    Number(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(1));
  return { n: amount, ms, p50: at(0.5), p99: at(0.99), cpuUs: cpu };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

console.log(
  `Nest ${(await import('@nestjs/core/package.json', { with: { type: 'json' } })).default.version} on Express, node ${process.version}, ${CONNECTIONS} connections, ${ROUNDS} rounds, each ${BLOCKS} interleaved blocks of ${BLOCK} requests per scenario`,
);
for (const s of scenarios) await measure(s, BLOCK); // warm-up
const results = Object.fromEntries(scenarios.map((s) => [s.id, []]));
for (let round = 0; round < ROUNDS; round++) {
  const acc = new Map(scenarios.map((s) => [s.id, { n: 0, ms: 0, cpuUs: 0, p50: [], p99: [] }]));
  for (let b = 0; b < BLOCKS; b++) {
    for (let i = 0; i < scenarios.length; i++) {
      const s = scenarios[(i + b + round) % scenarios.length];
      const m = await measure(s, BLOCK);
      const a = acc.get(s.id);
      a.n += m.n;
      a.ms += m.ms;
      a.cpuUs += m.cpuUs;
      a.p50.push(m.p50);
      a.p99.push(m.p99);
    }
  }
  for (const [id, a] of acc) {
    results[id].push({
      rps: a.n / (a.ms / 1000),
      cpuUs: a.cpuUs / a.n,
      p50: median(a.p50),
      p99: median(a.p99),
    });
  }
}

const med = (id, key) => median(results[id].map((r) => r[key]));
const rows = scenarios.map((s) => ({
  scenario: s.label,
  'req/s (median)': Math.round(med(s.id, 'rps')),
  'req/s per round': results[s.id].map((r) => Math.round(r.rps)).join(' '),
  'server CPU µs/req (median)': Number(med(s.id, 'cpuUs').toFixed(1)),
  'p50 ms': med(s.id, 'p50'),
  'p99 ms': med(s.id, 'p99'),
}));
console.table(rows);
const pct = (x) => `${(x * 100).toFixed(1)}%`;
// Throughput ratio by req/s, and by server CPU per request (bare CPU / guarded CPU: the share of
// bare throughput the server would keep on an otherwise idle machine).
// Median of the per-round ratios: each round measured both scenarios under the same load.
const paired = (a, b, f) => median(results[a].map((x, i) => f(x, results[b][i])));
const ratio = (comparison, a, b) => ({
  comparison,
  'by req/s': pct(paired(a, b, (x, y) => x.rps / y.rps)),
  'by server CPU': pct(paired(a, b, (x, y) => y.cpuUs / x.cpuUs)),
});
console.table([
  ratio('GET with guard / without (aim >= 97%)', 'get-guarded', 'get-bare'),
  ratio('GET with guard / no-op guard (quiesce alone)', 'get-guarded', 'get-noop'),
  ratio('POST with guard / without, no window', 'post-guarded', 'post-bare'),
  ratio('POST with guard / no-op guard (quiesce alone)', 'post-guarded', 'post-noop'),
  ratio('refused POST / bare POST handler (aim >= 100%)', 'post-refused', 'post-bare'),
  ratio('refused POST / POST behind a no-op guard', 'post-refused', 'post-noop'),
]);
server.stdin.end();
server.kill();
