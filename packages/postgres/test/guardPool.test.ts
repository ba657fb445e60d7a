import {
  createMemoryStore,
  createQuiesce,
  isQuiesceError,
  type QuiesceEngine,
  silentLogger,
  statusForCode,
} from '@quiesce/core';
import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  guardPool,
  isGuardedPool,
  isReadOnlyViolation,
  readOnlyRefusal,
  withWritesAllowed,
} from '../src/index.js';

const ok = await serviceAvailable('postgres', '@quiesce/postgres guarded pool');

describe.skipIf(!ok)('guarded pool: database-level enforcement', () => {
  const schema = uniqueName('qpg_guard');
  const t = `"${schema}".orders`;
  let pool: pg.Pool;
  let guarded: pg.Pool;
  let engine: QuiesceEngine;

  beforeAll(async () => {
    // Two connections, so the guarded and the raw view share (and reuse) the same clients.
    pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
    await pool.query(`CREATE SCHEMA "${schema}"; CREATE TABLE ${t} (id serial PRIMARY KEY, note text)`);
    engine = createQuiesce({
      store: createMemoryStore(),
      instanceId: 'guard',
      logger: silentLogger,
      soakMs: 0,
    });
    guarded = guardPool(pool, { engine });
  });

  afterAll(async () => {
    await engine?.close();
    await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool?.end();
  });

  const insert = (p: pg.Pool | pg.PoolClient, note: string) =>
    p.query(`INSERT INTO ${t} (note) VALUES ($1)`, [note]);

  it('a write slipped past classification fails with 25006 during a window and becomes the refusal', async () => {
    expect(isGuardedPool(guarded)).toBe(true);
    expect(isGuardedPool(pool)).toBe(false);
    await insert(guarded, 'before the window');
    // Checked out before the window: an in-flight write, which the drain waits for.
    const early = await guarded.connect();

    const window = await engine.begin({ reason: 'migration', message: 'Orders are paused until 10:00 UTC' });
    const err = await insert(guarded, 'slipped').catch((e: unknown) => e);
    expect(isReadOnlyViolation(err)).toBe(true);
    expect((err as { code: string }).code).toBe('25006');
    const refusal = readOnlyRefusal(err, engine);
    expect(isQuiesceError(refusal)).toBe(true);
    if (!isQuiesceError(refusal)) throw refusal;
    expect(refusal.code).toBe('READ_ONLY_MODE');
    expect(refusal.status).toBe(statusForCode('READ_ONLY_MODE'));
    expect(refusal.message).toBe('Orders are paused until 10:00 UTC');
    expect(refusal.details).toEqual({ windowId: window.id, endsAt: null });
    expect(refusal.cause).toBe(err);

    // Reads stay online; an explicit transaction on a checked-out client is refused too.
    expect((await guarded.query(`SELECT count(*)::int AS n FROM ${t}`)).rows[0].n).toBe(1);
    const c = await guarded.connect();
    await c.query('BEGIN');
    const inTx = await c.query(`UPDATE ${t} SET note = 'x'`).catch((e: unknown) => e);
    expect(isReadOnlyViolation(inTx)).toBe(true);
    await c.query('ROLLBACK');
    c.release();

    await insert(early, 'in flight since before the window');
    early.release();
    // `allow` operations (sign-in, health) run with writes on.
    await withWritesAllowed(() => insert(guarded, 'allowed'));

    // The raw pool (the queue's connection) shares these clients: they went back read-write.
    for (let i = 0; i < 4; i++) {
      const r = await pool.query('SHOW default_transaction_read_only');
      expect(r.rows[0].default_transaction_read_only).toBe('off');
      await insert(pool, `queue write ${i}`);
    }

    await engine.end();
    await insert(guarded, 'after the window');
    const notes = (await pool.query(`SELECT note FROM ${t} ORDER BY id`)).rows.map((r) => r.note);
    expect(notes).not.toContain('slipped');
    expect(notes).toContain('after the window');
  });

  it('callback-style connect is guarded too', async () => {
    await engine.begin({ reason: 'callback', message: 'Back soon' });
    const err = await new Promise((resolve) => {
      guarded.connect((e, client, done) => {
        if (e || !client) return resolve(e);
        client.query(`INSERT INTO ${t} (note) VALUES ('cb')`, (qe) => {
          done?.();
          resolve(qe);
        });
      });
    });
    expect(isReadOnlyViolation(err)).toBe(true);
    await engine.end();
  });

  it('other errors pass through; bad options name the field', () => {
    const other = Object.assign(new Error('duplicate key'), { code: '23505' });
    expect(readOnlyRefusal(other)).toBe(other);
    expect(isReadOnlyViolation(new Error('wrapped', { cause: { code: '25006' } }))).toBe(true);
    expect(() => guardPool(pool, {} as never)).toThrow(/engine/);
    expect(() => guardPool({} as never, { engine })).toThrow(/pool/);
  });
});
