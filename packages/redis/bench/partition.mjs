// begin → frozen with one instance partitioned from Redis, against the lease TTL (default timings).
import { createQuiesce, silentLogger } from '@quiesce/core';
import { createRedisStore } from '@quiesce/redis';
import { runPartitionBench } from '@quiesce/testkit/partition-bench';
import { Redis } from 'ioredis';
import { createTcpProxy, spawnInstance } from '../test/fixtures/harness.mjs';

const url = process.env.QUIESCE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `qrs_partition_bench_${process.pid}:`;
const server = new URL(url);
try {
  await runPartitionBench({
    title: '@quiesce/redis — begin → frozen with one instance partitioned (TCP proxy cut)',
    spawnInstance,
    createTcpProxy,
    proxyConfig: { host: server.hostname, port: Number(server.port || 6379) },
    instanceConfig: (proxyPort) => {
      const u = new URL(url);
      if (proxyPort) u.port = String(proxyPort);
      return { prefix, url: u.toString() };
    },
    createController: () =>
      createQuiesce({
        store: createRedisStore({ url, prefix }),
        participant: false,
        soakMs: 0,
        logger: silentLogger,
      }),
  });
} finally {
  const admin = new Redis(url);
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length) await admin.del(...keys);
  admin.disconnect();
}
process.exit(0);
