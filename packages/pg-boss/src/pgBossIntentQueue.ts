import { randomUUID } from 'node:crypto';
import {
  assertStorableText,
  backoffDelay,
  type EnqueueInput,
  type EnqueueResult,
  hashPayload,
  type IntentQueue,
  type IntentStats,
  type IntentStatus,
  isQuiesceError,
  QuiesceError,
  type ReplayOptions,
  type ReplayProgress,
  type ReplayReport,
  type WriteIntent,
} from '@quiesce/core';
import { type ConstructorOptions, type Db, type Job, PgBoss } from 'pg-boss';
import {
  type PGliteWithTransactions,
  pgliteDatabase,
  type TransactionalDb,
  type TransactionHandle,
} from './pgliteDatabase.js';
import { type PreparedRunner, preparedRunner } from './prepared.js';
import { assertIdentifier, assertPositiveInt, INTENT_STATUSES, intentTable, pendingIntents } from './sql.js';

const DAY = 24 * 60 * 60 * 1000;
/** `\u0000` in JSON text, not preceded by an escaped backslash. */
const ESCAPED_NUL = /(?:^|[^\\])(?:\\\\)*\\u0000/;
const SURFACES: readonly string[] = ['http', 'graphql', 'job', 'cron', 'tool', 'custom'];

/** Where the queue's pg-boss runs. Exactly one of these, or none for the embedded default. */
export type PgBossConnection =
  | {
      /** A started pg-boss of yours. The queue neither starts nor stops it. */
      boss: PgBoss;
      connectionString?: never;
      pglite?: never;
      dataDir?: never;
    }
  | {
      /** PostgreSQL: the queue creates, starts and (on `close`) stops its own pg-boss. */
      connectionString: string;
      boss?: never;
      pglite?: never;
      dataDir?: never;
    }
  | {
      /** An open PGlite instance of yours; the queue runs its own pg-boss on it (you close PGlite). */
      pglite: PGliteWithTransactions;
      boss?: never;
      connectionString?: never;
      dataDir?: never;
    }
  | {
      /**
       * Embedded PGlite with its data in this directory: no server needed.
       * @default '.quiesce/pglite'
       */
      dataDir?: string;
      boss?: never;
      connectionString?: never;
      pglite?: never;
    };

export type PgBossIntentQueueOptions = PgBossConnection & {
  /**
   * Schema of pg-boss and of the intent table (`quiesce_intent`), so an intent and its job commit
   * in one transaction. With `boss`, give the schema that pg-boss uses.
   * @default 'pgboss'
   */
  schema?: string;
  /** pg-boss queue that carries the intents. @default 'quiesce.intents' */
  queue?: string;
  /**
   * How long a finished (applied or failed) intent keeps its idempotency key. Within the horizon
   * the same key returns the same intent (or a conflict); after it, the key may be used again.
   * Queued intents are never purged. @default 604800000 (7 days)
   */
  dedupeHorizonMs?: number;
  /**
   * A replayer's claim on an intent lasts this long without renewal (renewed every third of it).
   * A replay that crashed is resumed by the next replay once its claims have lapsed. @default 30000
   */
  leaseMs?: number;
  /** While other replayers hold claims, how often an idle replay looks again. @default 250 */
  pollMs?: number;
  /** Largest payload accepted, as JSON bytes. @default 1048576 */
  maxPayloadBytes?: number;
  /**
   * Prepare the enqueue statement once (a named statement on PostgreSQL, SQL `PREPARE` on PGlite)
   * instead of having the server parse and plan it on every enqueue. Turn it off behind a pooler
   * that cannot carry named statements (PgBouncer in transaction mode before 1.21). @default true
   */
  prepareStatements?: boolean;
  /** Extra pg-boss constructor options when the queue creates pg-boss itself. */
  bossOptions?: Omit<ConstructorOptions, 'db' | 'connectionString' | 'schema' | 'backend'>;
};

export interface PgBossIntentQueue extends IntentQueue {
  readonly kind: 'pg-boss';
  /** The pg-boss instance the queue runs on. */
  readonly boss: PgBoss;
  /** Put a dead-lettered (`failed`) intent back in the queue with its attempts reset. */
  requeue(id: string): Promise<WriteIntent | null>;
  /** Delete finished intents older than the dedupe horizon; resolves to how many. */
  purge(): Promise<number>;
}

interface Row {
  id: string;
  name: string;
  idempotency_key: string;
  payload: unknown;
  payload_hash: string;
  principal: string | null;
  surface: string;
  window_id: string | null;
  created_at: Date | string;
  status: IntentStatus;
  attempts: number;
  last_error: string | null;
  applied_at: Date | string | null;
}

