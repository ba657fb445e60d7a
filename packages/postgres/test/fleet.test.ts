import { createQuiesce, silentLogger } from '@quiesce/core';
import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import { measureFleet } from '@quiesce/testkit/fleet';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createPostgresStore } from '../src/index.js';

const ok = await serviceAvailable('postgres', '@quiesce/postgres fleet');
const N = Number(process.env.QUIESCE_FLEET_N ?? 200);

describe.skipIf(!ok)('postgres fleet', () => {
  it(`${N} instances over two processes (a pool and one LISTEN connection each): no live instance declared lost; closed only once every instance writes again`, {
    timeout: 240_000,
  }, async () => {
    const schema = uniqueName('qpg_fleet');
    const admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    try {
      const figures = await measureFleet({
        script: new URL('./fixtures/fleet.mjs', import.meta.url),
        n: N,
        perProcess: Math.ceil(N / 2),
        config: { connectionString: POSTGRES_URL, schema, engine: { soakMs: 0 } },
        controller: createQuiesce({
          store: createPostgresStore({ connectionString: POSTGRES_URL, schema }),
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
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    }
  });
});
