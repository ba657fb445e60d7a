import type { MaintenanceWindow, QuiesceEngine } from '@quiesce/core';
import { QuiesceError } from '@quiesce/core';
import type { PoolClient } from 'pg';
import { type PostgresConnectionOptions, resolveConnection, storeError } from './connection.js';
import { checkSchemaName, DEFAULT_SCHEMA, quoteIdent } from './schema.js';

/*
 * How the audit knows. Every audited table carries four statement-level AFTER triggers (INSERT,
 * UPDATE, DELETE with transition tables; TRUNCATE), enabled ALWAYS so that
 * `session_replication_role = replica` does not silence them. Each statement that changes rows adds
 * one row to `<schema>.write_audit_log`: the writing transaction's id (`pg_current_xact_id()`), the
 * table, the operation and the number of rows. That row commits or rolls back with the write itself.
 *
 * At each edge of a window the audit stores a *mark*: `pg_current_snapshot()` (which transactions
 * had committed at that instant) and the state of every table's triggers and catalog row. A write
 * belongs to the window exactly when its transaction is not visible in the `frozen` mark's snapshot
 * and is visible in the thaw mark's: it committed after the freeze and before the thaw, whenever it
 * started (a write held by a lock across the freeze counts; one still open at the thaw does not).
 * No statistics, no clocks, no settling.
 */

export type WriteAuditOptions = PostgresConnectionOptions & {
  /** quiesce's schema: excluded from the audit, and where the log and marks are kept. @default 'quiesce' */
  schema?: string;
  /**
   * More schemas whose writes are expected during a window and are not audited: the intent queue's
   * (pg-boss uses `pgboss`), a job scheduler's. Excluded by name, whenever they write. @default ['pgboss']
   */
  excludeSchemas?: string[];
  /**
   * Audit only the tables of these schemas (an app's own), and say so in the report; tables
   * elsewhere are then neither covered nor judged. @default every schema but the excluded ones
   */
  schemas?: string[];
  /** Create the log, the marks table and the trigger function when missing. @default true */
  setup?: boolean;
  /** Where a mark or report that could not be taken is told. @default console.error */
  onError?: (error: Error) => void;
  /** Called after each mark is stored (tests and operators use it as the edge's signal). */
  onMark?: (windowId: string, phase: MarkPhase, mark: WriteAuditMark) => void;
};

export type MarkPhase = 'freezing' | 'frozen' | 'thaw';

/** One table as a mark saw it. */
export interface MarkedTable {
  oid: string;
  schema: string;
  table: string;
  /** All four audit triggers present, calling the audit's function and enabled ALWAYS. */
  covered: boolean;
  /** The triggers' catalog rows (oid:xmin): any change between marks means they were altered. */
  triggers: string;
  /** The table's catalog row version (`pg_class.xmin`): it changes with DDL, not with VACUUM/ANALYZE. */
  definition: string;
}

export interface WriteAuditMark {
  /** The database's clock when the mark was taken. */
  takenAt: string;
  /** `pg_current_snapshot()`: the transactions committed at that instant. */
  snapshot: string;
  database: string;
  /** Thaw only: taken before writes came back on (`beforeThaw` on the ending instance). */
  beforeEnd?: boolean;
  tables: MarkedTable[];
}

export type TableVerdict = 'clean' | 'writes' | 'unknown';

export interface TableAudit {
  schema: string;
  table: string;
  inserted: number;
  updated: number;
  deleted: number;
  /** TRUNCATE statements (their row counts are not known). */
  truncated: number;
  verdict: TableVerdict;
  /** Why `unknown`, or what qualifies `writes`. */
  reason?: string;
}

