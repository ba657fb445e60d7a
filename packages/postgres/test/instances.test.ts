import { POSTGRES_URL, runInstanceSuite, serviceAvailable, uniqueName } from '@quiesce/testkit';
import { describe } from 'vitest';
import { createPostgresStore } from '../src/index.js';
import { dropSchema, terminateConnections } from './admin.js';
import { spawnInstance } from './fixtures/harness.mjs';

const ok = await serviceAvailable('postgres', '@quiesce/postgres many instances');

describe.skipIf(!ok)('postgres', () => {
  runInstanceSuite('postgres', () => {
    const schema = uniqueName('qpg_instances');
    return {
      spawnInstance,
      url: POSTGRES_URL,
      defaultPort: 5432,
      config(url, id) {
        // Named, so pg_stat_activity tells which instance a connection serves.
        const u = new URL(url);
        u.searchParams.set('application_name', `quiesce-test:${id}`);
        return { schema, connectionString: u.toString() };
      },
      openStore: () => createPostgresStore({ connectionString: POSTGRES_URL, schema }),
      terminate: terminateConnections,
      dispose: () => dropSchema(schema),
    };
  });
});
