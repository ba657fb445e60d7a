import {
  type InstanceScenarioBackend,
  REDIS_URL,
  runCrashTrials,
  runInstanceScenarios,
  serviceAvailable,
  uniqueName,
} from '@quiesce/testkit';
import { Redis } from 'ioredis';
import { describe } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { createTcpProxy, spawnInstance } from './fixtures/harness.mjs';

const ok = await serviceAvailable('redis', '@quiesce/redis many instances');

describe.skipIf(!ok)('redis', () => {
  const backend = (): InstanceScenarioBackend => {
    const prefix = `${uniqueName('qrs_instances')}:`;
    const admin = new Redis(REDIS_URL);
    const server = new URL(REDIS_URL);
    return {
      spawn: (id, engine, proxyPort, extra) => {
        const url = new URL(REDIS_URL);
        if (proxyPort) url.port = String(proxyPort);
        return spawnInstance({ ...extra, id, prefix, engine, url: url.toString() });
      },
      openStore: () => createRedisStore({ url: REDIS_URL, prefix }),
      proxy: () => createTcpProxy(server.hostname, Number(server.port || 6379)),
      async terminate(ports) {
        let killed = 0;
        for (const port of ports) {
          killed += Number(
            await admin.call('CLIENT', 'KILL', 'ADDR', `127.0.0.1:${port}`, 'SKIPME', 'yes').catch(() => 0),
          );
        }
        return killed;
      },
      async dispose() {
        const keys = await admin.keys(`${prefix}*`);
        if (keys.length) await admin.del(...keys);
        admin.disconnect();
      },
    };
  };
  runInstanceScenarios('redis (child processes)', backend);
  runCrashTrials('redis', backend);
});
