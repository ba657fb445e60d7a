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
   * Wait before each snapshot so other sessions publish their statistics. A session publishes its
   * counters when it goes idle, at most once a second; one that commits in quick succession can
   * hold them for up to 10 s (PostgreSQL 15+; 500 ms through the stats collector before 15).
   * @default 0
   */
  settleMs?: number;
  /** Create quiesce's schema and snapshot table when missing. @default true */
  setup?: boolean;
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
  /** How the server's statistics were brought up to date before reading them. */
  flush: 'forced' | 'collector';
  tables: TableCounters[];
}

export interface WriteAuditReport {
  /** True when no audited table was written between the two snapshots. */
  clean: boolean;
  database: string;
  from: string;
  to: string;
  excludedSchemas: string[];
  /** Every table written during the window, with how many rows it inserted, updated, deleted. */
  written: TableCounters[];
  tablesAudited: number;
  /** Counters that went backwards (statistics reset during the window): the report cannot vouch for them. */
  reset: string[];
  /**
   * ms from the window's end (writes back on) to the closing snapshot, when known: writes made in
   * this gap are counted too.
   */
  gapMs?: number;
}

export interface WriteAudit {
  /** Per-table counters now. */
  snapshot(): Promise<WriteAuditSnapshot>;
  /**
   * Snapshot and keep it under a window id and phase, shared by every instance through the database.
   * The first snapshot of a phase is the one kept; `first` says whether it was this call's.
   */
  record(windowId: string, phase: 'frozen' | 'thawing'): Promise<{ snapshot: WriteAuditSnapshot; first: boolean }>;
  /** Report from the kept `frozen` snapshot to the `thawing` one (taken now if missing). */
  report(windowId: string): Promise<WriteAuditReport>;
  /**
   * Hook the audit to an engine: snapshot at `frozen`, snapshot and report at `thawing`, the report
   * added to the window's closing record as `writeAudit`. Returns the detach function.
   */
  attach(engine: Pick<QuiesceEngine, 'onPhase' | 'addToReport'>): () => void;
  close(): Promise<void>;
}

