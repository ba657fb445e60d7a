import {
  type Clock,
  type MissedTickPolicy,
  type Operation,
  type QuiesceEngine,
  QuiesceError,
  systemClock,
} from '@quiesce/core';
import type { Db, Job, PgBoss, Schedule, WorkOptions } from 'pg-boss';
import type { TransactionalDb } from './pgliteDatabase.js';
import { assertIdentifier, pausedScheduleTable } from './sql.js';

/** How one queue behaves during a window. */
export interface QueueFreezeOptions {
  /** Its jobs only read: workers and schedules keep running during a window. @default false */
  readOnly?: boolean;
  /**
   * What happens at thaw to the ticks of this queue's schedules that fell inside the window:
   * `skip` none, `coalesce` one job, `replay` one job per tick. A function decides per schedule.
   * @default 'skip'
   */
  missed?: MissedTickPolicy | ((schedule: Schedule) => MissedTickPolicy);
}

export interface FreezeJobsOptions {
  /**
   * Queues whose policy you decided. A queue worked through the freezer but not listed here is
   * treated as writing (and shows as not explicitly classified in the inventory).
   */
  queues?: Record<string, QueueFreezeOptions>;
  /** pg-boss's schema; paused schedules are kept there (`quiesce_paused_schedule`). @default 'pgboss' */
  schema?: string;
  /** Time source for pause and thaw instants and the deferred restore. @default systemClock */
  clock?: Clock;
}

export interface JobFreezer {
  /** `boss.work` with the freeze: stopped when a window begins, started again with the same options at thaw. */
  work<T = object>(name: string, handler: (jobs: Job<T>[]) => Promise<unknown>): Promise<string>;
  work<T = object>(
    name: string,
    options: WorkOptions,
    handler: (jobs: Job<T>[], ...rest: any[]) => Promise<unknown>,
  ): Promise<string>;
  /** Stop a queue's workers for good (they are not restarted at thaw). */
  offWork(name: string): Promise<void>;
  /** Stop writing workers and pause writing schedules now (the engine's `freezing` hook does this). */
  freeze(): Promise<void>;
  /** Restart workers, settle missed ticks and restore schedules (the engine's `thawing` hook does this). */
  thaw(): Promise<void>;
  /** True between freeze and thaw. */
  readonly frozen: boolean;
  /** Remove the phase hooks and timers; workers are left as they are. */
  close(): void;
}

interface Registered {
  name: string;
  options: WorkOptions;
  handler: (...args: any[]) => Promise<unknown>;
  /** pg-boss worker id while running, null while frozen. */
  current: string | null;
  /** A `boss.work` call in progress. */
  starting: Promise<void> | null;
}

interface PausedRow {
  name: string;
  key: string;
  schedule: Schedule;
  paused_at: Date | string;
  missed: MissedTickPolicy;
}

/** pg-boss sends any occurrence of the last minute when a schedule appears (its due window). */
const DUE_WINDOW_MS = 60_000;
/** Upper bound of ticks one schedule replays at thaw. */
const MAX_REPLAYED_TICKS = 10_000;
const POLICIES: readonly MissedTickPolicy[] = ['skip', 'coalesce', 'replay'];

async function inTransaction<T>(db: TransactionalDb, fn: (tx: Db) => Promise<T>): Promise<T> {
  const tx = await db.beginTransaction();
  try {
    const result = await fn(tx.db);
    await tx.commit();
    return result;
  } catch (err) {
    await tx.rollback();
    throw err;
  }
}

/**
 * The job plane's part of a window: workers of writing queues stop fetching when the window begins
 * and start again with their original options at thaw (pg-boss has no pause of its own); jobs
 * running at the start count as in-flight writes and drain; schedules of writing queues are
 * snapshotted and paused in the database (so every instance agrees and a crash loses none),
 * missed ticks are settled by policy at thaw, and the schedules come back.
 */
