// Propagation bench on Redis (the shared runner is in the testkit). Runs on the built package
// (dist) against the real server: `pnpm --filter @quiesce/redis bench`.
import { createRedisStore } from '@quiesce/redis';
import { runPropagationBench } from '@quiesce/testkit/propagation-bench';
import { Redis } from 'ioredis';
import { spawnInstance } from '../test/fixtures/harness.mjs';

const url = process.env.QUIESCE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `qrs_bench_${process.pid}:`;
const admin = new Redis(url);
const version = /redis_version:(\S+)/.exec(await admin.info('server'))[1];
try {
  await runPropagationBench({
    title: `@quiesce/redis — propagation on loopback (Redis ${version})`,
    createStore: () => createRedisStore({ url, prefix }),
    spawnInstance,
    instanceConfig: { prefix, url },
  });
} finally {
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length) await admin.del(...keys);
  admin.disconnect();
}
