// Propagation bench on PostgreSQL (the shared runner is in the testkit). Runs on the built package
// (dist) against the real server: `pnpm --filter @quiesce/postgres bench`.
import { createPostgresStore } from '@quiesce/postgres';
import { runPropagationBench } from '@quiesce/testkit/propagation-bench';
import pg from 'pg';
import { spawnInstance } from '../test/fixtures/harness.mjs';

const url = process.env.QUIESCE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `qpg_bench_${process.pid}`;
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const version = (await admin.query('SHOW server_version')).rows[0].server_version;
try {
  await runPropagationBench({
    title: `@quiesce/postgres — propagation on loopback (PostgreSQL ${version})`,
    createStore: () => createPostgresStore({ connectionString: url, schema }),
    spawnInstance,
    instanceConfig: { schema, connectionString: url },
  });
} finally {
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
}
