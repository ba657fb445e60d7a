import { createQuiesce, silentLogger } from '@quiesce/core';
import { REDIS_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import { measureFleet } from '@quiesce/testkit/fleet';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedisStore } from '../src/index.js';

const ok = await serviceAvailable('redis', '@quiesce/redis fleet');
const N = Number(process.env.QUIESCE_FLEET_N ?? 200);

describe.skipIf(!ok)('redis fleet', () => {
  it(`${N} instances over two processes: no live instance declared lost; closed only once every instance writes again`, {
    timeout: 240_000,
  }, async () => {
    const prefix = `${uniqueName('qrs_fleet')}:`;
    const admin = new Redis(REDIS_URL);
    try {
      const figures = await measureFleet({
        script: new URL('./fixtures/fleet.mjs', import.meta.url),
        n: N,
        perProcess: Math.ceil(N / 2),
        config: { url: REDIS_URL, prefix, engine: { soakMs: 0 } },
        controller: createQuiesce({
          store: createRedisStore({ url: REDIS_URL, prefix }),
          participant: false,
          soakMs: 0,
          logger: silentLogger,
        }),
        idleMs: 1000,
      });
      const [w] = figures.windows;
      expect(w!.declaredLost).toBe(0);
      expect(w!.selfFenced).toBe(0);
      expect(w!.freezeConfirmed).toBe(N);
      expect(w!.thawConfirmed).toBe(N);
      expect(w!.writingAfterClosed).toBe(0);
    } finally {
      const keys = await admin.keys(`${prefix}*`);
      if (keys.length) await admin.del(...keys);
      admin.disconnect();
    }
  });
});