export interface WriteAuditReport {
  mechanism: 'triggers';
  windowId: string;
  /** `clean` only with evidence for every table: all covered at both edges, none written. */
  verdict: TableVerdict;
  /** `verdict === 'clean'`. */
  clean: boolean;
  /** Why the verdict is not `clean` (window-level), or empty. */
  reasons: string[];
  database: string;
  /** The `frozen` mark (database clock) … */
  from: string | null;
  /** … to the thaw mark. */
  to: string | null;
  /** The thaw mark was taken before writes came back on. */
  thawMarkedBeforeEnd: boolean;
  excludedSchemas: string[];
  /** The schemas audited (`schemas` option), or null for every schema but the excluded ones. */
  schemas: string[] | null;
  /** Every audited table with its counts and verdict (schema, table order). */
  tables: TableAudit[];
  /** The tables whose verdict is `writes`. */
  written: TableAudit[];
  /** The tables whose verdict is `unknown`. */
  unknown: TableAudit[];
  /**
   * Written between `freezing` and `frozen`: the drain (in-flight writes finishing), listed for the
   * record, not judged.
   */
  draining: TableAudit[];
  /** Tables covered by the triggers at both edges. */
  tablesAudited: number;
  /** What this audit cannot see, always listed. */
  cannotSee: string[];
}

export interface WriteAudit {
  /**
   * Install the audit triggers on every table of the database outside the excluded schemas (or of
   * `schemas` when given). Idempotent: tables that have them are left alone. Needs the table
   * owner's rights. Tables created later are `unknown` until this runs again.
   */
  install(options?: { schemas?: string[] }): Promise<{ installed: string[]; covered: number }>;
  /** Remove the audit triggers from every table. */
  uninstall(): Promise<void>;
  /**
   * Take a mark now and keep it under a window id. `freezing` and `frozen`: the earliest mark is kept
   * (a `frozen` mark is refused once the window has a thaw mark). `thaw`: taken before writes come
   * back on (`beforeEnd: true`) replaces an earlier one; after (`beforeEnd: false`), only if none.
   */
  mark(
    windowId: string,
    phase: MarkPhase,
    options?: { beforeEnd?: boolean },
  ): Promise<{ mark: WriteAuditMark; kept: boolean }>;
  /**
   * The window's report: computed once from its marks (the thaw is marked now if it has not been),
   * stored, and returned as stored afterwards. Call it once the window has ended: its marks are
   * final from then on.
   */
  report(windowId: string): Promise<WriteAuditReport>;
  /**
   * Hook the audit to an engine: marks at `freezing`, `frozen` and just before writes come back on
   * (`beforeThaw`; at `thawing` if the ending instance has no audit), then the report goes into the
   * window's closing record as `writeAudit` at once. Attach it on every instance or only some:
   * marks and the report are coordinated through the database. Returns the detach function.
   */
  attach(engine: Pick<QuiesceEngine, 'onPhase' | 'beforeThaw' | 'addToReport' | 'window'>): () => void;
  /** Delete log rows no window can need any more. */
  prune(): Promise<number>;
  close(): Promise<void>;
}

const TRIGGERS = [
  ['quiesce_audit_i', 'INSERT', 'REFERENCING NEW TABLE AS quiesce_new'],
  ['quiesce_audit_u', 'UPDATE', 'REFERENCING NEW TABLE AS quiesce_new'],
  ['quiesce_audit_d', 'DELETE', 'REFERENCING OLD TABLE AS quiesce_old'],
  ['quiesce_audit_t', 'TRUNCATE', ''],
] as const;

export const CANNOT_SEE = [
  'DDL: a table whose definition changed during the window is unknown (rows rewritten by ALTER TABLE are not counted)',
  'tables without the audit triggers (created after install(), or outside its schemas): unknown',
  'TRUNCATE row counts (the statement is counted)',
  'other databases on the same server',
  'writes by the excluded schemas (by name, whatever wrote them)',
];

