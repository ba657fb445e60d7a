// begin → frozen with one instance partitioned from PostgreSQL, against the lease TTL (default timings).
import { createQuiesce, silentLogger } from '@quiesce/core';
import { createPostgresStore } from '@quiesce/postgres';
import { runPartitionBench } from '@quiesce/testkit/partition-bench';
import pg from 'pg';
import { createTcpProxy, spawnInstance } from '../test/fixtures/harness.mjs';

const url = process.env.QUIESCE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `qpg_partition_bench_${process.pid}`;
const server = new URL(url);
try {
  await runPartitionBench({
    title: '@quiesce/postgres — begin → frozen with one instance partitioned (TCP proxy cut)',
    spawnInstance,
    createTcpProxy,
    proxyConfig: { host: server.hostname, port: Number(server.port || 5432) },
    instanceConfig: (proxyPort) => {
      const u = new URL(url);
      if (proxyPort) u.port = String(proxyPort);
      return { schema, connectionString: u.toString() };
    },
    createController: () =>
      createQuiesce({
        store: createPostgresStore({ connectionString: url, schema }),
        participant: false,
        soakMs: 0,
        logger: silentLogger,
      }),
  });
} finally {
  const admin = new pg.Pool({ connectionString: url, max: 1 });
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
}
process.exit(0);
