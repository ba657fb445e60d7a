// Throughput of Yoga with and without useQuiesce, measured side by side in one run.
// In-process (yoga.fetch, no sockets) so the plugin's own cost is not diluted by HTTP.
// Rounds are interleaved across scenarios; the table shows the median of the rounds.
import { availableParallelism, loadavg } from 'node:os';
import { createQuiesce } from '@quiesce/core';
import { createSchema, createYoga } from 'graphql-yoga';
import { quiesceDirectives, useQuiesce } from '../dist/index.js';

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 400);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);

const typeDefs = [
  quiesceDirectives,
  /* GraphQL */ `
    type Query { hello: String }
    type Mutation { touch(id: ID!): Boolean }
  `,
];
// A fresh schema per Yoga: the plugin wraps root resolvers of the schema it is given.
const schema = () =>
  createSchema({ typeDefs, resolvers: { Query: { hello: () => 'world' }, Mutation: { touch: () => true } } });
const yogaWith = (plugins) => createYoga({ schema: schema(), plugins, logging: false, maskedErrors: true });

const plain = yogaWith([]);
const idle = createQuiesce();
const withPlugin = yogaWith([useQuiesce(idle)]);
const closed = createQuiesce();
const inWindow = yogaWith([useQuiesce(closed)]);
await Promise.all([idle.start(), closed.start()]);
await closed.begin({
  reason: 'bench',
  message: 'Read-only for the benchmark.',
  endsAt: new Date(Date.now() + 3_600_000).toISOString(),
});

const QUERY = JSON.stringify({ query: '{ hello }' });
const MUTATION = JSON.stringify({ query: 'mutation { touch(id: 1) }' });

const scenarios = [
  { name: 'query, Yoga without plugin', yoga: plain, body: QUERY, status: 200 },
  { name: 'query, useQuiesce, no window', yoga: withPlugin, body: QUERY, status: 200 },
  { name: 'query, useQuiesce, during a window', yoga: inWindow, body: QUERY, status: 200 },
  { name: 'mutation executed, Yoga without plugin', yoga: plain, body: MUTATION, status: 200 },
  { name: 'mutation executed, useQuiesce, no window', yoga: withPlugin, body: MUTATION, status: 200 },
  { name: 'mutation refused, useQuiesce, window (503)', yoga: inWindow, body: MUTATION, status: 503 },
];

const init = (body) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
  body,
});

// Each round gives req/s (wall clock) and CPU µs per request. On a busy machine the CPU figure is the
// steadier of the two (time spent running other processes is not counted), and its best round is the
// least disturbed estimate of the work a request costs.
async function round(s, ms) {
  let n = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const end = start + ms;
  const worker = async () => {
    while (performance.now() < end) {
      const res = await s.yoga.fetch('http://bench.local/graphql', init(s.body));
      await res.arrayBuffer();
      n++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const used = process.cpuUsage(cpu);
  return { rps: n / ((performance.now() - start) / 1000), cpuUs: (used.user + used.system) / n };
}

for (const s of scenarios) {
  const res = await s.yoga.fetch('http://bench.local/graphql', init(s.body));
  const body = await res.json();
  if (res.status !== s.status)
    throw new Error(`${s.name}: expected ${s.status}, got ${res.status} ${JSON.stringify(body)}`);
  s.samples = [];
  s.cpu = [];
}

for (const s of scenarios) await round(s, Math.min(ROUND_MS, 500)); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  // Rotate the order each round so drift (GC, JIT, thermal) spreads over every scenario.
  for (let i = 0; i < scenarios.length; i++) {
    const s = scenarios[(i + r) % scenarios.length];
    const { rps, cpuUs } = await round(s, ROUND_MS);
    s.samples.push(rps);
    s.cpu.push(cpuUs);
  }
}

const median = (xs) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};
for (const s of scenarios) {
  s.median = median(s.samples);
  s.cpuMedian = median(s.cpu);
  s.cpuBest = Math.min(...s.cpu);
}
const by = Object.fromEntries(scenarios.map((s) => [s.name, s]));
const ratio = (a, b) =>
  `${pct(by[a].median / by[b].median)} by median req/s, ${pct(by[b].cpuMedian / by[a].cpuMedian)} by median CPU/req, ${pct(by[b].cpuBest / by[a].cpuBest)} by best-round CPU/req`;
function pct(x) {
  return `${(x * 100).toFixed(1)}%`;
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const rows = scenarios.map((s) => [
  s.name,
  fmt(s.median),
  fmt(Math.min(...s.samples)),
  fmt(Math.max(...s.samples)),
  s.cpuMedian.toFixed(1),
  s.cpuBest.toFixed(1),
]);
const head = ['scenario', 'median req/s', 'min', 'max', 'CPU µs/req median', 'best'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');

console.log(
  `@quiesce/graphql-yoga bench: yoga.fetch in-process, ${CONCURRENCY} concurrent, ${ROUNDS} rounds × ${ROUND_MS} ms, Node ${process.version}, ${availableParallelism()} CPUs, load average ${loadavg()[0].toFixed(1)} at the end\n`,
);
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
console.log('');
console.log(
  'throughput ratios (≥ 100% = as fast); CPU ratios are inverted costs, so they read the same way:',
);
console.log(
  `query with useQuiesce (no window) / without plugin:       ${ratio('query, useQuiesce, no window', 'query, Yoga without plugin')}  (aim ≥ 97%)`,
);
console.log(
  `query during a window / without plugin:                   ${ratio('query, useQuiesce, during a window', 'query, Yoga without plugin')}`,
);
console.log(
  `mutation with useQuiesce (no window) / without plugin:    ${ratio('mutation executed, useQuiesce, no window', 'mutation executed, Yoga without plugin')}`,
);
console.log(
  `refused mutation / executed mutation (useQuiesce):        ${ratio('mutation refused, useQuiesce, window (503)', 'mutation executed, useQuiesce, no window')}`,
);

await Promise.all([idle.close(), closed.close()]);
