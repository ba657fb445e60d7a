import { isQuiesceError, type QuiesceState } from '@quiesce/core';
import {
  POSTGRES_URL,
  runStoreContractSuite,
  sampleState,
  serviceAvailable,
  uniqueName,
  waitFor,
} from '@quiesce/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresStore } from '../src/index.js';
import { withAdmin as admin, dropSchema, terminateConnections } from './admin.js';

const ok = await serviceAvailable('postgres', '@quiesce/postgres store');

describe.skipIf(!ok)('postgres store', () => {
  runStoreContractSuite('postgres', () => {
    const schema = uniqueName('qpg_contract');
    const pools: pg.Pool[] = [];
    return {
      open: () => createPostgresStore({ connectionString: POSTGRES_URL, schema }),
      corrupt: (raw) =>
        admin(async (c) => {
          await c.query(`UPDATE "${schema}".state SET payload = $1::jsonb`, [raw]);
        }),
      connection: {
        url: POSTGRES_URL,
        defaultPort: 5432,
        openVia(url) {
          // An app's pool whose reads time out soon: a read on a half-open connection fails and drops it.
          const pool = new pg.Pool({ connectionString: url, max: 2, query_timeout: 500 });
          pool.on('error', () => {});
          pools.push(pool);
          return createPostgresStore({ pool, schema, reconnect: { initialDelayMs: 20, pingMs: 200 } });
        },
        terminate: terminateConnections,
      },
      async dispose() {
        await Promise.all(pools.map((p) => p.end().catch(() => {})));
        await dropSchema(schema);
      },
    };
  });

  describe('beyond the contract', () => {
    const schema = uniqueName('qpg_store');
    beforeAll(async () => {
      await dropSchema(schema);
    });
    afterAll(async () => {
      await dropSchema(schema);
    });

    it('a state too big for a NOTIFY payload is announced by version and read', async () => {
      const key = 'big';
      const writer = createPostgresStore({ connectionString: POSTGRES_URL, schema, key });
      const reader = createPostgresStore({ connectionString: POSTGRES_URL, schema, key });
      try {
        const seen: QuiesceState[] = [];
        reader.subscribe((s) => seen.push(s));
        await waitFor('listening', () => reader.listening);
        const big = sampleState(1, { report: { blob: 'x'.repeat(20_000) } });
        expect((await writer.compareAndSet(0, big)).ok).toBe(true);
        await waitFor('the big state', () => seen.some((s) => s.version === 1));
        expect(seen.find((s) => s.version === 1)).toEqual(big);
      } finally {
        await writer.close();
        await reader.close();
      }
    });

    it("on an app's pool: LISTEN goes to the same server, and close() leaves the pool to the app", async () => {
      const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
      const writer = createPostgresStore({ connectionString: POSTGRES_URL, schema, key: 'app-pool' });
      const reader = createPostgresStore({ pool, schema, key: 'app-pool' });
      try {
        const seen: number[] = [];
        reader.subscribe((s) => seen.push(s.version));
        await waitFor('listening', () => reader.listening);
        await writer.compareAndSet(0, sampleState(1));
        await waitFor('version 1 on the app pool store', () => seen.includes(1));
        await reader.close();
        expect((await pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      } finally {
        await writer.close();
        await reader.close();
        await pool.end();
      }
    });

    it('keys share a schema without seeing each other', async () => {
      const a = createPostgresStore({ connectionString: POSTGRES_URL, schema, key: 'app-a' });
      const b = createPostgresStore({ connectionString: POSTGRES_URL, schema, key: 'app-b' });
      try {
        await a.compareAndSet(0, sampleState(1));
        expect((await b.read()).version).toBe(0);
        await b.registry.upsert({
          id: 'b-1',
          startedAt: new Date().toISOString(),
          lastSeen: Date.now(),
          ackedVersion: 0,
          inFlight: 0,
        });
        expect(await a.registry.list()).toEqual([]);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('a state row that vanishes is an outage, never a silent return to version 0', async () => {
      const store = createPostgresStore({ connectionString: POSTGRES_URL, schema, key: 'gone' });
      try {
        await store.compareAndSet(0, sampleState(1));
        await admin((c) => c.query(`DELETE FROM "${schema}".state WHERE key = 'gone'`));
        const err = await store.read().catch((e: unknown) => e);
        expect(isQuiesceError(err) && err.code === 'STORE_UNAVAILABLE').toBe(true);
        expect(String(err)).toMatch(/gone after version 1/);
        const cas = await store.compareAndSet(0, sampleState(1)).catch((e: unknown) => e);
        expect(isQuiesceError(cas) && cas.code === 'STORE_UNAVAILABLE').toBe(true);
        const rows = await admin((c) => c.query(`SELECT 1 FROM "${schema}".state WHERE key = 'gone'`));
        expect(rows.rowCount).toBe(0);
      } finally {
        await store.close();
      }
    });

    it('an unreachable server is STORE_UNAVAILABLE, not a crash', async () => {
      const store = createPostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', schema });
      const err = await store.read().catch((e: unknown) => e);
      expect(isQuiesceError(err) && err.code === 'STORE_UNAVAILABLE').toBe(true);
      await store.close();
    });

    it('bad options and bad input name the field', async () => {
      expect(() =>
        createPostgresStore({ connectionString: POSTGRES_URL, schema: 'no spaces; drop' }),
      ).toThrow(/schema/);
      expect(() => createPostgresStore({} as never)).toThrow(/connectionString/);
      const store = createPostgresStore({ connectionString: POSTGRES_URL, schema, key: 'input' });
      try {
        const err = await store
          .compareAndSet(0, { mode: 'read-only', version: -1 } as never)
          .catch((e: unknown) => e);
        expect(isQuiesceError(err) && err.code === 'INVALID_INPUT').toBe(true);
        expect(String(err)).toMatch(/state payload/);
        expect((await store.read()).version).toBe(0);
        const reg = await store.registry.upsert({ id: '' } as never).catch((e: unknown) => e);
        expect(isQuiesceError(reg) && reg.field === 'id').toBe(true);
      } finally {
        await store.close();
      }
    });
  });
});
