// Reads during a backfill: p95 of a read query while 2,000 queued intents replay, against the p95
// before the window, on embedded PGlite and on PostgreSQL — paced (the engine's default cap of 200
// replays a second, each after yielding to the event loop) and unpaced (no cap).
// `pnpm --filter @quiesce/pg-boss bench` (after a build); BENCH_INTENTS to change the count.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { createQuiesce, silentLogger } from '@quiesce/core';
import pg from 'pg';
import { createPgBossIntentQueue } from '../dist/index.js';

const POSTGRES_URL = process.env.QUIESCE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const INTENTS = Number(process.env.BENCH_INTENTS ?? 2000);
const p95 = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)] ?? NaN;
};

async function trial(label, db, queueOptions, ratePerSecond) {
  const table = `bench_backfill_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await db.query(`CREATE TABLE ${table} (key text PRIMARY KEY, value int NOT NULL)`);
  const queue = await createPgBossIntentQueue(queueOptions);
  const engine = createQuiesce({
    intentQueue: queue,
    soakMs: 0,
    logger: silentLogger,
    replay: { concurrency: 4, ratePerSecond },
  });
  engine.handle('effect', async (p, ctx) => {
    await db.query(`INSERT INTO ${table} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [
      ctx.idempotencyKey,
      p.value,
    ]);
  });
  // A reader, as an app serving GETs would: one read at a time, back to back with a 2 ms gap.
  let phase = 'idle';
  const samples = { before: [], during: [] };
  let reading = true;
  const reader = (async () => {
    while (reading) {
      const t0 = performance.now();
      await db.query(`SELECT count(*) FROM ${table} WHERE value % 7 = 3`);
      const ms = performance.now() - t0;
      if (phase === 'before' || phase === 'during') samples[phase].push(ms);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  phase = 'before';
  await new Promise((r) => setTimeout(r, 3000));
  phase = 'idle';
  await engine.begin({ reason: 'bench', message: 'Back soon' });
  await engine.waitForPhase('frozen', { timeoutMs: 30_000 });
  for (let i = 0; i < INTENTS; i++)
    await engine.enqueue(
      { surface: 'http', name: 'POST /x', idempotencyKey: `k${i}` },
      { value: i },
      { name: 'effect' },
    );
  await engine.end();
  await engine.waitForPhase('backfilling', { timeoutMs: 30_000 });
  phase = 'during';
  const t0 = performance.now();
  await engine.waitForPhase('closed', { timeoutMs: 600_000 });
  const tookMs = performance.now() - t0;
  phase = 'idle';
  reading = false;
  await reader;
  const applied = Number((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n);
  await engine.close();
  await queue.close();
  await db.query(`DROP TABLE ${table}`);
  const before = p95(samples.before);
  const during = p95(samples.during);
  return {
    label,
    pacing: ratePerSecond ? `${ratePerSecond}/s` : 'none',
    before,
    during,
    ratio: during / before,
    reads: samples.during.length,
    tookMs,
    applied,
  };
}

const rows = [];
{
  const dir = await mkdtemp(join(tmpdir(), 'quiesce-backfill-bench-'));
  const pglite = await PGlite.create(join(dir, 'db'));
  const db = { query: (text, values) => pglite.query(text, values) };
  try {
    for (const rate of [200, 0]) rows.push(await trial('PGlite', db, { pglite, schema: `bb_${rate}` }, rate));
  } finally {
    await pglite.close();
    await rm(dir, { recursive: true, force: true });
  }
}
{
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 4 });
  try {
    for (const rate of [200, 0]) {
      const schema = `bb_${process.pid}_${rate}`;
      rows.push(await trial('PostgreSQL', pool, { connectionString: POSTGRES_URL, schema }, rate));
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  } finally {
    await pool.end();
  }
}
console.log(
  `\n@quiesce/pg-boss — reads during a ${INTENTS}-intent backfill (p95 of a read, before the window vs during the backfill)\n`,
);
console.log('database     pacing   p95 before   p95 during   ratio   reads during   backfill took   applied');
for (const r of rows)
  console.log(
    `${r.label.padEnd(11)}  ${r.pacing.padEnd(7)}  ${r.before.toFixed(2).padStart(8)} ms  ${r.during.toFixed(2).padStart(8)} ms  ${r.ratio.toFixed(2).padStart(5)}×  ${String(r.reads).padStart(12)}  ${(r.tookMs / 1000).toFixed(1).padStart(11)} s  ${String(r.applied).padStart(7)}`,
  );
process.exit(0);
