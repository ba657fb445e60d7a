// What the shared benchmarks (@quiesce/testkit/store-bench) need of PostgreSQL: the server
// (QUIESCE_TEST_POSTGRES_URL), a fresh schema per run, this package's child scripts.
import { createPostgresStore } from '@quiesce/postgres';
import pg from 'pg';
import { spawnInstance } from '../test/fixtures/harness.mjs';

const url = process.env.QUIESCE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

// The benchmark's own queries (the server's version, dropping a schema); idle, it lets the process exit.
const admin = new pg.Pool({ connectionString: url, max: 1, allowExitOnIdle: true });

/** @type {import('@quiesce/testkit/store-bench').StoreBenchTarget} */
export const target = {
  label: '@quiesce/postgres',
  url,
  defaultPort: 5432,
  async server() {
    const version = (await admin.query('SHOW server_version')).rows[0].server_version;
    const max = (await admin.query('SHOW max_connections')).rows[0].max_connections;
    return {
      version: `PostgreSQL ${version}`,
      // The fleet child's pool (test/fixtures/fleet.mjs, poolMax 6 unless the config says otherwise).
      fleet: `max_connections ${max}; per process: a pool of 6 + one LISTEN connection`,
    };
  },
  namespace(name) {
    const schema = `qpg_${name}`;
    return {
      config: (at) => ({ schema, connectionString: at }),
      openStore: () => createPostgresStore({ connectionString: url, schema }),
      drop: () => admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`),
    };
  },
  fleetScript: new URL('../test/fixtures/fleet.mjs', import.meta.url),
  spawnInstance,
};
