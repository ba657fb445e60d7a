import type { MaintenanceWindow, QuiesceEngine } from '@quiesce/core';
import { QuiesceError } from '@quiesce/core';
import { type PostgresConnectionOptions, resolveConnection, storeError } from './connection.js';
import { checkSchemaName, DEFAULT_SCHEMA, ensureSchema, quoteIdent } from './schema.js';

export type WriteAuditOptions = PostgresConnectionOptions & {
  /** quiesce's schema: excluded from the audit, and where snapshots are kept. @default 'quiesce' */
  schema?: string;
  /**
   * More schemas whose writes are expected during a window and are not reported: the intent
   * queue's (pg-boss uses `pgboss`), a job scheduler's. @default ['pgboss']
   */
  excludeSchemas?: string[];
  /**
   * How late another session's statistics may arrive. A session publishes its counters when it goes
   * idle, at most once a second; one that commits in quick succession holds them for up to 10 s
   * (PostgreSQL 15+, `PGSTAT_IDLE_INTERVAL`; about 0.5 s through the stats collector before 15).
   * Each edge of the window gets a second snapshot this long after the first, and the report is
   * written once the thaw's second snapshot is in. @default 10000
   */
  settleMs?: number;
  /** Create quiesce's schema and snapshot table when missing. @default true */
  setup?: boolean;
  /** Where a report that could not be added to the closing record is told. @default console.error */
  onError?: (error: Error) => void;
};

/** Insert/update/delete counters of one table. */
export interface TableCounters {
  schema: string;
  table: string;
  inserted: number;
  updated: number;
  deleted: number;
}

export interface WriteAuditSnapshot {
  takenAt: string;
  database: string;
  /** PG15+: this session's pending counters were flushed (`pg_stat_force_next_flush()`). */
  flush: 'forced' | 'collector';
  tables: TableCounters[];
}

export type SnapshotPhase = 'frozen' | 'frozen-settled' | 'thawing' | 'thawing-settled';

export interface WriteAuditReport {
  /** No audited table was written between the settled freeze and the thaw, and no counter was reset. */
  clean: boolean;
  database: string;
  /** The settled freeze snapshot … */
  from: string;
  /** … to the thaw snapshot (taken before writes came back on when the ending instance has the audit). */
  to: string;
  settleMs: number;
  excludedSchemas: string[];
  /** Tables written during the window, with how many rows were inserted, updated, deleted. */
  written: TableCounters[];
  /**
   * Changed within `settleMs` after `frozen`: late statistics of writes that finished before the
   * freeze, or writes in the window's first seconds. Listed, never hidden; the report cannot tell.
   */
  aroundFreeze: TableCounters[];
  /**
   * Changed within `settleMs` after the thaw: writes back on, or late statistics of writes made just
   * before the end. Listed, never hidden.
   */
  aroundThaw: TableCounters[];
  tablesAudited: number;
  /** Tables whose counters went backwards (statistics reset): the report cannot vouch for them. */
  reset: string[];
  /** ms from the end of the window (writes back on) to the thaw snapshot; 0 when taken before. */
  gapMs?: number;
}

export interface WriteAudit {
  /** Per-table counters now. */
  snapshot(): Promise<WriteAuditSnapshot>;
  /**
   * Snapshot and keep it under a window id and phase, shared by every instance through the database.
   * The first snapshot of a phase is the one kept; `first` says whether it was this call's.
   */
  record(windowId: string, phase: SnapshotPhase): Promise<{ snapshot: WriteAuditSnapshot; first: boolean }>;
  /** The report from the kept snapshots (the thaw is snapshotted now if it has not been). */
  report(windowId: string): Promise<WriteAuditReport>;
  /**
   * Hook the audit to an engine: snapshots at `frozen` and, settled, `settleMs` later; the thaw
   * snapshot just before writes come back on (`beforeThaw`) and, settled, `settleMs` later; then the
   * report goes into the window's closing record as `writeAudit`. Attach it on every instance or
   * only some: each snapshot and the report are taken once per window, coordinated through the
   * database. Returns the detach function.
   */
  attach(engine: Pick<QuiesceEngine, 'onPhase' | 'beforeThaw' | 'addToReport' | 'window'>): () => void;
  close(): Promise<void>;
}

