// What the shared benchmarks (@quiesce/testkit/store-bench) need of Redis: the server
// (QUIESCE_TEST_REDIS_URL), a fresh key prefix per run, this package's child scripts.
import { createRedisStore } from '@quiesce/redis';
import { Redis } from 'ioredis';
import { spawnInstance } from '../test/fixtures/harness.mjs';

const url = process.env.QUIESCE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function admin(fn) {
  const r = new Redis(url);
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** @type {import('@quiesce/testkit/store-bench').StoreBenchTarget} */
export const target = {
  label: '@quiesce/redis',
  url,
  defaultPort: 6379,
  server: () =>
    admin(async (r) => ({ version: `Redis ${/redis_version:(\S+)/.exec(await r.info('server'))[1]}` })),
  namespace(name) {
    const prefix = `qrs_${name}:`;
    return {
      config: (at) => ({ prefix, url: at }),
      openStore: () => createRedisStore({ url, prefix }),
      drop: () =>
        admin(async (r) => {
          const keys = await r.keys(`${prefix}*`);
          if (keys.length) await r.del(...keys);
        }),
    };
  },
  fleetScript: new URL('../test/fixtures/fleet.mjs', import.meta.url),
  spawnInstance,
};
