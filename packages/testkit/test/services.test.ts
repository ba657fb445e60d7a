import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ensureDatabase, POSTGRES_URL, serviceAvailable, uniqueName } from '../src/services.js';

const available = await serviceAvailable('postgres', 'testkit services: a missing database is created');

describe.skipIf(!available)('test services', () => {
  it('creates a missing database instead of failing every suite that uses it', async () => {
    const name = uniqueName('qtk_missing');
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${name}`;
    try {
      expect(await ensureDatabase(url.toString())).toBeNull();
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      expect((await client.query('SELECT current_database() AS db')).rows[0].db).toBe(name);
      await client.end();
      // Existing now: nothing to do.
      expect(await ensureDatabase(url.toString())).toBeNull();
    } finally {
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  it('says why when the server refuses (no such role)', async () => {
    const url = new URL(POSTGRES_URL);
    url.username = uniqueName('qtk_nobody');
    const why = await ensureDatabase(url.toString());
    expect(why).toMatch(/cannot connect/);
  });
});