/** Tables whose counters moved from `before` to `after`, and those that went backwards. */
export function diffSnapshots(
  before: WriteAuditSnapshot,
  after: WriteAuditSnapshot,
): { changed: TableCounters[]; reset: string[] } {
  const start = new Map(before.tables.map((t) => [`${t.schema}.${t.table}`, t]));
  const changed: TableCounters[] = [];
  const reset: string[] = [];
  for (const t of after.tables) {
    const name = `${t.schema}.${t.table}`;
    const b = start.get(name) ?? { inserted: 0, updated: 0, deleted: 0 };
    const d = {
      inserted: t.inserted - b.inserted,
      updated: t.updated - b.updated,
      deleted: t.deleted - b.deleted,
    };
    if (d.inserted < 0 || d.updated < 0 || d.deleted < 0) reset.push(name);
    else if (d.inserted || d.updated || d.deleted) changed.push({ schema: t.schema, table: t.table, ...d });
  }
  return { changed, reset };
}

/** Build the report from a window's snapshots (a missing settled snapshot falls back to its edge's first). */
export function buildWriteAuditReport(
  snapshots: { frozen: WriteAuditSnapshot } & Partial<
    Record<Exclude<SnapshotPhase, 'frozen'>, WriteAuditSnapshot>
  > & {
      thawing: WriteAuditSnapshot;
    },
  options: { excludedSchemas?: string[]; settleMs?: number; endedAt?: string | null } = {},
): WriteAuditReport {
  const frozenSettled = snapshots['frozen-settled'] ?? snapshots.frozen;
  const thawingSettled = snapshots['thawing-settled'] ?? snapshots.thawing;
  const during = diffSnapshots(frozenSettled, snapshots.thawing);
  const freeze = diffSnapshots(snapshots.frozen, frozenSettled);
  const thaw = diffSnapshots(snapshots.thawing, thawingSettled);
  const reset = [...new Set([...during.reset, ...freeze.reset])];
  const report: WriteAuditReport = {
    clean: during.changed.length === 0 && reset.length === 0,
    database: snapshots.thawing.database,
    from: frozenSettled.takenAt,
    to: snapshots.thawing.takenAt,
    settleMs: options.settleMs ?? 0,
    excludedSchemas: options.excludedSchemas ?? [],
    written: during.changed,
    aroundFreeze: freeze.changed,
    aroundThaw: thaw.changed,
    tablesAudited: snapshots.thawing.tables.length,
    reset,
  };
  if (options.endedAt) {
    report.gapMs = Math.max(0, Date.parse(snapshots.thawing.takenAt) - Date.parse(options.endedAt));
  }
  return report;
}

/**
 * Storage write audit: proof, from PostgreSQL's own per-table statistics, that nothing was written
 * while the window was frozen — or the list of tables that were, whoever wrote them (an unguarded
 * connection, a cron on another host, a person with psql).
 */
