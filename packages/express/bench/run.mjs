// pnpm bench: a bare Express 5 app against the same app behind quiesce, measured side by side in
// one run (interleaved rounds, medians, ratios). Figures only: nothing is asserted.
// BENCH_ROUNDS, BENCH_SECONDS and BENCH_CONNECTIONS override the defaults.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { measureOverhead } from './overhead.mjs';

const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const seconds = Number(process.env.BENCH_SECONDS ?? 2);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);

// The apps run in their own process so the load generator does not share their event loop.
const child = fork(fileURLToPath(new URL('./server.mjs', import.meta.url)), {
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const [{ ports }] = await once(child, 'message');

const body = JSON.stringify({ sku: 'A-1', qty: 1 });
// autocannon takes the path in the URL.
const request = (name) =>
  name.startsWith('GET')
    ? { path: '/hello', method: 'GET' }
    : { path: '/orders', method: 'POST', body, headers: { 'content-type': 'application/json' } };

async function serverCpu() {
  child.send('cpu');
  const [m] = await once(child, 'message');
  return m.cpu.user + m.cpu.system;
}

async function load(name, duration) {
  const { path, ...rest } = request(name);
  const before = await serverCpu();
  const r = await autocannon({
    url: `http://127.0.0.1:${ports[name]}${path}`,
    connections,
    duration,
    ...rest,
  });
  const cpuUs = (await serverCpu()) - before;
  return {
    rps: r.requests.average,
    p99: r.latency.p99,
    // Server CPU per request barely moves with contention from other processes; req/s does.
    cpuPerReq: cpuUs / Math.max(1, r.requests.total),
    statuses: { '2xx': r['2xx'], non2xx: r.non2xx },
  };
}

const names = Object.keys(ports);
const samples = Object.fromEntries(names.map((n) => [n, []]));
const status = {};
process.stderr.write(`warming up (${names.length} scenarios)…\n`);
for (const n of names) await load(n, 1);
for (let round = 1; round <= rounds; round++) {
  // Interleaved, alternating order, so drift (thermal, other load) hits every scenario alike.
  for (const n of round % 2 ? names : [...names].reverse()) {
    const r = await load(n, seconds);
    samples[n].push(r);
    status[n] = r.statuses;
  }
  process.stderr.write(`round ${round}/${rounds} done\n`);
}
child.kill();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const med = Object.fromEntries(
  names.map((n) => [
    n,
    {
      rps: median(samples[n].map((s) => s.rps)),
      p99: median(samples[n].map((s) => s.p99)),
      cpu: median(samples[n].map((s) => s.cpuPerReq)),
    },
  ]),
);

const pad = (s, w) => String(s).padEnd(w);
const lpad = (s, w) => String(s).padStart(w);
const pct = (v) => `${(v * 100).toFixed(1)}%`;

console.log(
  `\n@quiesce/express bench — Node ${process.version}, ${connections} connections, ${rounds} rounds × ${seconds}s, medians\n`,
);
console.log(
  `${pad('scenario', 28)}${lpad('req/s', 8)}${lpad('p99 ms', 8)}${lpad('CPU µs/req', 12)}   ${pad('rounds (req/s)', 46)}responses (last round)`,
);
for (const n of names) {
  const rs = samples[n].map((s) => Math.round(s.rps)).join(' ');
  const st = status[n];
  console.log(
    `${pad(n, 28)}${lpad(Math.round(med[n].rps), 8)}${lpad(med[n].p99, 8)}${lpad(med[n].cpu.toFixed(1), 12)}   ${pad(rs, 46)}2xx ${st['2xx']}, non-2xx ${st.non2xx}`,
  );
}

// Paired: a scenario and its baseline measured within seconds of each other each round; the
// per-round ratio cancels drift that separate medians keep. "By CPU" is throughput at equal CPU:
// bare CPU per request ÷ this scenario's.
const pairs = [
  ['GET + quiesce / GET bare', 'GET + quiesce (no window)', 'GET bare', 0.97],
  ['POST + quiesce / POST bare', 'POST + quiesce (no window)', 'POST bare', null],
  ['POST refused / POST bare', 'POST refused (window)', 'POST bare', 1.0],
];
console.log(
  `\n${pad('ratio', 28)}${lpad('req/s medians', 15)}${lpad('per-round', 11)}${lpad('by CPU/req', 12)}   aim`,
);
for (const [label, a, b, aim] of pairs) {
  const ofMedians = med[a].rps / med[b].rps;
  const paired = median(samples[a].map((s, i) => s.rps / samples[b][i].rps));
  const byCpu = med[b].cpu / med[a].cpu;
  console.log(
    `${pad(label, 28)}${lpad(pct(ofMedians), 15)}${lpad(pct(paired), 11)}${lpad(pct(byCpu), 12)}   ${aim === null ? '— (tracking cost, for information)' : `≥ ${pct(aim)}`}`,
  );
}

const { base, rows } = await measureOverhead();
console.log(
  '\nmiddleware cost per request in process (real node:http req/res, no network), medians of 7 × 100k',
);
console.log(`${pad('path', 28)}${lpad('ns/request', 12)}${lpad('baseline ns', 14)}${lpad('added ns', 10)}`);
for (const [name, xs] of Object.entries(rows)) {
  const b = median(name.startsWith('GET') ? base.GET : base.POST);
  const m = median(xs);
  console.log(
    `${pad(name, 28)}${lpad(m.toFixed(0), 12)}${lpad(b.toFixed(0), 14)}${lpad((m - b).toFixed(0), 10)}`,
  );
}
