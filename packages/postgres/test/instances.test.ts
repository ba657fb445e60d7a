import {
  type InstanceScenarioBackend,
  POSTGRES_URL,
  runCrashTrials,
  runInstanceScenarios,
  serviceAvailable,
  uniqueName,
} from '@quiesce/testkit';
import { describe } from 'vitest';
import { createPostgresStore } from '../src/index.js';
import { dropSchema, terminateConnections } from './admin.js';
import { createTcpProxy, spawnInstance } from './fixtures/harness.mjs';

const ok = await serviceAvailable('postgres', '@quiesce/postgres many instances');

function withApplicationName(url: string, name: string, port?: number): string {
  const u = new URL(url);
  if (port) u.port = String(port);
  u.searchParams.set('application_name', name);
  return u.toString();
}

describe.skipIf(!ok)('postgres', () => {
  const backend = (): InstanceScenarioBackend => {
    const schema = uniqueName('qpg_instances');
    return {
      spawn: (id, engine, proxyPort, extra) =>
        spawnInstance({
          ...extra,
          id,
          schema,
          engine,
          connectionString: withApplicationName(POSTGRES_URL, `quiesce-test:${id}`, proxyPort),
        }),
      openStore: () => createPostgresStore({ connectionString: POSTGRES_URL, schema }),
      proxy: () => {
        const u = new URL(POSTGRES_URL);
        return createTcpProxy(u.hostname, Number(u.port || 5432));
      },
      terminate: terminateConnections,
      dispose: () => dropSchema(schema),
    };
  };
  runInstanceScenarios('postgres (child processes)', backend);
  runCrashTrials('postgres', backend);
});