const COLUMNS =
  'id, name, idempotency_key, payload, payload_hash, principal, surface, window_id, created_at, status, attempts, last_error, applied_at';
/** SQL types of the enqueue statement's parameters: pg-boss's job JSON, then the intent's columns. */
const ENQUEUE_TYPES = ['text', 'uuid', 'text', 'text', 'text', 'text', 'text', 'text', 'text'];
/** Where pg-boss's job insert reads the jobs it is given (its only parameter). */
const JOB_ROWS = 'json_to_recordset($1::text::json)';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const iso = (v: Date | string | null) => (v === null ? null : new Date(v).toISOString());

function toIntent(r: Row): WriteIntent {
  return {
    id: `int_${r.id}`,
    name: r.name,
    idempotencyKey: r.idempotency_key,
    payload: r.payload,
    payloadHash: r.payload_hash,
    principal: r.principal,
    surface: r.surface as WriteIntent['surface'],
    windowId: r.window_id,
    createdAt: iso(r.created_at)!,
    status: r.status,
    attempts: Number(r.attempts),
    lastError: r.last_error,
    appliedAt: iso(r.applied_at),
  };
}

/** `int_<uuid>` → `<uuid>` (the pg-boss job id), or null for anything else. */
function jobIdOf(id: string): string | null {
  const uuid = typeof id === 'string' && id.startsWith('int_') ? id.slice(4) : '';
  return UUID.test(uuid) ? uuid.toLowerCase() : null;
}

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

function transactional(db: Db | TransactionalDb, field: string): TransactionalDb {
  if (typeof (db as TransactionalDb).beginTransaction !== 'function') {
    throw new QuiesceError(
      'INVALID_INPUT',
      `${field}: this pg-boss cannot open transactions; on PGlite build it with \`db: pgliteDatabase(pglite)\``,
      { field },
    );
  }
  return db as TransactionalDb;
}

async function inTransaction<T>(db: TransactionalDb, fn: (tx: Db) => Promise<T>): Promise<T> {
  const tx: TransactionHandle = await db.beginTransaction();
  try {
    const result = await fn(tx.db);
    await tx.commit();
    return result;
  } catch (err) {
    await tx.rollback();
    throw err;
  }
}

/** The intent table, created once even when several processes start together. */
async function ensureIntentTable(db: TransactionalDb, schema: string, byoBoss: boolean): Promise<void> {
  const T = intentTable(schema);
  try {
    await db.executeSql(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  } catch (err) {
    if (!byoBoss) throw err;
    throw new QuiesceError(
      'INVALID_INPUT',
      `boss: cannot reach its database (start pg-boss first): ${errorMessage(err)}`,
      {
        field: 'boss',
        cause: err,
      },
    );
  }
  await inTransaction(db, async (tx) => {
    await tx.executeSql(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`quiesce:${T}`]);
    await tx.executeSql(`CREATE TABLE IF NOT EXISTS ${T} (
      id uuid PRIMARY KEY,
      queue text NOT NULL,
      name text NOT NULL,
      idempotency_key text NOT NULL,
      payload jsonb,
      payload_hash text NOT NULL,
      principal text,
      surface text NOT NULL,
      window_id text,
      status text NOT NULL CHECK (status IN (${INTENT_STATUSES.map((s) => `'${s}'`).join(', ')})),
      attempts int NOT NULL DEFAULT 0,
      last_error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      applied_at timestamptz,
      finished_at timestamptz,
      lease_owner text,
      lease_until timestamptz,
      UNIQUE (queue, name, idempotency_key)
    )`);
    await tx.executeSql(
      `CREATE INDEX IF NOT EXISTS quiesce_intent_status_idx ON ${T} (queue, status, created_at)`,
    );
  });
}

/**
 * A durable intent queue on pg-boss 12: each intent is a row of `quiesce_intent` (idempotency key,
 * payload hash, status) and a pg-boss job, committed in one transaction before `enqueue` resolves.
 * Replay claims jobs with pg-boss `fetch` (SKIP LOCKED, so several replayers share the work), runs
 * the handler registered for the intent's name, and settles intent and job together.
 */
