import { randomUUID } from 'node:crypto';
import { createQuiesce, type MaintenanceWindow, type QuiesceEngine, silentLogger } from '@quiesce/core';
import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildWriteAuditReport,
  createPostgresStore,
  createWriteAudit,
  type MarkPhase,
  type WriteAudit,
  type WriteAuditMark,
  type WriteAuditReport,
} from '../src/index.js';

const ok = await serviceAvailable('postgres', '@quiesce/postgres write audit');
/** Random schedules per property run; CI runs 200 (`QUIESCE_AUDIT_RUNS=200`). */
const RUNS = Number(process.env.QUIESCE_AUDIT_RUNS ?? 25);

type Counts = { inserted: number; updated: number; deleted: number; truncated: number };

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

// A database of its own: the audit looks at every table of its database.
// Edges are driven by signals (marks, phases): under load they take longer, never fail for it.
describe.skipIf(!ok)('write audit (triggers, transaction visibility)', { timeout: 60_000 }, () => {
  const database = uniqueName('quiesce_audit');
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${database}`;
  const dbUrl = url.toString();
  const STATE = 'qstate';
  const AUDIT = 'qaudit';
  let audit: WriteAudit;
  const marks = new Map<string, ReturnType<typeof deferred<WriteAuditMark>>>();
  const markOf = (windowId: string, phase: MarkPhase) => {
    const key = `${windowId}:${phase}`;
    if (!marks.has(key)) marks.set(key, deferred<WriteAuditMark>());
    return marks.get(key)!;
  };
  const open = new Set<pg.Client>();
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${database}"`);
    await admin.end();
    await sql(`
      CREATE SCHEMA app;
      CREATE TABLE app.orders (id serial PRIMARY KEY, note text);
      CREATE TABLE app.items (id serial PRIMARY KEY, n int);
      CREATE TABLE app.parts (id int NOT NULL, v text) PARTITION BY RANGE (id);
      CREATE TABLE app.parts_low PARTITION OF app.parts FOR VALUES FROM (0) TO (1000);
      CREATE SCHEMA pgboss; CREATE TABLE pgboss.job (id serial PRIMARY KEY, name text);
      -- Ground truth: a row-level trigger per row written, with the writing transaction's id.
      CREATE SCHEMA gt;
      CREATE TABLE gt.log (xid xid8 NOT NULL DEFAULT pg_current_xact_id(), tbl text NOT NULL, op text NOT NULL);
      CREATE FUNCTION gt.rec() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO gt.log (tbl, op) VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP); RETURN NULL; END $$;
      CREATE TRIGGER gt AFTER INSERT OR UPDATE OR DELETE ON app.orders FOR EACH ROW EXECUTE FUNCTION gt.rec();
      CREATE TRIGGER gt AFTER INSERT OR UPDATE OR DELETE ON app.items FOR EACH ROW EXECUTE FUNCTION gt.rec();
      CREATE TRIGGER gt_t AFTER TRUNCATE ON app.items FOR EACH STATEMENT EXECUTE FUNCTION gt.rec();
      CREATE TRIGGER gt AFTER INSERT OR UPDATE OR DELETE ON app.parts FOR EACH ROW EXECUTE FUNCTION gt.rec();
      CREATE TRIGGER gt AFTER INSERT OR UPDATE OR DELETE ON pgboss.job FOR EACH ROW EXECUTE FUNCTION gt.rec();
      INSERT INTO app.orders (note) SELECT 'seed ' || g FROM generate_series(1, 20) g;
      INSERT INTO app.items (n) SELECT g FROM generate_series(1, 20) g;`);
    audit = createWriteAudit({
      connectionString: dbUrl,
      schema: AUDIT,
      excludeSchemas: ['pgboss', STATE, 'gt'],
      onMark: (windowId, phase, mark) => markOf(windowId, phase).resolve(mark),
      onError: (err) => {
        throw err;
      },
    });
    const installed = await audit.install();
    expect(installed.installed).toEqual(['app.items', 'app.orders', 'app.parts', 'app.parts_low']);
    // Idempotent: nothing to do the second time (and the triggers keep their identity).
    expect(await audit.install()).toEqual({ installed: [], covered: 4 });
  });

  afterEach(async () => {
    for (const c of open) await c.end().catch(() => {});
    open.clear();
    for (const f of cleanups.splice(0).reverse()) await f();
  });

  afterAll(async () => {
    await audit?.close();
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.end();
  });

  async function sql(text: string) {
    const c = new pg.Client({ connectionString: dbUrl });
    await c.connect();
    try {
      return await c.query(text);
    } finally {
      await c.end();
    }
  }

  /** A transaction on a connection quiesce knows nothing about, left open until `commit()`. */
  async function begin(text: string) {
    const c = new pg.Client({ connectionString: dbUrl });
    open.add(c);
    await c.connect();
    await c.query('BEGIN');
    const run = c.query(text).then(() => c.query('SELECT pg_current_xact_id()::text AS x'));
    return {
      client: c,
      /** The statement ran (it may wait for a lock first). */
      written: run.then((r) => r.rows[0].x as string),
      async commit() {
        const xid = await run.then((r) => r.rows[0].x as string);
        await c.query('COMMIT');
        await c.end();
        open.delete(c);
        return xid;
      },
      async rollback() {
        await run.catch(() => {});
        await c.query('ROLLBACK');
        await c.end();
        open.delete(c);
      },
    };
  }

  /** Write and commit; the transaction id. */
  const write = async (text: string) => (await begin(text)).commit();

  /** What the ground-truth row triggers saw for these transactions. */
  async function truth(xids: string[]): Promise<Record<string, Counts>> {
    const r = await sql(`SELECT tbl, op, count(*)::int AS n FROM gt.log
      WHERE xid = ANY('{${xids.join(',')}}'::xid8[]) GROUP BY 1, 2`);
    const out: Record<string, Counts> = {};
    for (const row of r.rows) {
      if (row.tbl.startsWith('pgboss.')) continue; // excluded by name from the audit
      row.tbl = fold(row.tbl);
      out[row.tbl] ??= { inserted: 0, updated: 0, deleted: 0, truncated: 0 };
      const k = (
        { INSERT: 'inserted', UPDATE: 'updated', DELETE: 'deleted', TRUNCATE: 'truncated' } as const
      )[row.op as 'INSERT'];
      out[row.tbl]![k] += row.n;
    }
    return out;
  }

  /**
   * A row trigger names the partition a row lands in; the audit counts a statement on the table it
   * names (the partitioned table, or a partition addressed directly). Compared together.
   */
  const fold = (name: string) => (name === 'app.parts_low' ? 'app.parts' : name);

  function counted(report: WriteAuditReport): Record<string, Counts> {
    const out: Record<string, Counts> = {};
    for (const t of report.tables) {
      if (t.inserted || t.updated || t.deleted || t.truncated) {
        const name = fold(`${t.schema}.${t.table}`);
        out[name] ??= { inserted: 0, updated: 0, deleted: 0, truncated: 0 };
        const c = out[name];
        c.inserted += t.inserted;
        c.updated += t.updated;
        c.deleted += t.deleted;
        c.truncated += t.truncated;
      }
    }
    return out;
  }

  function wellFormed(report: WriteAuditReport) {
    expect(report.mechanism).toBe('triggers');
    expect(report.database).toBe(database);
    expect(report.from).not.toBeNull();
    expect(Date.parse(report.from!)).toBeLessThanOrEqual(Date.parse(report.to!));
    expect(report.unknown).toEqual([]);
    expect(report.tables.map((t) => `${t.schema}.${t.table}`)).toEqual([
      'app.items',
      'app.orders',
      'app.parts',
      'app.parts_low',
    ]);
    expect(report.tablesAudited).toBe(4);
    for (const t of report.tables) {
      const any = t.inserted + t.updated + t.deleted + t.truncated > 0;
      expect(t.verdict).toBe(any ? 'writes' : 'clean');
    }
  }

  async function expectTruth(report: WriteAuditReport, xids: string[]) {
    const expected = await truth(xids);
    expect(counted(report)).toEqual(expected);
    expect(report.verdict).toBe(Object.keys(expected).length > 0 ? 'writes' : 'clean');
    expect(report.clean).toBe(report.verdict === 'clean');
    wellFormed(report);
  }

  async function engineWith(o: { soakMs?: number } = {}) {
    const store = createPostgresStore({ connectionString: dbUrl, schema: STATE });
    const engine = createQuiesce({
      store,
      heartbeatMs: 50,
      soakMs: o.soakMs ?? 20,
      logger: silentLogger,
    });
    // Holds the end, before the audit's thaw mark, until the test says so (hooks run in order).
    let gate: ReturnType<typeof deferred<void>> | null = null;
    engine.beforeThaw(() => gate?.promise);
    const detach = audit.attach(engine);
    await engine.start();
    cleanups.push(async () => {
      gate?.resolve();
      // A test that failed midway leaves no open window to the next.
      await engine.end({ reason: 'test cleanup' }).catch(() => {});
      detach();
      await engine.close();
      await store.close();
    });
    return {
      engine,
      holdEnd() {
        gate = deferred();
        return gate.resolve;
      },
    };
  }

  const recorded = (engine: QuiesceEngine, windowId: string) =>
    expect
      .poll(() => (engine.window?.id === windowId ? engine.window.report.writeAudit : undefined), {
        timeout: 10_000,
      })
      .toBeDefined()
      .then(() => engine.window!.report.writeAudit as WriteAuditReport);

  it('counts exactly the writes committed between the freeze and the thaw, whoever holds them', async () => {
    const { engine } = await engineWith();
    const before = await write(`INSERT INTO app.orders (note) VALUES ('before')`);
    // Held behind a table lock across the freeze: it lands (commits) inside the window.
    const lock = await begin('LOCK TABLE app.items IN ACCESS EXCLUSIVE MODE');
    await lock.written;
    const blocked = await begin('INSERT INTO app.items (n) VALUES (101), (102), (103)');
    await expect
      .poll(
        async () =>
          (
            await sql(`SELECT count(*)::int AS n FROM pg_locks
              WHERE NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
          ).rows[0].n,
      )
      .toBeGreaterThan(0);
    // Written before the window, committed inside it.
    const straddling = await begin(`UPDATE app.orders SET note = 'straddles' WHERE id <= 2`);
    await straddling.written;
    const edgeBefore = await write(`DELETE FROM app.orders WHERE id = 20`);

    const window = await engine.begin({ reason: 'migration', message: 'Back soon' });
    await markOf(window.id, 'frozen').promise;
    const edgeAfter = await write(`INSERT INTO app.orders (note) VALUES ('right after the freeze')`);
    await lock.commit();
    const held = await blocked.commit();
    const straddled = await straddling.commit();
    const during = await write(`UPDATE app.items SET n = n + 1 WHERE n <= 5;
      DELETE FROM app.orders WHERE id IN (18, 19); INSERT INTO app.parts VALUES (1, 'via parent');
      INSERT INTO app.parts_low VALUES (2, 'direct')`);
    const queue = await write(`INSERT INTO pgboss.job (name) VALUES ('excluded by name')`);
    const rolledBack = await begin(`INSERT INTO app.orders (note) VALUES ('never committed')`);
    await rolledBack.rollback();
    // Open at the thaw: commits after writes are back on.
    const acrossThaw = await begin(`UPDATE app.items SET n = 0 WHERE n = 20`);
    await acrossThaw.written;

    await engine.end({ actor: 'ops', reason: 'done' });
    const after = await write(`INSERT INTO app.orders (note) VALUES ('after')`);
    const late = await acrossThaw.commit();

    const report = await recorded(engine, window.id);
    await expectTruth(report, [edgeAfter, held, straddled, during]);
    expect(report.written.map((t) => t.table)).toEqual(['items', 'orders', 'parts', 'parts_low']);
    expect(report.tables.find((t) => t.table === 'items')).toMatchObject({ inserted: 3, updated: 5 });
    expect(report.thawMarkedBeforeEnd).toBe(true);
    expect(report.excludedSchemas).toEqual([AUDIT, 'pgboss', STATE, 'gt']);
    // The ground truth outside the window is not in the report.
    expect(Object.keys(await truth([before, edgeBefore, after, late, queue])).length).toBeGreaterThan(0);
    // Stored once, the same whoever asks.
    await expect.poll(async () => (await audit.report(window.id)).verdict).toBe('writes');
    expect(counted(await audit.report(window.id))).toEqual(counted(report));
  });

  it('a clean window is clean table by table; the queue and quiesce’s own writes are excluded', async () => {
    const { engine } = await engineWith();
    const window = await engine.begin({ reason: 'reindex', message: 'Back soon' });
    await markOf(window.id, 'frozen').promise;
    await write(
      `INSERT INTO pgboss.job (name) VALUES ('queue keeps working'); SELECT count(*) FROM app.orders`,
    );
    await engine.end();
    await write(`INSERT INTO app.orders (note) VALUES ('after the window')`);
    const report = await recorded(engine, window.id);
    await expectTruth(report, []);
    expect(report).toMatchObject({ verdict: 'clean', clean: true, reasons: [], written: [] });
  });

  it('ended by an instance without the audit: another marks the thaw and reports, saying so', async () => {
    const { engine } = await engineWith();
    const store = createPostgresStore({ connectionString: dbUrl, schema: STATE });
    const bare = createQuiesce({ store, heartbeatMs: 50, logger: silentLogger });
    cleanups.push(async () => {
      await bare.close();
      await store.close();
    });
    await bare.start();
    const window = await bare.begin({ reason: 'from a process without the audit', message: 'm' });
    await markOf(window.id, 'frozen').promise;
    const during = await write(`UPDATE app.orders SET note = 'no audit on the ender' WHERE id = 5`);
    await bare.end();
    const report = await recorded(engine, window.id);
    expect(report.thawMarkedBeforeEnd).toBe(false);
    // Nothing was written after the end here, so the counts are exact; the reason is given anyway.
    await expectTruth(report, [during]);
    expect(report.reasons).toEqual([
      'the thaw mark was taken after writes came back on: writes just after the end are counted too',
    ]);
  });

  it('a 1 s window gets a well-formed report', async () => {
    const { engine, holdEnd } = await engineWith();
    const release = holdEnd();
    const window = await engine.begin({
      reason: 'short',
      message: 'One second',
      endsAt: new Date(Date.now() + 1000).toISOString(),
      autoEnd: true,
    });
    await markOf(window.id, 'frozen').promise;
    const during = await write(`INSERT INTO app.orders (note) VALUES ('in a short window')`);
    release();
    await markOf(window.id, 'thaw').promise;
    const after = await write(`INSERT INTO app.orders (note) VALUES ('after a short window')`);
    const report = await recorded(engine, window.id);
    await expectTruth(report, [during]);
    expect(Object.keys(await truth([after]))).toEqual(['app.orders']);
  });

  it('two windows 2 s apart: each gets its own audit, the gap between them in neither', async () => {
    const { engine, holdEnd } = await engineWith({ soakMs: 60_000 });
    let release = holdEnd();
    const t0 = Date.now();
    const first = await engine.begin({
      reason: 'first',
      message: 'm',
      endsAt: new Date(t0 + 1000).toISOString(),
      autoEnd: true,
    });
    const records = new Map<string, MaintenanceWindow>();
    const off = engine.on('state', (s) => {
      if (s.window) records.set(s.window.id, s.window);
    });
    await markOf(first.id, 'frozen').promise;
    const inFirst = await write(`UPDATE app.orders SET note = 'first' WHERE id = 3`);
    release();
    await markOf(first.id, 'thaw').promise;
    const between = await write(`UPDATE app.orders SET note = 'between' WHERE id = 4`);
    // The first window is still thawing (soak): the second replaces it as soon as it begins.
    release = holdEnd();
    await expect.poll(() => engine.window?.phase).toBe('thawing');
    const startsAt = Math.max(Date.now() + 50, t0 + 2000);
    const second = await engine.schedule({
      reason: 'second',
      message: 'm',
      startsAt: new Date(startsAt).toISOString(),
      endsAt: new Date(startsAt + 1000).toISOString(),
      autoEnd: true,
    });
    await markOf(second.id, 'frozen').promise;
    const inSecond = await write(`DELETE FROM app.items WHERE n = 7`);
    release();
    await markOf(second.id, 'thaw').promise;
    const secondReport = await recorded(engine, second.id);
    off();
    await expectTruth(secondReport, [inSecond]);
    // The first window's record had its audit before the second replaced it.
    const firstReport = records.get(first.id)?.report.writeAudit as WriteAuditReport;
    expect(firstReport).toBeDefined();
    await expectTruth(firstReport, [inFirst]);
    expect(counted(await audit.report(first.id))).toEqual(counted(firstReport));
    expect(Object.keys(await truth([between]))).toEqual(['app.orders']);
  });

  it('backfills before and after a window are not the window’s writes', async () => {
    const { engine } = await engineWith();
    const pool = new pg.Pool({ connectionString: dbUrl, max: 2 });
    cleanups.push(() => pool.end());
    const replayed: string[] = [];
    engine.handle('note', async (payload) => {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        await c.query('INSERT INTO app.orders (note) VALUES ($1)', [(payload as { text: string }).text]);
        replayed.push((await c.query('SELECT pg_current_xact_id()::text AS x')).rows[0].x);
        await c.query('COMMIT');
      } finally {
        c.release();
      }
      return { ok: true };
    });
    const queued = (w: string) =>
      engine.enqueue({ surface: 'custom', name: 'note', idempotencyKey: randomUUID() }, { text: w });

    const first = await engine.begin({ reason: 'first', message: 'm' });
    await markOf(first.id, 'frozen').promise;
    await queued('queued in the first window');
    await engine.end();
    await engine.waitForPhase('closed', { timeoutMs: 10_000 });
    expect(replayed).toHaveLength(1); // the first backfill: before the second window

    const second = await engine.begin({ reason: 'second', message: 'm' });
    await markOf(second.id, 'frozen').promise;
    await queued('queued in the second window');
    const rogue = await write(`INSERT INTO app.items (n) VALUES (500)`);
    await engine.end();
    const report = await recorded(engine, second.id);
    await engine.waitForPhase('closed', { timeoutMs: 10_000 });
    expect(replayed).toHaveLength(2); // the second backfill: after its window
    await expectTruth(report, [rogue]);
    await expectTruth(await audit.report(first.id), []);
  });

  it('cannot vouch for what it does not cover: new tables, altered triggers, DDL', async () => {
    const windowId = randomUUID();
    await audit.mark(windowId, 'frozen');
    await sql(`CREATE TABLE app.fresh (id int); INSERT INTO app.fresh VALUES (1);
      ALTER TABLE app.items DISABLE TRIGGER quiesce_audit_u; ALTER TABLE app.items ENABLE ALWAYS TRIGGER quiesce_audit_u;
      ALTER TABLE app.parts ADD COLUMN extra int`);
    // session_replication_role = replica silences ordinary triggers, not these.
    const replica = await write(
      `SET LOCAL session_replication_role = replica; INSERT INTO app.orders (note) VALUES ('replica')`,
    );
    await audit.mark(windowId, 'thaw', { beforeEnd: true });
    const report = await audit.report(windowId);
    expect(report.verdict).toBe('writes');
    expect(report.unknown.map((t) => [t.table, t.reason])).toEqual([
      ['fresh', 'created during the window'],
      ['items', 'audit triggers were altered during the window'],
      ['parts', 'definition changed during the window (DDL): rows rewritten by DDL are not counted'],
      ['parts_low', 'definition changed during the window (DDL): rows rewritten by DDL are not counted'],
    ]);
    // The ordinary ground-truth trigger was silenced by the replica role; the audit's was not.
    expect(await truth([replica])).toEqual({});
    expect(counted(report)).toEqual({ 'app.orders': { inserted: 1, updated: 0, deleted: 0, truncated: 0 } });
    expect(report.tablesAudited).toBe(1);
    await sql(`DROP TABLE app.fresh; ALTER TABLE app.parts DROP COLUMN extra`);

    // Without writes, an uncovered table makes the window unknown, never clean.
    const next = randomUUID();
    await audit.mark(next, 'frozen');
    await sql(`CREATE TABLE app.uncovered (id int)`);
    await audit.mark(next, 'thaw', { beforeEnd: true });
    const r2 = await audit.report(next);
    expect(r2).toMatchObject({ verdict: 'unknown', clean: false, written: [] });
    expect(r2.reasons).toEqual(['1 table(s) could not be vouched for']);
    await sql(`DROP TABLE app.uncovered`);
  });

  it('TRUNCATE is counted as a statement', async () => {
    await sql(`CREATE TABLE app.scratch (id int); INSERT INTO app.scratch VALUES (1), (2)`);
    await audit.install({ schemas: ['app'] });
    const windowId = randomUUID();
    await audit.mark(windowId, 'frozen');
    await write(`TRUNCATE app.scratch`);
    await audit.mark(windowId, 'thaw', { beforeEnd: true });
    const report = await audit.report(windowId);
    expect(report.written).toEqual([
      expect.objectContaining({ table: 'scratch', truncated: 1, inserted: 0, verdict: 'writes' }),
    ]);
    await sql(`DROP TABLE app.scratch`);
  });

  it('the earliest frozen mark is kept: a slower instance does not narrow the window', async () => {
    const windowId = randomUUID();
    const first = await audit.mark(windowId, 'frozen');
    expect(first.kept).toBe(true);
    const during = await write(`INSERT INTO app.orders (note) VALUES ('between the two instances')`);
    expect((await audit.mark(windowId, 'frozen')).kept).toBe(false);
    await audit.mark(windowId, 'thaw', { beforeEnd: true });
    await expectTruth(await audit.report(windowId), [during]);
  });

  it('a window that never reached frozen is unknown, not clean', async () => {
    const windowId = randomUUID();
    await audit.mark(windowId, 'freezing');
    await audit.mark(windowId, 'thaw', { beforeEnd: true });
    // A frozen mark after the thaw is refused.
    expect((await audit.mark(windowId, 'frozen')).kept).toBe(false);
    const report = await audit.report(windowId);
    expect(report).toMatchObject({ verdict: 'unknown', clean: false, from: null });
    expect(report.reasons[0]).toMatch(/never reached frozen/);
  });

  it('property: random schedules of writes against random window edges', async () => {
    const tables = ['app.orders', 'app.items'] as const;
    const writeOp = fc.record({
      table: fc.constantFrom(...tables),
      kind: fc.constantFrom('insert', 'update', 'delete'),
      rows: fc.integer({ min: 1, max: 3 }),
      // Left open for this many steps before it commits (0: at once) or rolls back.
      holdFor: fc.integer({ min: 0, max: 4 }),
      rollback: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(writeOp, { minLength: 1, maxLength: 12 }),
        fc.nat(),
        fc.nat(),
        async (ops, a, b) => {
          const steps = ops.length + 1;
          const frozenAt = a % steps;
          const thawAt = frozenAt + (b % (steps - frozenAt + 1));
          const windowId = randomUUID();
          const inWindow: string[] = [];
          const pending: Array<{ due: number; t: Awaited<ReturnType<typeof begin>>; rollback: boolean }> = [];
          let phase: 'before' | 'during' | 'after' = 'before';
          const settle = async (step: number, all = false) => {
            for (const p of [...pending]) {
              if (!all && p.due > step) continue;
              pending.splice(pending.indexOf(p), 1);
              if (p.rollback) await p.t.rollback();
              else {
                const xid = await p.t.commit();
                if (phase === 'during') inWindow.push(xid);
              }
            }
          };
          for (let step = 0; step <= steps; step++) {
            if (step === frozenAt) {
              await audit.mark(windowId, 'frozen');
              phase = 'during';
            }
            if (step === thawAt) {
              await audit.mark(windowId, 'thaw', { beforeEnd: true });
              phase = 'after';
            }
            await settle(step);
            const op = ops[step];
            if (!op) continue;
            const n = op.rows;
            const text =
              op.kind === 'insert'
                ? op.table === 'app.orders'
                  ? `INSERT INTO app.orders (note) SELECT 'p' FROM generate_series(1, ${n})`
                  : `INSERT INTO app.items (n) SELECT g FROM generate_series(1, ${n}) g`
                : op.kind === 'update'
                  ? `UPDATE ${op.table} SET id = id WHERE id IN (SELECT id FROM ${op.table} ORDER BY random() LIMIT ${n} FOR UPDATE SKIP LOCKED)`
                  : `DELETE FROM ${op.table} WHERE id IN (SELECT id FROM ${op.table} ORDER BY id DESC LIMIT ${n} FOR UPDATE SKIP LOCKED)`;
            const t = await begin(text);
            await t.written;
            pending.push({ due: step + op.holdFor, t, rollback: op.rollback });
          }
          if (thawAt > steps) await audit.mark(windowId, 'thaw', { beforeEnd: true });
          phase = 'after';
          await settle(Number.POSITIVE_INFINITY, true);
          const report = await audit.report(windowId);
          await expectTruth(report, inWindow);
        },
      ),
      { numRuns: RUNS },
    );
  }, 600_000);

  it('prunes log rows no window can need', async () => {
    await write(`INSERT INTO app.orders (note) VALUES ('old')`);
    await audit.prune();
    const left = await sql(`SELECT count(*)::int AS n FROM ${AUDIT}.write_audit_log`);
    expect(left.rows[0].n).toBe(0);
    // An open window keeps what it may count.
    const windowId = randomUUID();
    await audit.mark(windowId, 'frozen');
    const during = await write(`INSERT INTO app.orders (note) VALUES ('kept')`);
    await audit.prune();
    await audit.mark(windowId, 'thaw', { beforeEnd: true });
    await expectTruth(await audit.report(windowId), [during]);
  });

  it('pure report: no frozen mark, or marks out of order, is unknown', () => {
    const mark = (takenAt: string): WriteAuditMark => ({
      takenAt,
      snapshot: '1:1:',
      database: 'd',
      beforeEnd: true,
      tables: [{ oid: '1', schema: 's', table: 't', covered: true, triggers: 'a', definition: 'x' }],
    });
    const r = buildWriteAuditReport({
      windowId: 'w',
      frozen: mark('2026-01-01T00:00:02Z'),
      thaw: mark('2026-01-01T00:00:01Z'),
      counts: [],
    });
    expect(r).toMatchObject({ verdict: 'unknown', tables: [] });
    expect(r.reasons[0]).toMatch(/after the thaw/);
  });

  it('bad options name the field', async () => {
    expect(() => createWriteAudit({ connectionString: dbUrl, excludeSchemas: ['ok', 'no;pe'] })).toThrow(
      /excludeSchemas\.1/,
    );
    await expect(audit.install({ schemas: ['x y'] })).rejects.toThrow(/schemas\.0/);
    await expect(audit.mark('', 'frozen')).rejects.toThrow(/windowId/);
    await expect(audit.mark('w', 'later' as MarkPhase)).rejects.toThrow(/phase/);
  });
});
