// Fleet benchmark on Redis: N instances (several per process) on one store, a controller beginning
// and ending windows. `pnpm --filter @quiesce/redis bench` (sizes: QUIESCE_FLEET_SIZES, default
// 8,64,256,1000; windows per size: QUIESCE_FLEET_WINDOWS, default 3).
import { createQuiesce, silentLogger } from '@quiesce/core';
import { createRedisStore } from '@quiesce/redis';
import { measureFleet } from '@quiesce/testkit/fleet';
import { printFleet } from '@quiesce/testkit/fleet-report';
import { Redis } from 'ioredis';

const url = process.env.QUIESCE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const sizes = (process.env.QUIESCE_FLEET_SIZES ?? '8,64,256,1000').split(',').map(Number);
const windows = Number(process.env.QUIESCE_FLEET_WINDOWS ?? 3);
const admin = new Redis(url);
const version = /redis_version:(\S+)/.exec(await admin.info('server'))[1];
const results = [];
for (const n of sizes) {
  const prefix = `qrs_fleet_bench_${process.pid}_${n}:`;
  try {
    results.push(
      await measureFleet({
        script: new URL('../test/fixtures/fleet.mjs', import.meta.url),
        n,
        perProcess: Math.ceil(n / (n <= 64 ? 2 : 4)),
        config: { url, prefix, engine: { soakMs: 0 } },
        controller: createQuiesce({
          store: createRedisStore({ url, prefix }),
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
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length) await admin.del(...keys);
  }
}
admin.disconnect();
printFleet(`@quiesce/redis — fleet on loopback (Redis ${version})`, results);
// Whatever a closed client leaves scheduled must not hold the benchmark open.
process.exit(0);