export async function freezeJobs(
  boss: PgBoss,
  engine: QuiesceEngine,
  options: FreezeJobsOptions = {},
): Promise<JobFreezer> {
  const schema = assertIdentifier(options.schema ?? 'pgboss', 'schema');
  const clock = options.clock ?? systemClock;
  const declared = options.queues ?? {};
  for (const [name, q] of Object.entries(declared)) {
    const missed = q?.missed;
    if (missed !== undefined && typeof missed !== 'function' && !POLICIES.includes(missed)) {
      throw new QuiesceError('INVALID_INPUT', `queues.${name}.missed: must be skip, coalesce or replay`, {
        field: `queues.${name}.missed`,
      });
    }
  }
  const db = boss.getDb() as TransactionalDb;
  if (typeof db.beginTransaction !== 'function') {
    throw new QuiesceError(
      'INVALID_INPUT',
      'boss: its db cannot open transactions; on PGlite use `db: pgliteDatabase(pglite)`',
      {
        field: 'boss',
      },
    );
  }
  const P = pausedScheduleTable(schema);
  await inTransaction(db, async (tx) => {
    await tx.executeSql(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`quiesce:${P}`]);
    await tx.executeSql(`CREATE TABLE IF NOT EXISTS ${P} (
    name text NOT NULL,
    key text NOT NULL,
    schedule jsonb NOT NULL,
    missed text NOT NULL,
    paused_at timestamptz NOT NULL,
    thawed_at timestamptz,
    restore_at timestamptz,
    PRIMARY KEY (name, key)
  )`);
  });

  const workers = new Map<string, Registered[]>();
  const readOnly = (name: string) => declared[name]?.readOnly === true;
  const managedWriting = () =>
    [...new Set([...Object.keys(declared), ...workers.keys()])].filter((n) => !readOnly(n));
  const missedFor = (s: Schedule): MissedTickPolicy => {
    const m = declared[s.name]?.missed ?? 'skip';
    const policy = typeof m === 'function' ? m(s) : m;
    return POLICIES.includes(policy) ? policy : 'skip';
  };
  let frozen = false;
  let closed = false;
  let restoreTimer: unknown = null;

  const operation = (name: string): Operation => ({
    surface: 'job',
    name: `job ${name}`,
    queue: name,
    ...(readOnly(name)
      ? { annotation: { classification: 'read' as const } }
      : declared[name]
        ? { annotation: { classification: 'write' as const } }
        : {}),
  });

  const registerQueue = (name: string, workOptions: WorkOptions) =>
    engine.register({
      surface: 'job',
      name: `job ${name}`,
      queue: name,
      classification: readOnly(name) ? 'read' : 'write',
      policy: readOnly(name) ? 'allow' : 'block',
      explicit: declared[name] !== undefined,
      source: 'pg-boss',
      details: { localConcurrency: workOptions.localConcurrency ?? 1, batchSize: workOptions.batchSize ?? 1 },
    });

  const registerSchedule = (s: Schedule, paused: boolean) =>
    engine.register({
      surface: 'cron',
      name: `cron ${s.name}${s.key ? `/${s.key}` : ''}`,
      queue: s.name,
      classification: readOnly(s.name) ? 'read' : 'write',
      policy: readOnly(s.name) ? 'allow' : 'block',
      explicit: declared[s.name] !== undefined,
      source: 'pg-boss',
      details: { cron: s.cron, tz: s.timezone, missed: missedFor(s), paused },
    });

  const guard = (name: string, handler: (...args: any[]) => Promise<unknown>) => {
    const op = operation(name);
    return async (jobs: Job[], ...rest: unknown[]) => {
      const decision = engine.decide(op);
      if (decision.outcome === 'proceed') {
        const inFlight = decision.classification === 'write' ? engine.track(op) : null;
        try {
          return await handler(jobs, ...rest);
        } finally {
          inFlight?.done();
        }
      }
      // A policy of `drop`: the jobs are acknowledged and discarded (the engine counts them).
      if (decision.outcome === 'discard') return undefined;
      // A transactional worker's jobs are locked by its own transaction: fail them instead (pg-boss
      // retries them by the queue's retry policy).
      if (rest.length > 0) {
        throw new QuiesceError('READ_ONLY_MODE', `job ${name}: writes are refused during the window`);
      }
      // Fetched just as the window began: hand the jobs back untouched, for the thawed workers.
      await boss.cancel(name, jobs);
      await boss.resume(
        name,
        jobs.map((j) => j.id),
      );
      return undefined;
    };
  };

  const start = (r: Registered): Promise<void> => {
    if (r.starting) return r.starting;
    if (r.current || (frozen && !readOnly(r.name))) return Promise.resolve();
    r.starting = boss
      .work(r.name, r.options, guard(r.name, r.handler) as any)
      .then((id) => {
        r.current = id;
      })
      .finally(() => {
        r.starting = null;
      });
    return r.starting;
  };

  // ---------------------------------------------------------------- schedules

  const pauseSchedules = async () => {
    const names = managedWriting();
    if (names.length === 0) return;
    const now = new Date(clock.now());
    // A schedule still waiting for its deferred restore is paused again from now on.
    await db.executeSql(
      `UPDATE ${P} SET paused_at = $1, thawed_at = NULL, restore_at = NULL WHERE thawed_at IS NOT NULL AND name = ANY($2)`,
      [now, names],
    );
    const schedules = (await Promise.all(names.map((n) => boss.getSchedules(n)))).flat();
    if (schedules.length === 0) return;
    await inTransaction(db, async (tx) => {
      for (const s of schedules) {
        const row = await tx.executeSql(
          `INSERT INTO ${P} (name, key, schedule, missed, paused_at) VALUES ($1, $2, $3::text::jsonb, $4, $5)
           ON CONFLICT (name, key) DO NOTHING RETURNING name`,
          [s.name, s.key, JSON.stringify(s), missedFor(s), now],
        );
        if (row.rows.length) await boss.unschedule(s.name, s.key, { db: tx });
      }
    });
    for (const s of schedules) registerSchedule(s, true);
  };

  const missedTicks = (s: Schedule, from: Date, until: number): Date[] => {
    const ticks: Date[] = [];
    let cursor = from;
    while (ticks.length < MAX_REPLAYED_TICKS) {
      const page = boss.previewSchedule(s.cron, { tz: s.timezone || 'UTC', from: cursor, count: 1000 });
      const due = page.filter((t) => t.getTime() <= until);
      ticks.push(...due);
      if (due.length < page.length || page.length < 1000) break;
      cursor = page[page.length - 1]!;
    }
    return ticks.slice(0, MAX_REPLAYED_TICKS);
  };

  /**
   * Managed writing queues that exist, with pg-boss's queue cache warm for them: a send inside a
   * PGlite transaction must not need a statement outside it (one connection: it would wait forever).
   * A queue deleted meanwhile is left out, so it cannot fail the transaction of the others.
   */
  const liveQueues = async () => {
    const names = managedWriting();
    const nil = '00000000-0000-0000-0000-000000000000';
    const live = await Promise.all(
      names.map((n) =>
        boss.findJobs(n, { id: nil }).then(
          () => n,
          () => null,
        ),
      ),
    );
    return live.filter((n): n is string => n !== null);
  };

  /** Send the missed ticks by policy, once across all instances, and set when each schedule comes back. */
  const settleMissedTicks = async () => {
    const names = await liveQueues();
    if (names.length === 0) return;
    const now = clock.now();
    await inTransaction(db, async (tx) => {
      const { rows } = await tx.executeSql(
        `SELECT name, key, schedule, missed, paused_at FROM ${P} WHERE thawed_at IS NULL AND name = ANY($1) FOR UPDATE SKIP LOCKED`,
        [names],
      );
      for (const row of rows as PausedRow[]) {
        const s = row.schedule;
        const ticks = missedTicks(s, new Date(row.paused_at), now);
        const toSend =
          row.missed === 'replay' ? ticks.length : row.missed === 'coalesce' ? Math.min(1, ticks.length) : 0;
        const {
          tz: _tz,
          key: _key,
          missed: _missed,
          db: _db,
          ...sendOptions
        } = (s.options ?? {}) as Record<string, unknown>;
        for (let i = 0; i < toSend; i++)
          await boss.send(s.name, (s.data ?? null) as object | null, { ...sendOptions, db: tx });
        const last = ticks.at(-1)?.getTime();
        // Restored at once unless a missed tick is still inside pg-boss's due window, which would
        // send it again: then a minute after that tick.
        const restoreAt =
          last !== undefined && last + DUE_WINDOW_MS >= now ? last + DUE_WINDOW_MS + 1000 : now;
        await tx.executeSql(`UPDATE ${P} SET thawed_at = $3, restore_at = $4 WHERE name = $1 AND key = $2`, [
          row.name,
          row.key,
          new Date(now),
          new Date(restoreAt),
        ]);
      }
    });
  };

  const restoreDue = async () => {
    if (closed || frozen) return;
    const names = await liveQueues();
    if (names.length === 0) return;
    const now = new Date(clock.now());
    const restored = await inTransaction(db, async (tx) => {
      const { rows } = await tx.executeSql(
        `DELETE FROM ${P} WHERE thawed_at IS NOT NULL AND restore_at <= $1 AND name = ANY($2) RETURNING schedule`,
        [now, names],
      );
      const schedules = rows.map((r) => r.schedule as Schedule);
      for (const s of schedules) {
        const { db: _db, ...scheduleOptions } = (s.options ?? {}) as Record<string, unknown>;
        await boss.schedule(s.name, s.cron, (s.data ?? null) as object | null, {
          ...scheduleOptions,
          tz: s.timezone,
          key: s.key,
          db: tx,
        });
      }
      return schedules;
    });
    for (const s of restored) registerSchedule(s, false);
    const { rows } = await db.executeSql(
      `SELECT min(restore_at) AS next FROM ${P} WHERE thawed_at IS NOT NULL AND name = ANY($1)`,
      [names],
    );
    if (restoreTimer !== null) clock.clearTimeout(restoreTimer);
    restoreTimer = null;
    if (rows[0]?.next && !frozen && !closed) {
      const wait = Math.max(0, new Date(rows[0].next).getTime() - clock.now());
      restoreTimer = clock.setTimeout(() => {
        restoreTimer = null;
        void restoreDue().catch(() => {});
      }, wait);
    }
  };

  // ---------------------------------------------------------------- freeze and thaw

  let chain: Promise<void> = Promise.resolve();
  const serial = (fn: () => Promise<void>) => (chain = chain.then(fn, fn));

  const freeze = () =>
    serial(async () => {
      if (frozen || closed) return;
      frozen = true;
      if (restoreTimer !== null) clock.clearTimeout(restoreTimer);
      restoreTimer = null;
      for (const [name, list] of workers) {
        if (readOnly(name)) continue;
        for (const r of list) {
          await r.starting?.catch(() => {});
          if (!r.current) continue;
          const id = r.current;
          r.current = null;
          // Stop fetching now; jobs already running finish and are counted as in-flight writes by
          // the engine's drain, so this does not wait for them.
          await boss.offWork(name, { id, wait: false });
        }
      }
      await pauseSchedules();
    });

  const thaw = () =>
    serial(async () => {
      if (closed) return;
      frozen = false;
      for (const list of workers.values()) for (const r of list) await start(r);
      await settleMissedTicks();
      await restoreDue();
    });

  const unhook = [
    engine.onPhase('freezing', () => freeze()),
    engine.onPhase('frozen', () => freeze()),
    engine.onPhase('thawing', () => thaw()),
    engine.onPhase('backfilling', () => thaw()),
    engine.onPhase('closed', () => thaw()),
  ];
  await engine.start();
  // The hooks only see phase changes: bring this instance in line with the state as it is now
  // (a process started during a window, or one that crashed before restoring schedules).
  if (engine.readOnly) await freeze();
  else await thaw();
  for (const name of managedWriting())
    for (const s of await boss.getSchedules(name)) registerSchedule(s, false);

  const freezer: JobFreezer = {
    async work(name: string, a: any, b?: any) {
      const [workOptions, handler] = typeof a === 'function' ? [{}, a] : [a ?? {}, b];
      if (typeof name !== 'string' || !name)
        throw new QuiesceError('INVALID_INPUT', 'work: name is required', { field: 'name' });
      if (typeof handler !== 'function') {
        throw new QuiesceError('INVALID_INPUT', 'work: handler must be a function', { field: 'handler' });
      }
      const r: Registered = { name, options: workOptions, handler, current: null, starting: null };
      workers.set(name, [...(workers.get(name) ?? []), r]);
      registerQueue(name, workOptions);
      await chain.catch(() => {});
      await start(r);
      return r.current ?? `frozen:${name}`;
    },
    async offWork(name) {
      const list = workers.get(name) ?? [];
      workers.delete(name);
      for (const r of list) {
        await r.starting?.catch(() => {});
        if (r.current) await boss.offWork(name, { id: r.current, wait: true });
        r.current = null;
      }
    },
    freeze,
    thaw,
    get frozen() {
      return frozen;
    },
    close() {
      closed = true;
      for (const u of unhook) u();
      if (restoreTimer !== null) clock.clearTimeout(restoreTimer);
      restoreTimer = null;
    },
  };
  return freezer;
}
