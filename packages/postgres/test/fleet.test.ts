import { POSTGRES_URL, runFleetSuite, serviceAvailable, uniqueName } from '@quiesce/testkit';
import { describe } from 'vitest';
import { createPostgresStore } from '../src/index.js';
import { dropSchema } from './admin.js';

const ok = await serviceAvailable('postgres', '@quiesce/postgres fleet');

describe.skipIf(!ok)('postgres', () => {
  runFleetSuite(
    'postgres',
    () => {
      const schema = uniqueName('qpg_fleet');
      return {
        script: new URL('./fixtures/fleet.mjs', import.meta.url),
        config: { connectionString: POSTGRES_URL, schema },
        openStore: () => createPostgresStore({ connectionString: POSTGRES_URL, schema }),
        dispose: () => dropSchema(schema),
      };
    },
    { connections: 'a pool and one LISTEN connection each' },
  );
});