function ddl(schema: string): string {
  const s = quoteIdent(schema);
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.write_audit_log (
  xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  rel oid NOT NULL,
  schema_name name NOT NULL,
  table_name name NOT NULL,
  op "char" NOT NULL,
  rows bigint,
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS write_audit_log_xid ON ${s}.write_audit_log (xid);
CREATE TABLE IF NOT EXISTS ${s}.write_audit_marks (
  window_id text NOT NULL,
  phase text NOT NULL,
  taken_at timestamptz NOT NULL,
  mark jsonb NOT NULL,
  PRIMARY KEY (window_id, phase)
);
CREATE OR REPLACE FUNCTION ${s}.write_audit_record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE n bigint;
BEGIN
  IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN SELECT count(*) INTO n FROM quiesce_new;
  ELSIF TG_OP = 'DELETE' THEN SELECT count(*) INTO n FROM quiesce_old;
  END IF;
  IF n = 0 THEN RETURN NULL; END IF;
  INSERT INTO ${s}.write_audit_log (rel, schema_name, table_name, op, rows)
    VALUES (TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, left(TG_OP, 1), n);
  RETURN NULL;
END
$fn$;`;
}

/** Tables a mark looks at, with their coverage; `$1` excluded schemas, `$2` the audit function. */
const MARK_SQL = `
SELECT pg_current_snapshot()::text AS snapshot, clock_timestamp() AS taken_at, current_database() AS database,
  coalesce((SELECT json_agg(json_build_object(
      'oid', c.oid::text, 'schema', n.nspname, 'table', c.relname, 'definition', c.xmin::text,
      'covered', (SELECT count(*) = 4 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgfoid = $2::regprocedure
                  AND t.tgname IN ('quiesce_audit_i', 'quiesce_audit_u', 'quiesce_audit_d', 'quiesce_audit_t')
                  AND t.tgenabled = 'A'),
      'triggers', (SELECT coalesce(string_agg(t.oid::text || ':' || t.xmin::text, ',' ORDER BY t.tgname), '')
                   FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname LIKE 'quiesce_audit_%'))
    ORDER BY n.nspname, c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT (n.nspname = ANY($1::text[]))
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'
      AND ($3::text[] IS NULL OR n.nspname = ANY($3::text[]))), '[]'::json) AS tables`;

/** Log rows committed after `$1` and by `$2` (two snapshots), per table and operation. */
function countSql(s: string): string {
  return `
SELECT rel::text AS oid, schema_name, table_name, op, count(*)::int AS statements, coalesce(sum(rows), 0)::bigint AS rows
FROM ${s}.write_audit_log
WHERE xid >= pg_snapshot_xmin($1::pg_snapshot) AND xid < pg_snapshot_xmax($2::pg_snapshot)
  AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot) AND pg_visible_in_snapshot(xid, $2::pg_snapshot)
  AND NOT (schema_name = ANY($3::text[])) AND ($4::text[] IS NULL OR schema_name = ANY($4::text[]))
GROUP BY 1, 2, 3, 4`;
}

export interface LogCount {
  oid: string;
  schema: string;
  table: string;
  op: 'I' | 'U' | 'D' | 'T';
  statements: number;
  rows: number;
}

function tally(counts: LogCount[]): Map<string, TableAudit & { oid: string }> {
  const byTable = new Map<string, TableAudit & { oid: string }>();
  for (const c of counts) {
    let t = byTable.get(c.oid);
    if (!t) {
      t = {
        oid: c.oid,
        schema: c.schema,
        table: c.table,
        inserted: 0,
        updated: 0,
        deleted: 0,
        truncated: 0,
        verdict: 'writes',
      };
      byTable.set(c.oid, t);
    }
    if (c.op === 'I') t.inserted += c.rows;
    else if (c.op === 'U') t.updated += c.rows;
    else if (c.op === 'D') t.deleted += c.rows;
    else t.truncated += c.statements;
  }
  return byTable;
}

const byName = (a: TableAudit, b: TableAudit) =>
  a.schema === b.schema ? (a.table < b.table ? -1 : 1) : a.schema < b.schema ? -1 : 1;

const strip = ({ oid: _oid, ...t }: TableAudit & { oid?: string }): TableAudit => t;

/**
 * The report from a window's marks and the log counts between them: per table, `writes` when the
 * log holds any, `clean` only when the table was covered at both edges with its triggers and
 * definition unchanged, `unknown` (with why) otherwise.
 */
export function buildWriteAuditReport(input: {
  windowId: string;
  frozen: WriteAuditMark | null;
  thaw: WriteAuditMark;
  counts: LogCount[];
  draining?: LogCount[];
  excludedSchemas?: string[];
  schemas?: string[] | null;
}): WriteAuditReport {
  const { frozen, thaw } = input;
  const reasons: string[] = [];
  const tables: TableAudit[] = [];
  let audited = 0;
  const written = tally(input.counts);
  if (!frozen) {
    reasons.push('the window never reached frozen: there is no interval to audit');
  } else if (Date.parse(frozen.takenAt) > Date.parse(thaw.takenAt)) {
    reasons.push('the frozen mark was taken after the thaw mark: there is no interval to audit');
  } else {
    const before = new Map(frozen.tables.map((t) => [t.oid, t]));
    const after = new Map(thaw.tables.map((t) => [t.oid, t]));
    for (const oid of new Set([...before.keys(), ...after.keys(), ...written.keys()])) {
      const a = before.get(oid);
      const b = after.get(oid);
      const name = (b ?? a ?? written.get(oid))!;
      let why: string | undefined;
      if (!a && !b) why = 'not a table the marks saw';
      else if (!a) why = 'created during the window';
      else if (!b) why = 'dropped during the window';
      else if (!a.covered) why = 'no audit triggers at the freeze (run install())';
      else if (!b.covered) why = 'audit triggers missing or disabled at the thaw';
      else if (a.triggers !== b.triggers) why = 'audit triggers were altered during the window';
      else if (a.definition !== b.definition)
        why = 'definition changed during the window (DDL): rows rewritten by DDL are not counted';
      else audited++;
      const w = written.get(oid);
      if (w) tables.push(strip(why ? { ...w, reason: `at least these (${why})` } : w));
      else
        tables.push({
          schema: name.schema,
          table: name.table,
          inserted: 0,
          updated: 0,
          deleted: 0,
          truncated: 0,
          verdict: why ? 'unknown' : 'clean',
          ...(why ? { reason: why } : {}),
        });
    }
  }
  tables.sort(byName);
  const writes = tables.filter((t) => t.verdict === 'writes');
  const unknown = tables.filter((t) => t.verdict === 'unknown');
  if (unknown.length > 0) reasons.push(`${unknown.length} table(s) could not be vouched for`);
  if (writes.length > 0 && !thaw.beforeEnd) {
    reasons.push(
      'the thaw mark was taken after writes came back on: writes just after the end are counted too',
    );
  }
  const verdict: TableVerdict = writes.length > 0 ? 'writes' : reasons.length > 0 ? 'unknown' : 'clean';
  return {
    mechanism: 'triggers',
    windowId: input.windowId,
    verdict,
    clean: verdict === 'clean',
    reasons,
    database: thaw.database,
    from: frozen?.takenAt ?? null,
    to: thaw.takenAt,
    thawMarkedBeforeEnd: thaw.beforeEnd === true,
    excludedSchemas: input.excludedSchemas ?? [],
    schemas: input.schemas ?? null,
    tables,
    written: writes,
    unknown,
    draining: [...tally(input.draining ?? []).values()].map(strip).sort(byName),
    tablesAudited: audited,
    cannotSee: input.schemas ? [...CANNOT_SEE, `schemas other than ${input.schemas.join(', ')}`] : CANNOT_SEE,
  };
}

/**
 * Storage write audit: evidence, from PostgreSQL's own transaction visibility and per-table
 * triggers, of every row written while the window was frozen — or of which tables it cannot vouch
 * for — whoever wrote them (an unguarded connection, a cron on another host, a person with psql).
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
  let scope: string[] | null = null;
  if (options.schemas !== undefined) {
    if (!Array.isArray(options.schemas) || options.schemas.length === 0) {
      throw new QuiesceError(
        'INVALID_INPUT',
        'write audit: schemas must be a non-empty array of schema names',
        {
          field: 'schemas',
        },
      );
    }
    for (const [i, name] of options.schemas.entries()) checkSchemaName(name, `schemas.${i}`);
    scope = [...new Set(options.schemas)];
  }
  const onError =
    options.onError ?? ((error: Error) => console.error(`quiesce write audit: ${error.message}`));
  const { pool } = connection;
  const s = quoteIdent(schema);
  const fn = `${s}.write_audit_record()`;
  let ready: Promise<void> | null = null;
  const prepare = () => {
    if (options.setup === false) return Promise.resolve();
    ready ??= (async () => {
      const client = await pool.connect();
      try {
        const present = await client.query(
          `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL
                  AND to_regprocedure($3) IS NOT NULL AS ok`,
          [`${s}.write_audit_log`, `${s}.write_audit_marks`, fn],
        );
        if (present.rows[0].ok) return;
        await inTransaction(client, async () => {
          await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`quiesce:setup:${schema}`]);
          await client.query(ddl(schema));
        });
      } finally {
        client.release();
      }
    })().catch((err) => {
      ready = null;
      throw storeError(err, 'write audit: preparing schema');
    });
    return ready;
  };

  async function inTransaction<T>(client: PoolClient, body: () => Promise<T>): Promise<T> {
    await client.query('BEGIN');
    try {
      const r = await body();
      await client.query('COMMIT');
      return r;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  async function withClient<T>(what: string, body: (c: PoolClient) => Promise<T>): Promise<T> {
    await prepare();
    const client = await pool.connect().catch((err) => {
      throw storeError(err, `write audit: ${what}`);
    });
    try {
      return await body(client);
    } catch (err) {
      throw err instanceof QuiesceError ? err : storeError(err, `write audit: ${what}`);
    } finally {
      client.release();
    }
  }

  async function takeMark(client: PoolClient): Promise<WriteAuditMark> {
    const r = await client.query(MARK_SQL, [excluded, fn, scope]);
    const row = r.rows[0];
    return {
      takenAt: new Date(row.taken_at).toISOString(),
      snapshot: row.snapshot,
      database: row.database,
      tables: row.tables,
    };
  }

  const windowLock = (client: PoolClient, windowId: string) =>
    client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`quiesce:audit:${schema}:${windowId}`]);

  async function mark(windowId: string, phase: MarkPhase, o: { beforeEnd?: boolean } = {}) {
    if (typeof windowId !== 'string' || windowId.length === 0) {
      throw new QuiesceError('INVALID_INPUT', 'write audit: windowId must be a non-empty string', {
        field: 'windowId',
      });
    }
    if (phase !== 'freezing' && phase !== 'frozen' && phase !== 'thaw') {
      throw new QuiesceError('INVALID_INPUT', 'write audit: phase must be freezing, frozen or thaw', {
        field: 'phase',
      });
    }
    const result = await withClient(`marking ${phase}`, async (client) => {
      // The snapshot is taken first, outside any lock: the edge is this instant.
      const taken = await takeMark(client);
      if (phase === 'thaw') taken.beforeEnd = o.beforeEnd === true;
      return inTransaction(client, async () => {
        await windowLock(client, windowId);
        const existing = await client.query(
          `SELECT phase, mark FROM ${s}.write_audit_marks WHERE window_id = $1 AND phase IN ($2, 'thaw', 'report')`,
          [windowId, phase],
        );
        const has = new Map(existing.rows.map((r) => [r.phase as string, r.mark as WriteAuditMark]));
        const current = has.get(phase);
        let keep: boolean;
        if (has.has('report'))
          keep = false; // reported: the marks are final
        // A thaw mark taken before writes came back on replaces an earlier one of the same kind (an
        // end that failed and was retried); one taken after the end never replaces anything.
        else if (phase === 'thaw')
          keep =
            !current ||
            (taken.beforeEnd === true && current.beforeEnd === true) ||
            // Two instances marking after the end: the earliest is the nearer to it.
            (!taken.beforeEnd &&
              !current.beforeEnd &&
              Date.parse(taken.takenAt) < Date.parse(current.takenAt));
        // `freezing`/`frozen`: the earliest instance's mark (instances apply a phase at slightly
        // different moments; the earliest makes the audited interval the widest), never after a thaw.
        else
          keep =
            !(phase === 'frozen' && has.has('thaw')) &&
            (!current || Date.parse(taken.takenAt) < Date.parse(current.takenAt));
        if (!keep) return { mark: current ?? taken, kept: false };
        await client.query(
          `INSERT INTO ${s}.write_audit_marks (window_id, phase, taken_at, mark) VALUES ($1, $2, $3, $4)
           ON CONFLICT (window_id, phase) DO UPDATE SET taken_at = EXCLUDED.taken_at, mark = EXCLUDED.mark`,
          [windowId, phase, taken.takenAt, JSON.stringify(taken)],
        );
        return { mark: taken, kept: true };
      });
    });
    if (result.kept) options.onMark?.(windowId, phase, result.mark);
    return result;
  }

  async function counts(client: PoolClient, from: string, to: string): Promise<LogCount[]> {
    const r = await client.query(countSql(s), [from, to, excluded, scope]);
    return r.rows.map((row) => ({
      oid: row.oid,
      schema: row.schema_name,
      table: row.table_name,
      op: row.op,
      statements: row.statements,
      rows: Number(row.rows),
    }));
  }

  /** The report from the marks as they are now, not stored (the thaw must be marked). */
  async function compute(windowId: string): Promise<WriteAuditReport> {
    return withClient('reporting', async (client) => {
      const r = await client.query(`SELECT phase, mark FROM ${s}.write_audit_marks WHERE window_id = $1`, [
        windowId,
      ]);
      return fromMarks(client, windowId, new Map(r.rows.map((row) => [row.phase as string, row.mark])));
    });
  }

  async function fromMarks(client: PoolClient, windowId: string, all: Map<string, unknown>) {
    if (all.has('report')) return all.get('report') as WriteAuditReport;
    const frozen = (all.get('frozen') as WriteAuditMark | undefined) ?? null;
    const thaw = all.get('thaw') as WriteAuditMark | undefined;
    if (!thaw) {
      throw new QuiesceError('NOT_FOUND', `write audit: window ${windowId} has no thaw mark`, {
        field: 'windowId',
      });
    }
    const freezing = all.get('freezing') as WriteAuditMark | undefined;
    return buildWriteAuditReport({
      windowId,
      frozen,
      thaw,
      counts: frozen ? await counts(client, frozen.snapshot, thaw.snapshot) : [],
      draining: freezing && frozen ? await counts(client, freezing.snapshot, frozen.snapshot) : [],
      excludedSchemas: excluded,
      schemas: scope,
    });
  }

  async function report(windowId: string): Promise<WriteAuditReport> {
    const marks = async () =>
      withClient('reading marks', async (client) => {
        const r = await client.query(`SELECT phase, mark FROM ${s}.write_audit_marks WHERE window_id = $1`, [
          windowId,
        ]);
        return new Map(r.rows.map((row) => [row.phase as string, row.mark]));
      });
    let all = await marks();
    if (all.has('report')) return all.get('report') as WriteAuditReport;
    if (!all.has('thaw')) await mark(windowId, 'thaw', { beforeEnd: false });
    const result = await withClient('reporting', (client) =>
      inTransaction(client, async () => {
        await windowLock(client, windowId);
        all = new Map(
          (
            await client.query(`SELECT phase, mark FROM ${s}.write_audit_marks WHERE window_id = $1`, [
              windowId,
            ])
          ).rows.map((row) => [row.phase as string, row.mark]),
        );
        if (all.has('report')) return all.get('report') as WriteAuditReport;
        const value = await fromMarks(client, windowId, all);
        await client.query(
          `INSERT INTO ${s}.write_audit_marks (window_id, phase, taken_at, mark) VALUES ($1, 'report', now(), $2)`,
          [windowId, JSON.stringify(value)],
        );
        return value;
      }),
    );
    await prune().catch((err) => onError(err instanceof Error ? err : new Error(String(err))));
    return result;
  }

  /**
   * Log rows older than every open window's first mark and than every running transaction are
   * visible in any mark taken from now on: no report can count them.
   */
  async function prune(): Promise<number> {
    return withClient('pruning', async (client) => {
      const r = await client.query(
        `DELETE FROM ${s}.write_audit_log WHERE xid < (
           SELECT min(x) FROM (
             SELECT pg_snapshot_xmin(pg_current_snapshot()) AS x
             UNION ALL
             SELECT pg_snapshot_xmin((m.mark->>'snapshot')::pg_snapshot) FROM ${s}.write_audit_marks m
             WHERE m.phase <> 'report' AND NOT EXISTS (
               SELECT 1 FROM ${s}.write_audit_marks r WHERE r.window_id = m.window_id AND r.phase = 'report')
           ) open)`,
      );
      return r.rowCount ?? 0;
    });
  }

  async function install(o: { schemas?: string[] } = {}) {
    if (o.schemas !== undefined) {
      if (!Array.isArray(o.schemas)) {
        throw new QuiesceError('INVALID_INPUT', 'write audit: install: schemas must be an array', {
          field: 'schemas',
        });
      }
      for (const [i, name] of o.schemas.entries()) checkSchemaName(name, `schemas.${i}`);
    }
    return withClient('installing triggers', (client) =>
      inTransaction(client, async () => {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`quiesce:audit-install:${schema}`]);
        const mark = await takeMark(client);
        const targets = mark.tables.filter(
          (t) => !t.covered && (o.schemas === undefined || o.schemas.includes(t.schema)),
        );
        for (const t of targets) {
          const rel = `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
          for (const [name, event, referencing] of TRIGGERS) {
            await client.query(`DROP TRIGGER IF EXISTS ${name} ON ${rel}`);
            await client.query(
              `CREATE TRIGGER ${name} AFTER ${event} ON ${rel} ${referencing} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}`,
            );
            await client.query(`ALTER TABLE ${rel} ENABLE ALWAYS TRIGGER ${name}`);
          }
        }
        const covered = mark.tables.filter((t) => t.covered).length + targets.length;
        return { installed: targets.map((t) => `${t.schema}.${t.table}`), covered };
      }),
    );
  }

  async function uninstall() {
    await withClient('removing triggers', (client) =>
      inTransaction(client, async () => {
        const r = await client.query(
          `SELECT DISTINCT n.nspname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE t.tgfoid = $1::regprocedure AND t.tgname LIKE 'quiesce_audit_%'`,
          [fn],
        );
        for (const row of r.rows) {
          const rel = `${quoteIdent(row.nspname)}.${quoteIdent(row.relname)}`;
          for (const [name] of TRIGGERS) await client.query(`DROP TRIGGER IF EXISTS ${name} ON ${rel}`);
        }
      }),
    );
  }

  const pending = new Set<Promise<unknown>>();
  const fail = (err: unknown) => onError(err instanceof Error ? err : new Error(String(err)));

  return {
    install,
    uninstall,
    mark,
    report,
    prune,
    attach(engine) {
      const offFreezing = engine.onPhase('freezing', async (window: MaintenanceWindow) => {
        await mark(window.id, 'freezing').catch(fail);
      });
      const offFrozen = engine.onPhase('frozen', async (window: MaintenanceWindow) => {
        await mark(window.id, 'frozen').catch(fail);
      });
      // On the instance that ends the window, just before writes come back on: the thaw mark, and the
      // report into the closing record while the window is still the current one (no next window
      // can have replaced it). Not stored yet: should this end fail, a later end marks again.
      const offBeforeThaw = engine.beforeThaw(async (window: MaintenanceWindow) => {
        try {
          await mark(window.id, 'thaw', { beforeEnd: true });
          const value = await compute(window.id);
          if (engine.window?.id === window.id) await engine.addToReport('writeAudit', value);
        } catch (err) {
          fail(err);
        }
      });
      const offThawing = engine.onPhase('thawing', (window: MaintenanceWindow) => {
        // Detached: the report must not hold the engine's state application.
        const run = (async () => {
          // The thaw is marked now if the window was ended by an instance without the audit.
          const value = await report(window.id);
          const current = engine.window;
          if (current?.id !== window.id) {
            // Marked before the end: the ending instance added it to the record before the thaw.
            if (value.thawMarkedBeforeEnd) return;
            throw new QuiesceError(
              'NO_ACTIVE_WINDOW',
              `write audit: window ${window.id} was replaced before its report was added (audit.report('${window.id}') has it)`,
            );
          }
          // Already there (added before the thaw by the ending instance, or by another instance).
          if (JSON.stringify(current.report.writeAudit) === JSON.stringify(value)) return;
          await engine.addToReport('writeAudit', value);
        })()
          .catch(fail)
          .finally(() => pending.delete(run));
        pending.add(run);
      });
      return () => {
        offFreezing();
        offFrozen();
        offBeforeThaw();
        offThawing();
      };
    },
    async close() {
      await Promise.allSettled([...pending]);
      if (connection.owned) await pool.end().catch(() => {});
    },
  };
}
