// Flag flip → refusing latency. Runs on the built package (dist):
// `pnpm --filter @quiesce/openfeature bench`. Rows:
//   1. in-memory provider, memory store, one engine: putConfiguration() → decide() refuses / proceeds;
//   2. in-memory provider on engine A, PostgreSQL store shared with engine B (B does not follow the flag):
//      flip → A refuses, and → B refuses (through the store's NOTIFY);
//   3. flagd provider, in-process resolver reading a flag file offline: file written → engine refuses
//      (bounded by flagd's fs.watchFile poll, about 5 s).
// BENCH_FLIPS (default 200) and BENCH_FLAGD_FLIPS (default 4) set the counts.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FlagdProvider } from '@openfeature/flagd-provider';
import { InMemoryProvider, OpenFeature } from '@openfeature/server-sdk';
import { createQuiesce, silentLogger } from '@quiesce/core';
import { followFlag } from '@quiesce/openfeature';
import { createPostgresStore } from '@quiesce/postgres';
import pg from 'pg';

const FLIPS = Number(process.env.BENCH_FLIPS ?? 200);
const FLAGD_FLIPS = Number(process.env.BENCH_FLAGD_FLIPS ?? 4);
const WARMUP = 5;
const url = process.env.QUIESCE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const write = { surface: 'http', name: 'POST /orders', method: 'POST', path: '/orders' };
const config = (on) => ({
  read_only: { variants: { on: true, off: false }, defaultVariant: on ? 'on' : 'off', disabled: false },
});

/** Resolves with the time at which `engine` first answers `outcome` (checked on every applied state). */
function when(engine, outcome) {
  return new Promise((resolve) => {
    if (engine.decide(write).outcome === outcome) return resolve(performance.now());
    const off = engine.on('state', () => {
      if (engine.decide(write).outcome !== outcome) return;
      off();
      resolve(performance.now());
    });
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const row = (label, xs) =>
  console.log(
    `${label.padEnd(66)} n=${String(xs.length).padStart(4)}  p50 ${pct(xs, 50).toFixed(2).padStart(8)}  p95 ${pct(
      xs,
      95,
    )
      .toFixed(2)
      .padStart(8)}  max ${Math.max(...xs)
      .toFixed(2)
      .padStart(8)}`,
  );

async function inMemory() {
  const provider = new InMemoryProvider(config(false));
  await OpenFeature.setProviderAndWait('bench-memory', provider);
  const engine = createQuiesce({ soakMs: 0, logger: silentLogger });
  const follower = followFlag({ engine, client: OpenFeature.getClient('bench-memory') });
  await follower.start();
  const on = [];
  const off = [];
  for (let i = 0; i < WARMUP + FLIPS; i++) {
    let t0 = performance.now();
    let seen = when(engine, 'refuse');
    provider.putConfiguration(config(true));
    const a = (await seen) - t0;
    t0 = performance.now();
    seen = when(engine, 'proceed');
    provider.putConfiguration(config(false));
    const b = (await seen) - t0;
    if (i >= WARMUP) {
      on.push(a);
      off.push(b);
    }
  }
  follower.close();
  await engine.close();
  return { on, off };
}

async function postgres() {
  const schema = `qof_bench_${process.pid}`;
  const provider = new InMemoryProvider(config(false));
  await OpenFeature.setProviderAndWait('bench-pg', provider);
  const storeA = createPostgresStore({ connectionString: url, schema });
  const storeB = createPostgresStore({ connectionString: url, schema });
  const a = createQuiesce({ store: storeA, instanceId: 'a', soakMs: 0, logger: silentLogger });
  const b = createQuiesce({ store: storeB, instanceId: 'b', soakMs: 0, logger: silentLogger });
  await Promise.all([a.start(), b.start()]);
  while (!storeB.listening) await new Promise((r) => setTimeout(r, 10));
  const follower = followFlag({ engine: a, client: OpenFeature.getClient('bench-pg') });
  await follower.start();
  const selfOn = [];
  const otherOn = [];
  const otherOff = [];
  const n = Math.min(FLIPS, 100);
  try {
    for (let i = 0; i < WARMUP + n; i++) {
      const seenA = when(a, 'refuse');
      const seenB = when(b, 'refuse');
      let t0 = performance.now();
      provider.putConfiguration(config(true));
      const [ta, tb] = await Promise.all([seenA, seenB]);
      if (i >= WARMUP) {
        selfOn.push(ta - t0);
        otherOn.push(tb - t0);
      }
      await a.waitForPhase('frozen', { timeoutMs: 10_000 });
      t0 = performance.now();
      const offB = when(b, 'proceed');
      provider.putConfiguration(config(false));
      const tOff = await offB;
      if (i >= WARMUP) otherOff.push(tOff - t0);
      await a.waitForPhase('closed', { timeoutMs: 10_000 });
    }
  } finally {
    follower.close();
    await a.close();
    await b.close();
    await storeA.close();
    await storeB.close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  }
  return { selfOn, otherOn, otherOff };
}

async function flagd() {
  const dir = await mkdtemp(join(tmpdir(), 'quiesce-of-bench-'));
  const file = join(dir, 'flags.json');
  const put = (on) =>
    writeFile(
      file,
      JSON.stringify({
        flags: {
          read_only: {
            state: 'ENABLED',
            variants: { on: true, off: false },
            defaultVariant: on ? 'on' : 'off',
          },
        },
      }),
    );
  await put(false);
  await OpenFeature.setProviderAndWait(
    'bench-flagd',
    new FlagdProvider({ resolverType: 'in-process', offlineFlagSourcePath: file }),
  );
  const engine = createQuiesce({ soakMs: 0, logger: silentLogger });
  const follower = followFlag({ engine, client: OpenFeature.getClient('bench-flagd') });
  await follower.start();
  const lat = [];
  try {
    for (let i = 0; i < FLAGD_FLIPS; i++) {
      const on = i % 2 === 0;
      const seen = when(engine, on ? 'refuse' : 'proceed');
      const t0 = performance.now();
      await put(on);
      lat.push((await seen) - t0);
    }
  } finally {
    follower.close();
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
  return lat;
}

const mem = await inMemory();
const shared = await postgres();
const file = await flagd();
await OpenFeature.close();

console.log(
  `\n@quiesce/openfeature — flag flip → refusing, times in ms; load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on ${availableParallelism()} cores`,
);
row('in-memory provider, memory store: flip on → refusing', mem.on);
row('in-memory provider, memory store: flip off → writing', mem.off);
row('in-memory provider, PostgreSQL: flip on → this engine refusing', shared.selfOn);
row('in-memory provider, PostgreSQL: flip on → other engine refusing', shared.otherOn);
row('in-memory provider, PostgreSQL: flip off → other engine writing', shared.otherOff);
row('flagd offline file (fs.watchFile ~5 s): write → flip applied', file);
