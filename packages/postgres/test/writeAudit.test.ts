import { createQuiesce, type QuiesceEngine, silentLogger } from '@quiesce/core';
import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildWriteAuditReport,
  createPostgresStore,
  createWriteAudit,
  type WriteAuditReport,
} from '../src/index.js';

const ok = await serviceAvailable('postgres', '@quiesce/postgres write audit');
const SETTLE_MS = 400;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, get: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// pg_stat_user_tables is per database and the shared `test` database is busy with other suites:
// the audit gets a database of its own.
describe.skipIf(!ok)('write audit', () => {
  const database = uniqueName('quiesce_audit');
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${database}`;
  const dbUrl = url.toString();
  const storeSchema = 'quiesce_state';
  let engine: QuiesceEngine;
  let store: ReturnType<typeof createPostgresStore>;
  let audit: ReturnType<typeof createWriteAudit>;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${database}"`);
    await admin.end();
    const setup = new pg.Client({ connectionString: dbUrl });
    await setup.connect();
    await setup.query(`
      CREATE SCHEMA app; CREATE TABLE app.orders (id serial PRIMARY KEY, note text);
      CREATE TABLE app.early (id serial PRIMARY KEY); CREATE TABLE app.untouched (id int);
      CREATE SCHEMA pgboss; CREATE TABLE pgboss.job (id serial PRIMARY KEY, name text);
      INSERT INTO app.orders (note) VALUES ('before any window');`);
    await setup.end();
    store = createPostgresStore({ connectionString: dbUrl, schema: storeSchema });
    engine = createQuiesce({
      store,
      instanceId: 'audited',
      heartbeatMs: 100,
      soakMs: 50,
      logger: silentLogger,
    });
    audit = createWriteAudit({
      connectionString: dbUrl,
      schema: storeSchema,
      excludeSchemas: ['pgboss'],
      settleMs: SETTLE_MS,
    });
    audit.attach(engine);
    await engine.start();
  });

  afterAll(async () => {
    await engine?.close();
    await store?.close();
    await audit?.close();
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.end();
  });

  /** A connection quiesce knows nothing about (a cron on another host, a person with psql). */
  async function rogue(sql: string) {
    const c = new pg.Client({ connectionString: dbUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  }
  const reportOf = (windowId: string) =>
    waitFor('the write audit in the closing record', () =>
      engine.window?.id === windowId
        ? (engine.window.report.writeAudit as WriteAuditReport | undefined)
        : undefined,
    );

  it('names every table written through an unguarded connection during the window', async () => {
    const window = await engine.begin({ reason: 'migration', message: 'Back soon' });
    await engine.waitForPhase('frozen', { timeoutMs: 5000 });
    // Within settleMs of the freeze: listed apart, never hidden.
    await rogue(`INSERT INTO app.early DEFAULT VALUES`);
    await sleep(SETTLE_MS + 300);
    await rogue(`INSERT INTO app.orders (note) VALUES ('slipped 1'), ('slipped 2');
                 UPDATE app.orders SET note = 'changed' WHERE note = 'before any window';
                 INSERT INTO pgboss.job (name) VALUES ('queued during the window')`);
    await engine.end({ actor: 'ops' });
    const report = await reportOf(window.id);
    expect(report.clean).toBe(false);
    expect(report.written).toEqual([{ schema: 'app', table: 'orders', inserted: 2, updated: 1, deleted: 0 }]);
    expect(report.aroundFreeze).toEqual([
      { schema: 'app', table: 'early', inserted: 1, updated: 0, deleted: 0 },
    ]);
    expect(report.aroundThaw).toEqual([]);
    expect(report.excludedSchemas).toEqual([storeSchema, 'pgboss']);
    expect(report.database).toBe(database);
    expect(report.tablesAudited).toBe(3);
    // Taken by beforeThaw on this instance, before writes came back on.
    expect(report.gapMs).toBe(0);
    await engine.waitForPhase('closed', { timeoutMs: 5000 });
    expect(engine.window?.report.writeAudit).toEqual(report);
    expect(await audit.report(window.id)).toEqual({ ...report, gapMs: undefined });
  });

  it('reports none when nothing was written (the queue’s and quiesce’s own writes excluded)', async () => {
    const window = await engine.begin({ reason: 'reindex', message: 'Back soon' });
    await engine.waitForPhase('frozen', { timeoutMs: 5000 });
    await sleep(SETTLE_MS + 300);
    await rogue(
      `INSERT INTO pgboss.job (name) VALUES ('queue keeps working'); SELECT count(*) FROM app.orders`,
    );
    await engine.end();
    // Writes back on: a write right after the thaw is not the window's.
    await rogue(`INSERT INTO app.orders (note) VALUES ('after the window')`);
    const report = await reportOf(window.id);
    expect(report).toMatchObject({ clean: true, written: [], aroundFreeze: [], reset: [] });
    expect(report.aroundThaw).toEqual([
      { schema: 'app', table: 'orders', inserted: 1, updated: 0, deleted: 0 },
    ]);
  });

  it('a statistics reset is reported as such, not as a clean window', () => {
    const snap = (takenAt: string, inserted: number) => ({
      takenAt,
      database: 'd',
      flush: 'forced' as const,
      tables: [{ schema: 's', table: 't', inserted, updated: 0, deleted: 0 }],
    });
    const report = buildWriteAuditReport({ frozen: snap('a', 5), thawing: snap('b', 1) });
    expect(report).toMatchObject({ clean: false, written: [], reset: ['s.t'] });
  });

  it('bad options name the field', () => {
    expect(() => createWriteAudit({ connectionString: dbUrl, excludeSchemas: ['ok', 'no;pe'] })).toThrow(
      /excludeSchemas\.1/,
    );
    expect(() => createWriteAudit({ connectionString: dbUrl, settleMs: -1 })).toThrow(/settleMs/);
  });
});