/** Compare two snapshots: every audited table whose counters moved. */
export function diffSnapshots(
  before: WriteAuditSnapshot,
  after: WriteAuditSnapshot,
  excludedSchemas: string[] = [],
): WriteAuditReport {
  const start = new Map(before.tables.map((t) => [`${t.schema}.${t.table}`, t]));
  const written: TableCounters[] = [];
  const reset: string[] = [];
  for (const t of after.tables) {
    const name = `${t.schema}.${t.table}`;
    const b = start.get(name) ?? { inserted: 0, updated: 0, deleted: 0 };
    const d = { inserted: t.inserted - b.inserted, updated: t.updated - b.updated, deleted: t.deleted - b.deleted };
    if (d.inserted < 0 || d.updated < 0 || d.deleted < 0) {
      reset.push(name);
      continue;
    }
    if (d.inserted || d.updated || d.deleted) written.push({ schema: t.schema, table: t.table, ...d });
  }
  return {
    clean: written.length === 0 && reset.length === 0,
    database: after.database,
    from: before.takenAt,
    to: after.takenAt,
    excludedSchemas,
    written,
    tablesAudited: after.tables.length,
    reset,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  extra.forEach((name, i) => checkSchemaName(name, `excludeSchemas.${i}`));
  const excluded = [...new Set([schema, ...extra])];
  const settleMs = options.settleMs ?? 0;
  if (!Number.isFinite(settleMs) || settleMs < 0) {
    throw new QuiesceError('INVALID_INPUT', 'write audit: settleMs must be a non-negative number', { field: 'settleMs' });
  }
  const { pool } = connection;
  const s = quoteIdent(schema);
  let ready: Promise<void> | null = null;
  const prepare = () => {
    if (options.setup === false) return Promise.resolve();
    ready ??= ensureSchema(pool, schema).catch((err) => {
      ready = null;
      throw err;
    });
    return ready;
  };
  let canForce: boolean | null = null;

  async function snapshot(): Promise<WriteAuditSnapshot> {
    if (settleMs > 0) await sleep(settleMs);
    const client = await pool.connect().catch((err) => {
      throw storeError(err, 'write audit: snapshot');
    });
    try {
      if (canForce === null) {
        const v = await client.query(`SELECT current_setting('server_version_num')::int AS v`);
        canForce = v.rows[0].v >= 150000;
      }
      // PG15+: flush this session's pending counters; the others publish theirs when idle.
      if (canForce) await client.query('SELECT pg_stat_force_next_flush()');
      // Drop any statistics snapshot cached by this session so the read is fresh.
      await client.query('SELECT pg_stat_clear_snapshot()');
      const r = await client.query(
        `SELECT current_database() AS database, schemaname, relname,
                n_tup_ins::bigint AS ins, n_tup_upd::bigint AS upd, n_tup_del::bigint AS del
         FROM pg_stat_user_tables WHERE NOT (schemaname = ANY($1::text[])) ORDER BY schemaname, relname`,
        [excluded],
      );
      let database = r.rows[0]?.database as string | undefined;
      database ??= (await client.query('SELECT current_database() AS d')).rows[0].d as string;
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

  async function record(windowId: string, phase: 'frozen' | 'thawing') {
    await prepare();
    const snap = await snapshot();
    // Every instance runs the phase hooks; the first snapshot of a phase is the one that counts.
    const inserted = await pool.query(
      `INSERT INTO ${s}.write_audit (window_id, phase, taken_at, counters) VALUES ($1, $2, $3, $4)
       ON CONFLICT (window_id, phase) DO NOTHING RETURNING 1`,
      [windowId, phase, snap.takenAt, JSON.stringify(snap)],
    );
    if (inserted.rowCount === 1) return { snapshot: snap, first: true };
    return { snapshot: (await load(windowId, phase)) ?? snap, first: false };
  }

  async function load(windowId: string, phase: string): Promise<WriteAuditSnapshot | null> {
    const r = await pool.query(`SELECT counters FROM ${s}.write_audit WHERE window_id = $1 AND phase = $2`, [
      windowId,
      phase,
    ]);
    return (r.rows[0]?.counters as WriteAuditSnapshot | undefined) ?? null;
  }

  async function report(windowId: string): Promise<WriteAuditReport> {
    await prepare();
    const before = await load(windowId, 'frozen');
    if (!before) {
      throw new QuiesceError('NOT_FOUND', `write audit: no frozen snapshot for window ${windowId}`, {
        field: 'windowId',
      });
    }
    const after = (await load(windowId, 'thawing')) ?? (await record(windowId, 'thawing')).snapshot;
    return diffSnapshots(before, after, excluded);
  }

  return {
    snapshot,
    record,
    report,
    attach(engine) {
      const offFrozen = engine.onPhase('frozen', async (window: MaintenanceWindow) => {
        await record(window.id, 'frozen');
      });
      const offThawing = engine.onPhase('thawing', async (window: MaintenanceWindow) => {
        // Snapshot first: writes are already back on (see gapMs).
        const closing = await record(window.id, 'thawing');
        if (!closing.first) return;
        const before = await load(window.id, 'frozen');
        if (!before) {
          await engine.addToReport('writeAudit', { clean: null, reason: 'the window never reached frozen' });
          return;
        }
        const result = diffSnapshots(before, closing.snapshot, excluded);
        if (window.endedAt) result.gapMs = Date.parse(closing.snapshot.takenAt) - Date.parse(window.endedAt);
        await engine.addToReport('writeAudit', result);
      });
      return () => {
        offFrozen();
        offThawing();
      };
    },
    async close() {
      if (connection.owned) await pool.end().catch(() => {});
    },
  };
}
