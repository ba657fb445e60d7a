// `pnpm test:stress`: the whole suite, several rounds in a row, while CPU-bound processes keep
// every core busy — the "green on a busy machine" check. Timing assumptions in tests show up here.
//   QUIESCE_STRESS_ROUNDS   rounds of the suite (default 3)
//   QUIESCE_STRESS_BURNERS  CPU-bound processes kept spinning (default: one per core)
// Exits non-zero at the first red round; prints each round's result and wall time at the end.
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

const rounds = positive('QUIESCE_STRESS_ROUNDS', 3);
const burnerCount = positive('QUIESCE_STRESS_BURNERS', availableParallelism());

function positive(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const build = spawnSync('pnpm', ['turbo', 'run', 'build'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

// Each burner is a separate process spinning on arithmetic until it is killed.
const burners = Array.from({ length: burnerCount }, () =>
  spawn(process.execPath, ['-e', 'let x = 0; for (;;) { x = (x * 31 + 7) % 1000003; }'], {
    stdio: 'ignore',
  }),
);
const stopBurners = () => {
  for (const b of burners) b.kill('SIGKILL');
};
process.on('exit', stopBurners);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopBurners();
    process.exit(130);
  });
}
console.log(`test:stress: ${rounds} round(s) of vitest with ${burnerCount} CPU burner(s) running`);

const results = [];
for (let round = 1; round <= rounds; round++) {
  const started = Date.now();
  const run = spawnSync('pnpm', ['vitest', 'run'], { stdio: 'inherit' });
  const seconds = Math.round((Date.now() - started) / 1000);
  results.push({ round, status: run.status, seconds });
  console.log(`\ntest:stress round ${round}/${rounds}: exit ${run.status} in ${seconds} s\n`);
  if (run.status !== 0) break;
}
stopBurners();
console.log('test:stress summary');
for (const r of results)
  console.log(`  round ${r.round}: ${r.status === 0 ? 'green' : `RED (exit ${r.status})`} in ${r.seconds} s`);
const green = results.length === rounds && results.every((r) => r.status === 0);
console.log(green ? `test:stress: ${rounds}/${rounds} rounds green under load` : 'test:stress: FAILED');
process.exit(green ? 0 : 1);
