// Fleet benchmark on PostgreSQL: N instances (several per process: one pool and one shared LISTEN
// connection per process) on one store. `pnpm --filter @quiesce/postgres bench` (sizes:
// QUIESCE_FLEET_SIZES, default 8,64,256,1000; windows per size: QUIESCE_FLEET_WINDOWS, default 3).
import { createQuiesce, silentLogger } from '@quiesce/core';
import { createPostgresStore } from '@quiesce/postgres';
import { measureFleet } from '@quiesce/testkit/fleet';
import { printFleet } from '@quiesce/testkit/fleet-report';
import pg from 'pg';

const url = process.env.QUIESCE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const sizes = (process.env.QUIESCE_FLEET_SIZES ?? '8,64,256,1000').split(',').map(Number);
const windows = Number(process.env.QUIESCE_FLEET_WINDOWS ?? 3);
const admin = new pg.Pool({ connectionString: url, max: 1 });
const version = (await admin.query('SHOW server_version')).rows[0].server_version;
const maxConnections = (await admin.query('SHOW max_connections')).rows[0].max_connections;
const results = [];
for (const n of sizes) {
  const schema = `qpg_fleet_bench_${process.pid}_${n}`;
  try {
    results.push(
      await measureFleet({
        script: new URL('../test/fixtures/fleet.mjs', import.meta.url),
        n,
        perProcess: Math.ceil(n / (n <= 64 ? 2 : 4)),
        config: { connectionString: url, schema, engine: { soakMs: 0 }, poolMax: 6 },
        controller: createQuiesce({
          store: createPostgresStore({ connectionString: url, schema }),
          participant: false,
          soakMs: 0,
          logger: silentLogger,
        }),
        windows,
      }),
    );
  } catch (err) {
    results.push({ n, error: err.message });
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
}
await admin.end();
printFleet(
  `@quiesce/postgres — fleet on loopback (PostgreSQL ${version}, max_connections ${maxConnections}; per process: a pool of 6 + one LISTEN connection)`,
  results,
);
// Whatever a closed client leaves scheduled must not hold the benchmark open.
process.exit(0);
