// Throughput of Yoga with and without useQuiesce, measured side by side in one run.
// In-process (yoga.fetch, no sockets) so the plugin's own cost is not diluted by HTTP.
// Scenarios alternate in small blocks of requests, so every scenario of a round runs under the same
// machine load (a shared CI box swings a lot); the table shows medians over the rounds.
import { availableParallelism, loadavg } from 'node:os';
import { createQuiesce } from '@quiesce/core';
import { createSchema, createYoga } from 'graphql-yoga';
import { quiesceDirectives, useQuiesce } from '../dist/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
/** Blocks per scenario in a round, alternating between scenarios. */
const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 12);
/** Requests per block. */
const BLOCK = Number(process.env.BENCH_BLOCK ?? 120);
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

// One block: BLOCK requests, CONCURRENCY at a time. Returns wall ms and CPU µs it took.
async function block(s) {
  const cpu = process.cpuUsage();
  const start = performance.now();
  let left = BLOCK;
  const worker = async () => {
    while (left-- > 0) {
      const res = await s.yoga.fetch('http://bench.local/graphql', init(s.body));
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const used = process.cpuUsage(cpu);
  return { ms: performance.now() - start, cpuUs: used.user + used.system };
}

for (const s of scenarios) {
  const res = await s.yoga.fetch('http://bench.local/graphql', init(s.body));
  const body = await res.json();
  if (res.status !== s.status)
    throw new Error(`${s.name}: expected ${s.status}, got ${res.status} ${JSON.stringify(body)}`);
  s.samples = [];
  s.cpu = [];
}

for (const s of scenarios) for (let i = 0; i < BLOCKS; i++) await block(s); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  const acc = new Map(scenarios.map((s) => [s, { ms: 0, cpuUs: 0 }]));
  for (let b = 0; b < BLOCKS; b++) {
    // Rotate the order so no scenario always follows the same one.
    for (let i = 0; i < scenarios.length; i++) {
      const s = scenarios[(i + b + r) % scenarios.length];
      const m = await block(s);
      const a = acc.get(s);
      a.ms += m.ms;
      a.cpuUs += m.cpuUs;
    }
  }
  for (const [s, a] of acc) {
    s.samples.push((BLOCKS * BLOCK) / (a.ms / 1000));
    s.cpu.push(a.cpuUs / (BLOCKS * BLOCK));
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
// Paired: the two scenarios' figures of the same round are compared, then the median is taken over
// rounds, so load that changes from round to round cancels out.
const paired = (xs, ys, f) => median(xs.map((x, i) => f(x, ys[i])));
const ratio = (a, b) => {
  const [A, B] = [by[a], by[b]];
  const rps = paired(A.samples, B.samples, (x, y) => x / y);
  const cpu = paired(A.cpu, B.cpu, (x, y) => y / x);
  return `${pct(rps)} by req/s, ${pct(cpu)} by CPU per request (median of per-round ratios)`;
};
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
  `@quiesce/graphql-yoga bench: yoga.fetch in-process, ${CONCURRENCY} concurrent; ${ROUNDS} rounds, each ${BLOCKS} alternating blocks of ${BLOCK} requests per scenario; Node ${process.version}, ${availableParallelism()} CPUs, load average ${loadavg()[0].toFixed(1)} at the end\n`,
);
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
console.log('');
console.log('ratios (100% = as fast as the reference; for CPU, the inverse of the cost ratio):');
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
