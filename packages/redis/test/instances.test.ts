import { REDIS_URL, runInstanceSuite, serviceAvailable, uniqueName } from '@quiesce/testkit';
import { describe } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { dropPrefix, terminateConnections } from './admin.js';
import { spawnInstance } from './fixtures/harness.mjs';

const ok = await serviceAvailable('redis', '@quiesce/redis many instances');

describe.skipIf(!ok)('redis', () => {
  runInstanceSuite('redis', () => {
    const prefix = `${uniqueName('qrs_instances')}:`;
    return {
      spawnInstance,
      url: REDIS_URL,
      defaultPort: 6379,
      config: (url) => ({ prefix, url }),
      openStore: () => createRedisStore({ url: REDIS_URL, prefix }),
      terminate: terminateConnections,
      dispose: () => dropPrefix(prefix),
    };
  });
});
