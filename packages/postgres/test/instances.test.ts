import {
  type InstanceScenarioBackend,
  POSTGRES_URL,
  runCrashTrials,
  runInstanceScenarios,
  serviceAvailable,
  uniqueName,
} from '@quiesce/testkit';
import pg from 'pg';
import { describe } from 'vitest';
import { createPostgresStore } from '../src/index.js';
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
    const admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
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
      async terminate(ports) {
        if (ports.length === 0) return 0;
        const r = await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND pid <> pg_backend_pid()`,
          [ports],
        );
        return r.rowCount ?? 0;
      },
      async dispose() {
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.end();
      },
    };
  };
  runInstanceScenarios('postgres (child processes)', backend);
  runCrashTrials('postgres', backend);
});
