// What the write audit's triggers cost a writer: the same statements on a table without and with the
// audit triggers, in a database of its own. Runs on the built package (dist) against the real server:
// `pnpm --filter @quiesce/postgres bench:audit`. Prints medians of rounds and the ratio; asserts nothing.
import { createWriteAudit } from '@quiesce/postgres';
import pg from 'pg';

const base = process.env.QUIESCE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const database = `qpg_audit_bench_${process.pid}`;
const url = new URL(base);
url.pathname = `/${database}`;
const ROUNDS = Number(process.env.QUIESCE_BENCH_ROUNDS ?? 7);
const SINGLE = 500; // one-row INSERT statements per round
const BATCH = 20; // 500-row INSERT … SELECT statements per round

const admin = new pg.Client({ connectionString: base });
await admin.connect();
await admin.query(`CREATE DATABASE "${database}"`);
const c = new pg.Client({ connectionString: url.toString() });
const audit = createWriteAudit({ connectionString: url.toString(), schema: 'quiesce', schemas: ['app'] });
try {
  await c.connect();
  // Two identical tables, one audited; rounds alternate between them so machine noise hits both.
  await c.query(`CREATE SCHEMA app; CREATE TABLE app.t (id bigserial PRIMARY KEY, v text);
    CREATE SCHEMA plain; CREATE TABLE plain.t (id bigserial PRIMARY KEY, v text)`);
  await audit.install();
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  async function round(table, into) {
    let t = performance.now();
    for (let i = 0; i < SINGLE; i++) await c.query(`INSERT INTO ${table} (v) VALUES ('x')`);
    into.single.push(((performance.now() - t) * 1000) / SINGLE);
    t = performance.now();
    for (let i = 0; i < BATCH; i++)
      await c.query(`INSERT INTO ${table} (v) SELECT 'y' FROM generate_series(1, 500)`);
    into.batch.push(((performance.now() - t) * 1000) / BATCH);
    await c.query(`TRUNCATE ${table}`);
  }
  const plain = { single: [], batch: [] };
  const audited = { single: [], batch: [] };
  await round('plain.t', { single: [], batch: [] }); // warm-up
  await round('app.t', { single: [], batch: [] });
  for (let r = 0; r < ROUNDS; r++) {
    await round('plain.t', plain);
    await round('app.t', audited);
  }
  const without = { single: median(plain.single), batch: median(plain.batch) };
  const withAudit = { single: median(audited.single), batch: median(audited.batch) };
  const version = (await c.query('SHOW server_version')).rows[0].server_version;
  console.log(
    `@quiesce/postgres — write audit triggers (PostgreSQL ${version}), medians of ${ROUNDS} rounds`,
  );
  console.log('statement                         without      with audit   ratio');
  for (const [name, key] of [
    ['INSERT one row (autocommit)', 'single'],
    ['INSERT 500 rows (one statement)', 'batch'],
  ]) {
    console.log(
      `${name.padEnd(34)}${`${without[key].toFixed(0)} µs`.padEnd(13)}${`${withAudit[key].toFixed(0)} µs`.padEnd(13)}${(withAudit[key] / without[key]).toFixed(2)}×`,
    );
  }
} finally {
  await c.end().catch(() => {});
  await audit.close();
  await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.end();
}
