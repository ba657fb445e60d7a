import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createPostgresStore } from '../src/index.js';

const ok = await serviceAvailable('postgres', '@quiesce/postgres shared listener');

describe.skipIf(!ok)('one LISTEN connection per process', () => {
  it('20 stores in one process share one LISTEN connection; every one of them hears a change', {
    timeout: 30_000,
  }, async () => {
    const schema = uniqueName('qpg_shared');
    const app = uniqueName('quiesce-shared');
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('application_name', app);
    const admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    const writer = createPostgresStore({ connectionString: POSTGRES_URL, schema });
    // Shared listener of its own (the writer's), then 20 more stores on another connection string.
    await writer.read();
    const stores = Array.from({ length: 20 }, () =>
      createPostgresStore({ connectionString: url.toString(), schema }),
    );
    const heard = new Set<number>();
    const offs = stores.map((s, i) => s.subscribe((st) => st.version === 1 && heard.add(i)));
    try {
      await expect.poll(() => stores.every((s) => s.listening), { timeout: 10_000 }).toBe(true);
      const backends = await admin.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`,
        [app],
      );
      expect(backends.rows[0].n).toBe(1);
      const current = await writer.read();
      const r = await writer.compareAndSet(current.version, {
        ...current,
        version: current.version + 1,
        updatedAt: new Date().toISOString(),
      });
      expect(r.ok).toBe(true);
      await expect.poll(() => heard.size, { timeout: 10_000 }).toBe(20);
    } finally {
      for (const off of offs) off();
      await Promise.all(stores.map((s) => s.close()));
      await writer.close();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    }
  });
});
