#!/usr/bin/env node
// Measures the README's quick start from a fresh clone: `pnpm install && pnpm demo` until the demo
// page answers. Fresh clone of HEAD in a temporary directory, no node_modules, an empty turbo cache;
// `--empty-store` also gives pnpm an empty store (a machine that never installed anything: every
// package is downloaded). Prints the figures; stops only the demo it started.
//
//   node scripts/coldStart.mjs [--empty-store] [--keep]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const emptyStore = process.argv.includes('--empty-store');
const keep = process.argv.includes('--keep');
const root = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim();
const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
const dir = mkdtempSync(join(tmpdir(), 'quiesce-cold-'));
const clone = join(dir, 'quiesce');
const port = String(20_000 + Math.floor(Math.random() * 20_000));
const env = {
  ...process.env,
  TURBO_CACHE_DIR: join(dir, 'turbo-cache'),
  TURBO_TELEMETRY_DISABLED: '1',
  PORT: port,
};

const seconds = (from) => ((performance.now() - from) / 1000).toFixed(1);
const run = (cmd, args) =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: clone, env, stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}`)),
    );
  });

execFileSync('git', ['clone', '--quiet', root, clone]);
execFileSync('git', ['checkout', '--quiet', head], { cwd: clone });
console.log(
  `cold start of ${head.slice(0, 10)} in ${clone} (${emptyStore ? 'empty' : 'existing'} pnpm store, empty turbo cache)`,
);

const started = performance.now();
await run('pnpm', ['install', ...(emptyStore ? ['--store-dir', join(dir, 'pnpm-store')] : [])]);
const installed = performance.now();
// Its own process group, so the demo and everything pnpm started for it can be stopped together.
const demo = spawn('pnpm', ['demo'], {
  cwd: clone,
  env,
  stdio: ['ignore', 'pipe', 'inherit'],
  detached: true,
});
let output = '';
demo.stdout.on('data', (d) => {
  output += d;
});
const exited = new Promise((resolve) => demo.once('exit', resolve));
let served = false;
const deadline = installed + 600_000;
while (!served) {
  if (demo.exitCode !== null) throw new Error(`pnpm demo exited with ${demo.exitCode}:\n${output}`);
  if (performance.now() > deadline) {
    process.kill(-demo.pid, 'SIGTERM');
    throw new Error(`the demo page did not answer within 600 s:\n${output}`);
  }
  try {
    served = (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {}
  // Polling the page is the measurement itself: look again shortly.
  if (!served) await new Promise((r) => setTimeout(r, 250));
}
const turbo = /Time:\s+([\d.]+m?s)/.exec(output)?.[1] ?? '?';
console.log(
  `install ${((installed - started) / 1000).toFixed(1)} s → page served ${((performance.now() - installed) / 1000).toFixed(1)} s later ` +
    `(turbo build:js ${turbo}); total ${seconds(started)} s; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${navigator.hardwareConcurrency} CPUs`,
);
process.kill(-demo.pid, 'SIGTERM');
await exited;
if (!keep) rmSync(dir, { recursive: true, force: true });
