import {
  type InstanceScenarioBackend,
  REDIS_URL,
  runCrashTrials,
  runInstanceScenarios,
  serviceAvailable,
  uniqueName,
} from '@quiesce/testkit';
import { describe } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { dropPrefix, terminateConnections } from './admin.js';
import { createTcpProxy, spawnInstance } from './fixtures/harness.mjs';

const ok = await serviceAvailable('redis', '@quiesce/redis many instances');

describe.skipIf(!ok)('redis', () => {
  const backend = (): InstanceScenarioBackend => {
    const prefix = `${uniqueName('qrs_instances')}:`;
    const server = new URL(REDIS_URL);
    return {
      spawn: (id, engine, proxyPort, extra) => {
        const url = new URL(REDIS_URL);
        if (proxyPort) url.port = String(proxyPort);
        return spawnInstance({ ...extra, id, prefix, engine, url: url.toString() });
      },
      openStore: () => createRedisStore({ url: REDIS_URL, prefix }),
      proxy: () => createTcpProxy(server.hostname, Number(server.port || 6379)),
      terminate: terminateConnections,
      dispose: () => dropPrefix(prefix),
    };
  };
  runInstanceScenarios('redis (child processes)', backend);
  runCrashTrials('redis', backend);
});
