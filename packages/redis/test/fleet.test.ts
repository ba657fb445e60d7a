import { REDIS_URL, runFleetSuite, serviceAvailable, uniqueName } from '@quiesce/testkit';
import { describe } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { dropPrefix } from './admin.js';

const ok = await serviceAvailable('redis', '@quiesce/redis fleet');

describe.skipIf(!ok)('redis', () => {
  runFleetSuite('redis', () => {
    const prefix = `${uniqueName('qrs_fleet')}:`;
    return {
      script: new URL('./fixtures/fleet.mjs', import.meta.url),
      config: { url: REDIS_URL, prefix },
      openStore: () => createRedisStore({ url: REDIS_URL, prefix }),
      dispose: () => dropPrefix(prefix),
    };
  });
});