export function createWriteAudit(options: WriteAuditOptions): WriteAudit {
  const connection = resolveConnection(options, 'write audit');
  const schema = checkSchemaName(options.schema ?? DEFAULT_SCHEMA);
  const extra = options.excludeSchemas ?? ['pgboss'];
  if (!Array.isArray(extra)) {
    throw new QuiesceError('INVALID_INPUT', 'write audit: excludeSchemas must be an array of schema names', {
      field: 'excludeSchemas',
    });
  }
  for (const [i, name] of extra.entries()) checkSchemaName(name, `excludeSchemas.${i}`);
  const excluded = [...new Set([schema, ...extra])];
  const settleMs = options.settleMs ?? 10_000;
  if (typeof settleMs !== 'number' || !Number.isFinite(settleMs) || settleMs < 0) {
    throw new QuiesceError('INVALID_INPUT', 'write audit: settleMs must be a non-negative number', {
      field: 'settleMs',
    });
  }
  const onError =
    options.onError ?? ((error: Error) => console.error(`quiesce write audit: ${error.message}`));
  const { pool } = connection;
  const s = quoteIdent(schema);
  let ready: Promise<void> | null = null;
  const prepare = () => {
    if (options.setup === false) return Promise.resolve();
    ready ??= ensureSchema(pool, schema).catch((err) => {
      ready = null;
      throw storeError(err, 'write audit: preparing schema');
    });
    return ready;
  };
  let canForce: boolean | null = null;
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  async function snapshot(): Promise<WriteAuditSnapshot> {
    const client = await pool.connect().catch((err) => {
      throw storeError(err, 'write audit: snapshot');
    });
    try {
      if (canForce === null) {
        const v = await client.query(`SELECT current_setting('server_version_num')::int AS v`);
        canForce = v.rows[0].v >= 150000;
      }
      // PG15+ flushes only this session's pending counters; the others publish theirs when idle,
      // which is what settleMs waits for.
      if (canForce) await client.query('SELECT pg_stat_force_next_flush()');
      await client.query('SELECT pg_stat_clear_snapshot()');
      const r = await client.query(
        `SELECT schemaname, relname, n_tup_ins::bigint AS ins, n_tup_upd::bigint AS upd, n_tup_del::bigint AS del
         FROM pg_stat_user_tables WHERE NOT (schemaname = ANY($1::text[])) ORDER BY schemaname, relname`,
        [excluded],
      );
      const database = (await client.query('SELECT current_database() AS d')).rows[0].d as string;
      return {
        takenAt: new Date().toISOString(),
        database,
        flush: canForce ? 'forced' : 'collector',
        tables: r.rows.map((row) => ({
          schema: row.schemaname,
          table: row.relname,
          inserted: Number(row.ins),
          updated: Number(row.upd),
          deleted: Number(row.del),
        })),
      };
    } finally {
      client.release();
    }
  }

  async function record(windowId: string, phase: SnapshotPhase | 'reported') {
    await prepare();
    const snap = await snapshot();
    const inserted = await pool.query(
      `INSERT INTO ${s}.write_audit (window_id, phase, taken_at, counters) VALUES ($1, $2, $3, $4)
       ON CONFLICT (window_id, phase) DO NOTHING RETURNING 1`,
      [windowId, phase, snap.takenAt, JSON.stringify(snap)],
    );
    if (inserted.rowCount === 1) return { snapshot: snap, first: true };
    return { snapshot: (await loadAll(windowId))[phase] ?? snap, first: false };
  }

  async function loadAll(
    windowId: string,
  ): Promise<Partial<Record<SnapshotPhase | 'reported', WriteAuditSnapshot>>> {
    const r = await pool.query(`SELECT phase, counters FROM ${s}.write_audit WHERE window_id = $1`, [
      windowId,
    ]);
    return Object.fromEntries(r.rows.map((row) => [row.phase, row.counters]));
  }

  async function report(windowId: string, endedAt?: string | null): Promise<WriteAuditReport> {
    await prepare();
    const all = await loadAll(windowId);
    if (!all.frozen) {
      throw new QuiesceError('NOT_FOUND', `write audit: no frozen snapshot for window ${windowId}`, {
        field: 'windowId',
      });
    }
    const thawing = all.thawing ?? (await record(windowId, 'thawing')).snapshot;
    return buildWriteAuditReport(
      { ...all, frozen: all.frozen, thawing },
      { excludedSchemas: excluded, settleMs, endedAt },
    );
  }

  /** Run `fn` after settleMs, detached: a phase hook must not hold the engine that long. */
  function later(fn: () => Promise<unknown>) {
    const run = () =>
      fn().catch((err: unknown) => onError(err instanceof Error ? err : new Error(String(err))));
    if (settleMs === 0) return void run();
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) void run();
    }, settleMs);
    timer.unref();
    timers.add(timer);
  }

  return {
    snapshot,
    record: (windowId, phase) => record(windowId, phase),
    report: (windowId) => report(windowId),
    attach(engine) {
      const offFrozen = engine.onPhase('frozen', async (window: MaintenanceWindow) => {
        await record(window.id, 'frozen');
        later(() => record(window.id, 'frozen-settled'));
      });
      // The thaw snapshot, taken on the instance that ends the window just before writes return.
      const offBeforeThaw = engine.beforeThaw(async (window: MaintenanceWindow) => {
        await record(window.id, 'thawing');
      });
      const offThawing = engine.onPhase('thawing', async (window: MaintenanceWindow) => {
        // Ended by an instance without the audit: snapshot now (writes are back on: see gapMs).
        await record(window.id, 'thawing');
        later(async () => {
          await record(window.id, 'thawing-settled');
          // Every instance with the audit gets here; one of them writes the report.
          const claim = await pool.query(
            `INSERT INTO ${s}.write_audit (window_id, phase, taken_at, counters) VALUES ($1, 'reported', now(), '{}')
             ON CONFLICT (window_id, phase) DO NOTHING RETURNING 1`,
            [window.id],
          );
          if (claim.rowCount !== 1) return;
          const all = await loadAll(window.id);
          const value = all.frozen
            ? await report(window.id, window.endedAt)
            : { clean: null, reason: 'the window never reached frozen' };
          if (engine.window?.id !== window.id) {
            throw new QuiesceError(
              'NO_ACTIVE_WINDOW',
              `write audit: window ${window.id} was replaced before its report was ready`,
            );
          }
          await engine.addToReport('writeAudit', value);
        });
      });
      return () => {
        offFrozen();
        offBeforeThaw();
        offThawing();
      };
    },
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      if (connection.owned) await pool.end().catch(() => {});
    },
  };
}
