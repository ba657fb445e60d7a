// Cost per call of engine.decide(), measured side by side in one run on the built package.
// Each case runs ROUNDS rounds of N calls, interleaved; we report the median ns/call.
import { createQuiesce } from '../dist/index.js';

const N = 1_000_000;
const ROUNDS = 15;

const noWindow = createQuiesce();
const inWindow = createQuiesce();
await noWindow.start();
await inWindow.begin({
  reason: 'bench',
  message: 'Benchmarking',
  endsAt: new Date(Date.now() + 3_600_000).toISOString(),
});

const post = { surface: 'http', name: 'POST /orders', method: 'POST', path: '/orders' };
const get = { surface: 'http', name: 'GET /orders', method: 'GET', path: '/orders' };
let sink = 0;
const empty = (op) => op;

const cases = {
  'empty function (baseline)': () => {
    for (let i = 0; i < N; i++) sink ^= empty(post) === post ? 1 : 0;
  },
  'proceed, no window (POST)': () => {
    for (let i = 0; i < N; i++) sink ^= noWindow.decide(post).outcome.length;
  },
  'proceed, read during a window (GET)': () => {
    for (let i = 0; i < N; i++) sink ^= inWindow.decide(get).outcome.length;
  },
  'refuse during a window (POST)': () => {
    for (let i = 0; i < N; i++) sink ^= inWindow.decide(post).outcome.length;
  },
};

const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (const fn of Object.values(cases)) fn(); // warm up
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of Object.entries(cases)) {
    const t0 = process.hrtime.bigint();
    fn();
    samples[name].push(Number(process.hrtime.bigint() - t0) / N);
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const base = median(samples['empty function (baseline)']);
console.log(
  `@quiesce/core decide() — ${ROUNDS} rounds x ${N.toLocaleString()} calls, Node ${process.version}`,
);
console.table(
  Object.entries(samples).map(([name, xs]) => ({
    case: name,
    'median ns/call': +median(xs).toFixed(1),
    'min ns/call': +Math.min(...xs).toFixed(1),
    'x baseline': +(median(xs) / base).toFixed(2),
  })),
);
const proceed = median(samples['proceed, no window (POST)']);
const refuse = median(samples['refuse during a window (POST)']);
console.log(
  `aims: proceed < 100 ns (${proceed.toFixed(1)} ns: ${proceed < 100 ? 'met' : 'NOT met'}), refusal < 1000 ns (${refuse.toFixed(1)} ns: ${refuse < 1000 ? 'met' : 'NOT met'})`,
);
if (sink === 42) console.log('');
await noWindow.close();
await inWindow.close();