export async function createPgBossIntentQueue(
  options: PgBossIntentQueueOptions = {},
): Promise<PgBossIntentQueue> {
  const schema = assertIdentifier(options.schema ?? 'pgboss', 'schema');
  const queue = options.queue ?? 'quiesce.intents';
  if (typeof queue !== 'string' || !/^[\w.\-/]+$/.test(queue)) {
    throw new QuiesceError('INVALID_INPUT', 'queue: letters, digits, _ . - / only', { field: 'queue' });
  }
  const horizonMs = assertPositiveInt(options.dedupeHorizonMs ?? 7 * DAY, 'dedupeHorizonMs');
  const leaseMs = assertPositiveInt(options.leaseMs ?? 30_000, 'leaseMs');
  const pollMs = assertPositiveInt(options.pollMs ?? 250, 'pollMs');
  const maxPayloadBytes = assertPositiveInt(options.maxPayloadBytes ?? 1024 * 1024, 'maxPayloadBytes');
  const prepareStatements = options.prepareStatements ?? true;
  if (typeof prepareStatements !== 'boolean') {
    throw new QuiesceError('INVALID_INPUT', 'prepareStatements: must be a boolean', {
      field: 'prepareStatements',
    });
  }
  const connections = (['boss', 'connectionString', 'pglite', 'dataDir'] as const).filter(
    (k) => (options as Record<string, unknown>)[k] !== undefined,
  );
  if (connections.length > 1) {
    throw new QuiesceError(
      'INVALID_INPUT',
      `give one of boss, connectionString, pglite, dataDir (got ${connections.join(', ')})`,
      {
        field: connections[1],
      },
    );
  }

  let boss: PgBoss;
  let ownsBoss = true;
  let closePglite: (() => Promise<void>) | null = null;
  if (options.boss) {
    boss = options.boss;
    ownsBoss = false;
  } else if (options.connectionString) {
    boss = new PgBoss({ ...options.bossOptions, connectionString: options.connectionString, schema });
  } else {
    let pglite = options.pglite;
    if (!pglite) {
      const { mkdir } = await import('node:fs/promises');
      const dataDir = options.dataDir ?? '.quiesce/pglite';
      await mkdir(dataDir, { recursive: true });
      const { PGlite } = await import('@electric-sql/pglite');
      const created = await PGlite.create(dataDir);
      pglite = created as unknown as PGliteWithTransactions;
      closePglite = () => created.close();
    }
    boss = new PgBoss({ ...options.bossOptions, db: pgliteDatabase(pglite), backend: 'pglite', schema });
  }
  const abandon = async () => {
    if (ownsBoss) await boss.stop({ graceful: false, close: true }).catch(() => {});
    await closePglite?.().catch(() => {});
  };
  let db: TransactionalDb;
  let statements: PreparedRunner;
  try {
    if (ownsBoss) {
      boss.on('error', () => {});
      await boss.start();
    }
    db = transactional(boss.getDb(), options.boss ? 'boss' : 'db');
    await ensureIntentTable(db, schema, Boolean(options.boss));
    // Retries are the replay's own (backoff in ms, attempts from ReplayOptions), so pg-boss retries
    // nothing; a queued intent must never age out of pg-boss (retention ~20 years); expiry is only a
    // backstop behind the replay's lease.
    await boss.createQueue(queue, {
      retryLimit: 0,
      expireInSeconds: 24 * 60 * 60,
      retentionSeconds: 20 * 365 * 24 * 60 * 60,
    });
    statements = await preparedRunner(db, ENQUEUE_TYPES, prepareStatements);
  } catch (err) {
    await abandon();
    throw err;
  }
  const T = intentTable(schema);
  // Several intent queues may share the table; each sees only its own rows. Safe to inline: the
  // queue name was checked against pg-boss's own name rule (no quotes).
  const mine = `queue = '${queue}'`;

  let closed = false;
  const closing = new AbortController();
  let replaying: Promise<ReplayReport> | null = null;

  const selectOne = async (executor: Db, jobId: string): Promise<Row | null> =>
    ((await executor.executeSql(`SELECT ${COLUMNS} FROM ${T} WHERE id = $1 AND ${mine}`, [jobId]))
      .rows[0] as Row) ?? null;

  const selectByKey = async (executor: Db, name: string, key: string): Promise<Row | null> =>
    ((
      await executor.executeSql(
        `SELECT ${COLUMNS} FROM ${T} WHERE ${mine} AND name = $1 AND idempotency_key = $2`,
        [name, key],
      )
    ).rows[0] as Row) ?? null;

  /**
   * pg-boss's own statement for this intent's job, built by `boss.send` but captured instead of run,
   * or null if it is not the single `INSERT … json_to_recordset($1)` this package knows how to embed
   * (a queue with `notify`, another pg-boss version): then enqueue uses a transaction instead.
   */
  const captureSend = async (id: string): Promise<{ text: string; value: string } | null> => {
    let captured: { text: string; values?: unknown[] } | undefined;
    const capture: Db = {
      async executeSql(text, values) {
        captured = { text, values };
        return { rows: [{ id }] };
      },
    };
    const sent = await boss.send(queue, { intent: `int_${id}` }, { id, db: capture });
    if (!captured || sent !== id || captured.values?.length !== 1) return null;
    const { text, values } = captured;
    if (typeof values[0] !== 'string') return null;
    const embeddable =
      /^\s*INSERT INTO /.test(text) &&
      text.split(JOB_ROWS).length === 2 &&
      (text.match(/\$\d/g) ?? []).length === 1 &&
      !text.includes(';');
    return embeddable ? { text, value: values[0] } : null;
  };

  /** The enqueue statement around pg-boss's job insert; the same text (so one prepared statement) per job insert. */
  let enqueueText: { job: string; text: string } | null = null;
  const enqueueStatement = (jobText: string): string => {
    if (enqueueText?.job !== jobText) {
      enqueueText = {
        job: jobText,
        text: `WITH intent AS (
           INSERT INTO ${T} (id, queue, name, idempotency_key, payload, payload_hash, principal, surface, window_id, status)
           VALUES ($2, '${queue}', $3, $4, $5::text::jsonb, $6, $7, $8, $9, 'queued')
           ON CONFLICT (queue, name, idempotency_key) DO NOTHING RETURNING created_at
         ), job AS (${jobText.replace(JOB_ROWS, 'json_to_recordset((SELECT $1::text::json FROM intent))')})
         SELECT created_at FROM intent`,
      };
    }
    return enqueueText.text;
  };

  /**
   * The intent row and its pg-boss job in ONE autocommitted statement: the job is inserted only if
   * the intent was (its rows come from the intent CTE), and both commit together or not at all
   * before the statement returns. One round trip instead of four (BEGIN, intent, job, COMMIT), and
   * a prepared statement, so the server does not parse and plan pg-boss's job insert every time.
   * Null when this path does not apply, or when the row holding the key is gone by the time it is
   * read (purged): the caller then uses a transaction.
   */
  const inOneStatement = async (
    id: string,
    params: (string | null)[],
    written: (createdAt: Date | string) => Row,
  ): Promise<{ row: Row; created: boolean } | null> => {
    const job = await captureSend(id);
    if (!job) return null;
    let rows: Record<string, unknown>[];
    try {
      ({ rows } = await statements.run(enqueueStatement(job.text), [job.value, ...params]));
    } catch (err) {
      // The queue was deleted under pg-boss (foreign key / missing table): let the transaction path
      // raise pg-boss's own error for it.
      const code = (err as { code?: string }).code;
      if (code === '23503' || code === '42P01') return null;
      throw err;
    }
    if (rows[0]) return { row: written(rows[0].created_at as Date | string), created: true };
    // The key is taken. Looked up apart rather than in the prepared statement: a plan cached while
    // the table was small would keep scanning it whole as it grows.
    const existing = await selectByKey(db, params[1]!, params[2]!);
    return existing && { row: existing, created: false };
  };

  const pendingCount = async (): Promise<{ pending: number; replaying: number }> => {
    const { rows } = await db.executeSql(
      `SELECT count(*)::int AS pending, (count(*) FILTER (WHERE status = 'replaying'))::int AS replaying FROM ${T} WHERE ${mine} AND ${pendingIntents}`,
    );
    return { pending: Number(rows[0].pending), replaying: Number(rows[0].replaying) };
  };

  /** Hand the jobs of these intents back to the queue whatever state pg-boss has them in. */
  const releaseJobs = async (tx: Db, ids: string[]) => {
    if (ids.length === 0) return;
    await boss.retry(queue, ids, { db: tx }); // failed (pg-boss expiry) → retry
    await boss.cancel(queue, ids, { db: tx }); // created / retry / active → cancelled
    await boss.resume(queue, ids, { db: tx }); // cancelled → created
  };

  /** Claims of replayers that stopped renewing them (crashed) go back to the queue. */
  const recoverLapsedClaims = () =>
    inTransaction(db, async (tx) => {
      const { rows } = await tx.executeSql(
        `UPDATE ${T} SET status = 'queued', lease_owner = NULL, lease_until = NULL
         WHERE ${mine} AND status = 'replaying' AND lease_until < now() RETURNING id`,
      );
      await releaseJobs(
        tx,
        rows.map((r) => r.id as string),
      );
      return rows.length;
    });

  /** Queued intents whose job is not fetchable (deleted or settled from outside) get one again. */
  const reconcileOrphans = async () => {
    const { rows } = await db.executeSql(
      `SELECT id FROM ${T} WHERE ${mine} AND status = 'queued' ORDER BY created_at LIMIT 100`,
    );
    for (const { id } of rows as { id: string }[]) {
      await inTransaction(db, async (tx) => {
        const [job] = await boss.findJobs(queue, { id, db: tx });
        if (job?.state === 'created') return;
        // Completed from outside while its intent never was: a fresh job with the same id.
        if (job?.state === 'completed') await boss.deleteJob(queue, id, { db: tx });
        if (!job || job.state === 'completed')
          await boss.send(queue, { intent: `int_${id}` }, { id, db: tx });
        else await releaseJobs(tx, [id]);
      });
    }
  };

  const purge = async (): Promise<number> => {
    const { rows } = await db.executeSql(
      `WITH gone AS (DELETE FROM ${T} WHERE ${mine} AND status IN ('applied', 'failed')
         AND finished_at < now() - $1::bigint * interval '1 millisecond' RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [horizonMs],
    );
    return Number(rows[0]?.n ?? 0);
  };
  await purge();

  function validateReplay(o: ReplayOptions) {
    if (!o || !(o.handlers instanceof Map)) {
      throw new QuiesceError('INVALID_INPUT', 'replay: handlers must be a Map of intent name → handler', {
        field: 'handlers',
      });
    }
    const concurrency = assertPositiveInt(o.concurrency ?? 4, 'concurrency');
    const maxAttempts = assertPositiveInt(o.maxAttempts ?? 5, 'maxAttempts');
    const backoffMs = o.backoffMs ?? 200;
    if (!Number.isFinite(backoffMs) || backoffMs < 0) {
      throw new QuiesceError('INVALID_INPUT', 'backoffMs: must be a number ≥ 0', { field: 'backoffMs' });
    }
    return { concurrency, maxAttempts, backoffMs };
  }

  async function replayOnce(o: ReplayOptions): Promise<ReplayReport> {
    const { concurrency, maxAttempts, backoffMs } = validateReplay(o);
    const owner = randomUUID();
    const signal = AbortSignal.any([closing.signal, ...(o.signal ? [o.signal] : [])]);
    const report: ReplayReport = { done: 0, total: 0, applied: 0, failed: 0, paused: false };
    const progress = () => {
      const p: ReplayProgress = {
        done: report.done,
        total: report.total,
        applied: report.applied,
        failed: report.failed,
      };
      try {
        o.onProgress?.(p);
      } catch {
        // A broken progress listener must not stop the backfill.
      }
    };
    report.total = (await pendingCount()).pending;
    progress();

    const renew = setInterval(
      () =>
        void db
          .executeSql(
            `UPDATE ${T} SET lease_until = now() + $2::bigint * interval '1 millisecond'
             WHERE ${mine} AND lease_owner = $1 AND status = 'replaying'`,
            [owner, leaseMs],
          )
          .catch(() => {}),
      Math.max(10, Math.floor(leaseMs / 3)),
    );
    renew.unref?.();

    /** Fetch jobs and mark their intents `replaying` under this replayer's lease, atomically. */
    const claim = (n: number) =>
      inTransaction(db, async (tx) => {
        const jobs = await boss.fetch<object>(queue, { batchSize: n, db: tx });
        if (jobs.length === 0) return [];
        const { rows } = await tx.executeSql(
          `UPDATE ${T} SET status = 'replaying', lease_owner = $2,
             lease_until = now() + $3::bigint * interval '1 millisecond'
           WHERE id = ANY($1::uuid[]) AND ${mine} AND status = 'queued' RETURNING ${COLUMNS}`,
          [jobs.map((j) => j.id), owner, leaseMs],
        );
        const byId = new Map((rows as Row[]).map((r) => [r.id, r]));
        // A job without a queued intent has nothing left to do (its intent finished or was purged).
        const stray = jobs.filter((j) => !byId.has(j.id));
        if (stray.length) await boss.complete(queue, stray, { stray: true }, { db: tx });
        return jobs.filter((j) => byId.has(j.id)).map((job) => ({ job, row: byId.get(job.id)! }));
      });

    const settle = (job: Job, status: 'applied' | 'failed', error: string | null) =>
      inTransaction(db, async (tx) => {
        const { rows } = await tx.executeSql(
          `UPDATE ${T} SET status = $3, last_error = $4, finished_at = now(),
             applied_at = CASE WHEN $3 = 'applied' THEN now() ELSE NULL END,
             lease_owner = NULL, lease_until = NULL
           WHERE id = $1 AND lease_owner = $2 RETURNING id`,
          [job.id, owner, status, error],
        );
        if (rows.length === 0) return false; // the claim lapsed and another replayer owns it now
        if (status === 'applied') await boss.complete(queue, job, null, { db: tx });
        else await boss.fail(queue, job, { message: error }, { db: tx });
        return true;
      });

    /** Hand an intent back to the queue; `unrun` takes back an attempt counted but never started. */
    const release = (job: Job, error: string | null, unrun = false) =>
      inTransaction(db, async (tx) => {
        const { rows } = await tx.executeSql(
          `UPDATE ${T} SET status = 'queued', lease_owner = NULL, lease_until = NULL,
             last_error = COALESCE($3, last_error), attempts = attempts - $4
           WHERE id = $1 AND lease_owner = $2 RETURNING id`,
          [job.id, owner, error, unrun ? 1 : 0],
        );
        if (rows.length) await releaseJobs(tx, [job.id]);
      });

    const finish = async (job: Job, status: 'applied' | 'failed', error: string | null) => {
      if (!(await settle(job, status, error))) return;
      report.done++;
      if (status === 'applied') report.applied++;
      else report.failed++;
      progress();
    };

    const runIntent = async (job: Job, row: Row) => {
      const handler = o.handlers.get(row.name);
      let attempts = Number(row.attempts);
      let lastError = row.last_error;
      for (;;) {
        if (signal.aborted) return release(job, null);
        // An intent whose attempts were used up by crashes (a poison payload) goes to dead letter.
        if (attempts >= maxAttempts) return finish(job, 'failed', lastError ?? 'attempts exhausted');
        if (!handler) return finish(job, 'failed', `no replay handler registered for intent "${row.name}"`);
        const bumped = await db.executeSql(
          `UPDATE ${T} SET attempts = attempts + 1 WHERE id = $1 AND lease_owner = $2 RETURNING attempts`,
          [job.id, owner],
        );
        if (bumped.rows.length === 0) return; // claim lost
        attempts = Number(bumped.rows[0].attempts);
        // The window may have begun while the attempt was being counted: do not start the write.
        if (signal.aborted) return release(job, null, true);
        const intent = toIntent({ ...row, status: 'replaying', attempts, last_error: lastError });
        try {
          await handler(structuredClone(row.payload), {
            intent,
            idempotencyKey: row.idempotency_key,
            attempt: attempts,
            signal,
          });
          return finish(job, 'applied', null);
        } catch (err) {
          lastError = errorMessage(err);
          if (signal.aborted) return release(job, lastError);
          if (attempts >= maxAttempts) return finish(job, 'failed', lastError);
          await db
            .executeSql(`UPDATE ${T} SET last_error = $3 WHERE id = $1 AND lease_owner = $2`, [
              job.id,
              owner,
              lastError,
            ])
            .catch(() => {});
          await sleep(backoffDelay(backoffMs, attempts), signal);
        }
      }
    };

    const running = new Set<Promise<void>>();
    const abortPromise = new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    try {
      await recoverLapsedClaims();
      while (!signal.aborted) {
        const free = concurrency - running.size;
        const claimed = free > 0 ? await claim(free) : [];
        for (const { job, row } of claimed) {
          const p: Promise<void> = runIntent(job, row)
            .catch(() => release(job, null).catch(() => {}))
            .finally(() => running.delete(p));
          running.add(p);
        }
        if (running.size > 0) {
          if (running.size >= concurrency || claimed.length < free)
            await Promise.race([...running, abortPromise]);
          continue;
        }
        const counts = await pendingCount();
        if (counts.pending === 0) break;
        report.total = Math.max(report.total, report.done + counts.pending);
        // Still pending but nothing to fetch: claims held by others (wait for them, or for their
        // leases to lapse), or jobs lost from outside (give them a job again).
        if ((await recoverLapsedClaims()) > 0) continue;
        if (counts.replaying === 0) await reconcileOrphans();
        await sleep(pollMs, signal);
      }
    } finally {
      await Promise.allSettled([...running]);
      clearInterval(renew);
    }
    report.paused = signal.aborted && (await pendingCount().catch(() => ({ pending: 1 }))).pending > 0;
    await purge().catch(() => {});
    return report;
  }

  const api: PgBossIntentQueue = {
    kind: 'pg-boss',
    boss,

    async enqueue(input: EnqueueInput): Promise<EnqueueResult> {
      if (closed) throw new QuiesceError('QUEUE_UNAVAILABLE', 'intent queue is closed');
      if (!input || typeof input.name !== 'string' || input.name.trim() === '') {
        throw new QuiesceError('INVALID_INPUT', 'intent: name is required', { field: 'name' });
      }
      if (input.surface !== undefined && !SURFACES.includes(input.surface)) {
        throw new QuiesceError('INVALID_INPUT', `intent: surface must be one of ${SURFACES.join(', ')}`, {
          field: 'surface',
        });
      }
      if (typeof input.idempotencyKey !== 'string' || input.idempotencyKey === '') {
        throw new QuiesceError('IDEMPOTENCY_KEY_REQUIRED', 'intent: idempotencyKey is required', {
          field: 'idempotencyKey',
        });
      }
      if (input.name.includes('\u0000') || input.idempotencyKey.includes('\u0000')) {
        const field = input.name.includes('\u0000') ? 'name' : 'idempotencyKey';
        throw new QuiesceError('INVALID_INPUT', `intent: ${field} contains U+0000`, { field });
      }
      if (input.idempotencyKey.length > 512) {
        throw new QuiesceError('INVALID_INPUT', 'intent: idempotencyKey is longer than 512 characters', {
          field: 'idempotencyKey',
        });
      }
      // NUL and lone surrogates: PostgreSQL's jsonb refuses both (a 400 naming the field, not a 500).
      assertStorableText(input.payload, 'payload', 'intent');
      assertStorableText(
        { name: input.name, idempotencyKey: input.idempotencyKey, principal: input.principal ?? null },
        'intent',
        'intent',
      );
      let json: string;
      try {
        json = JSON.stringify(input.payload) ?? 'null';
      } catch (err) {
        throw new QuiesceError(
          'INVALID_INPUT',
          `intent: payload is not JSON-serialisable (${errorMessage(err)})`,
          {
            field: 'payload',
            cause: err,
          },
        );
      }
      // PostgreSQL text and jsonb cannot hold U+0000.
      if (ESCAPED_NUL.test(json)) {
        throw new QuiesceError(
          'INVALID_INPUT',
          'intent: payload contains U+0000, which PostgreSQL cannot store',
          {
            field: 'payload',
          },
        );
      }
      if (Buffer.byteLength(json) > maxPayloadBytes) {
        throw new QuiesceError(
          'PAYLOAD_TOO_LARGE',
          `intent: payload is larger than ${maxPayloadBytes} bytes`,
          {
            field: 'payload',
          },
        );
      }
      const payloadHash = hashPayload(input.payload);
      const id = randomUUID();
      const params: (string | null)[] = [
        id,
        input.name,
        input.idempotencyKey,
        json,
        payloadHash,
        input.principal ?? null,
        input.surface ?? 'custom',
        input.windowId ?? null,
      ];
      // The row as written, without reading the payload back.
      const written = (createdAt: Date | string): Row => ({
        id,
        name: input.name,
        idempotency_key: input.idempotencyKey,
        payload: JSON.parse(json),
        payload_hash: payloadHash,
        principal: input.principal ?? null,
        surface: input.surface ?? 'custom',
        window_id: input.windowId ?? null,
        created_at: createdAt,
        status: 'queued',
        attempts: 0,
        last_error: null,
        applied_at: null,
      });
      const inTwoStatements = () =>
        inTransaction(db, async (tx): Promise<{ row: Row; created: boolean } | null> => {
          const inserted = await tx.executeSql(
            `INSERT INTO ${T} (id, queue, name, idempotency_key, payload, payload_hash, principal, surface, window_id, status)
             VALUES ($1, '${queue}', $2, $3, $4::text::jsonb, $5, $6, $7, $8, 'queued')
             ON CONFLICT (queue, name, idempotency_key) DO NOTHING RETURNING created_at`,
            params,
          );
          if (inserted.rows[0]) {
            await boss.send(queue, { intent: `int_${id}` }, { id, db: tx });
            return { row: written(inserted.rows[0].created_at), created: true };
          }
          const existing = await selectByKey(tx, input.name, input.idempotencyKey);
          return existing && { row: existing, created: false };
        });
      let outcome: { row: Row; created: boolean } | null = null;
      try {
        // null: the row holding the key was purged between our insert and our read; try again.
        for (let tries = 0; !outcome && tries < 3; tries++) {
          outcome = (await inOneStatement(id, params, written)) ?? (await inTwoStatements());
        }
      } catch (err) {
        if (isQuiesceError(err)) throw err;
        // The database is down or refused the statement: the intent is not stored (503, retry later).
        throw new QuiesceError(
          'QUEUE_UNAVAILABLE',
          'intent: the queue could not store this write; retry later',
          {
            cause: err,
          },
        );
      }
      if (!outcome) {
        throw new QuiesceError(
          'STORE_UNAVAILABLE',
          'intent: the key kept being purged while it was enqueued',
        );
      }
      const { row, created } = outcome;
      if (!created && row.payload_hash !== payloadHash) {
        throw new QuiesceError(
          'IDEMPOTENCY_CONFLICT',
          `idempotency key "${input.idempotencyKey}" was already used for intent int_${row.id} with a different payload`,
          { field: 'idempotencyKey', details: { intentId: `int_${row.id}` } },
        );
      }
      return { intent: toIntent(row), created };
    },

    async get(id) {
      const jobId = jobIdOf(id);
      if (!jobId) return null;
      const row = await selectOne(db, jobId);
      return row ? toIntent(row) : null;
    },

    async list(listOptions = {}) {
      const status = listOptions.status;
      if (status !== undefined && !INTENT_STATUSES.includes(status)) {
        throw new QuiesceError('INVALID_INPUT', `list: status must be one of ${INTENT_STATUSES.join(', ')}`, {
          field: 'status',
        });
      }
      const limit = assertPositiveInt(listOptions.limit ?? 100, 'limit');
      const { rows } = await db.executeSql(
        `SELECT * FROM (SELECT ${COLUMNS} FROM ${T} WHERE ${mine} ${status ? 'AND status = $2' : ''}
           ORDER BY created_at DESC, id DESC LIMIT $1) newest ORDER BY created_at, id`,
        status ? [Math.min(limit, 10_000), status] : [Math.min(limit, 10_000)],
      );
      return (rows as Row[]).map(toIntent);
    },

    async stats(): Promise<IntentStats> {
      const { rows } = await db.executeSql(
        `SELECT (count(*) FILTER (WHERE ${pendingIntents}))::int AS depth,
           (extract(epoch FROM now() - min(created_at) FILTER (WHERE ${pendingIntents})) * 1000)::float8 AS oldest,
           (count(*) FILTER (WHERE status = 'applied'))::int AS applied,
           (count(*) FILTER (WHERE status = 'failed'))::int AS failed,
           (count(*) FILTER (WHERE status = 'replaying'))::int AS replaying
         FROM ${T} WHERE ${mine}`,
      );
      const r = rows[0];
      return {
        depth: Number(r.depth),
        oldestAgeMs: r.oldest === null ? null : Math.max(0, Math.round(Number(r.oldest))),
        applied: Number(r.applied),
        failed: Number(r.failed),
        replaying: Number(r.replaying),
      };
    },

    async replay(replayOptions) {
      if (closed) throw new QuiesceError('QUEUE_UNAVAILABLE', 'intent queue is closed');
      // One replay at a time per queue object; other processes share the work through pg-boss claims.
      while (replaying) await replaying.catch(() => {});
      replaying = replayOnce(replayOptions);
      try {
        return await replaying;
      } finally {
        replaying = null;
      }
    },

    async requeue(id) {
      const jobId = jobIdOf(id);
      if (!jobId) return null;
      return inTransaction(db, async (tx) => {
        const { rows } = await tx.executeSql(
          `UPDATE ${T} SET status = 'queued', attempts = 0, finished_at = NULL
           WHERE id = $1 AND ${mine} AND status = 'failed' RETURNING ${COLUMNS}`,
          [jobId],
        );
        if (rows.length === 0) {
          const row = await selectOne(tx, jobId);
          return row ? toIntent(row) : null;
        }
        const [job] = await boss.findJobs(queue, { id: jobId, db: tx });
        if (!job) await boss.send(queue, { intent: id }, { id: jobId, db: tx });
        else await releaseJobs(tx, [jobId]);
        return toIntent(rows[0] as Row);
      });
    },

    purge,

    async close() {
      if (closed) return;
      closed = true;
      closing.abort();
      await replaying?.catch(() => {});
      await statements.close();
      if (ownsBoss) await boss.stop({ graceful: false, close: true }).catch(() => {});
      await closePglite?.();
    },
  };
  return api;
}
