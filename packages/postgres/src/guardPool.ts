import { AsyncLocalStorage } from 'node:async_hooks';
import { type QuiesceEngine, QuiesceError } from '@quiesce/core';
import type pg from 'pg';

/** SQLSTATE `read_only_sql_transaction`: a write attempted in a read-only transaction. */
export const READ_ONLY_SQLSTATE = '25006';

export interface GuardPoolOptions {
  /** The engine whose `readOnly` decides how a checked-out connection runs. */
  engine: Pick<QuiesceEngine, 'readOnly'>;
}

const allowed = new AsyncLocalStorage<true>();

/**
 * Run `fn` with writes allowed on guarded pools, for operations the engine lets through during a
 * window (policy `allow`: sign-in, health, the admin surface). Connections checked out inside `fn`
 * stay read-write.
 */
export function withWritesAllowed<T>(fn: () => T): T {
  return allowed.run(true, fn);
}

const GUARDED = Symbol.for('quiesce.guardedPool');
const READ_ONLY = Symbol('quiesce.readOnlySession');

type Tagged = pg.PoolClient & { [READ_ONLY]?: boolean };

/**
 * Database-level enforcement, opt-in: a view of `pool` whose connections, when checked out while the
 * engine is read-only, run with `default_transaction_read_only = on`. A write that slipped past
 * classification then fails in PostgreSQL with SQLSTATE 25006; {@link isReadOnlyViolation} and
 * {@link readOnlyRefusal} turn that into the same refusal every adapter renders.
 *
 * The setting belongs to the session, so a connection goes back to the pool read-write again
 * (`RESET default_transaction_read_only` before release). A connection checked out before the window
 * keeps running read-write until it is released: that is an in-flight write, which the drain waits for.
 * Give the intent queue its own pool, never this one.
 */
export function guardPool<P extends pg.Pool>(pool: P, options: GuardPoolOptions): P {
  if (!pool || typeof (pool as pg.Pool).connect !== 'function') {
    throw new QuiesceError('INVALID_INPUT', 'guardPool: pool must be a pg Pool', { field: 'pool' });
  }
  const engine = options?.engine;
  if (!engine || typeof engine !== 'object' || !('readOnly' in engine)) {
    throw new QuiesceError('INVALID_INPUT', 'guardPool: engine is required', { field: 'engine' });
  }
  const originalConnect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;

  async function checkout(): Promise<pg.PoolClient> {
    const client = (await originalConnect()) as Tagged;
    const readOnly = engine.readOnly && allowed.getStore() !== true;
    if (readOnly === Boolean(client[READ_ONLY])) return client;
    try {
      await client.query(
        readOnly ? 'SET default_transaction_read_only = on' : 'RESET default_transaction_read_only',
      );
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
    client[READ_ONLY] = readOnly;
    if (readOnly) {
      const release = client.release;
      client.release = (err?: Error | boolean) => {
        client.release = release;
        if (err) return release.call(client, err);
        // Back to read-write before anyone else (the queue's pool may share the server) gets it.
        client.query('RESET default_transaction_read_only').then(
          () => {
            client[READ_ONLY] = false;
            release.call(client);
          },
          (resetError: Error) => release.call(client, resetError),
        );
      };
    }
    return client;
  }

  return new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop === GUARDED) return true;
      if (prop === 'connect') {
        return (
          callback?: (err: Error | undefined, client?: pg.PoolClient, done?: (e?: Error) => void) => void,
        ) => {
          const p = checkout();
          if (!callback) return p;
          p.then(
            (client) => callback(undefined, client, (e?: Error) => client.release(e)),
            (err: Error) => callback(err),
          );
          return undefined;
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(receiver) : value;
    },
  });
}

/** Whether a pool came from {@link guardPool}. */
export function isGuardedPool(pool: unknown): boolean {
  return typeof pool === 'object' && pool !== null && (pool as Record<symbol, unknown>)[GUARDED] === true;
}

/** True for PostgreSQL's "cannot execute … in a read-only transaction" (SQLSTATE 25006). */
export function isReadOnlyViolation(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; e && depth < 5; depth++) {
    if ((e as { code?: unknown }).code === READ_ONLY_SQLSTATE) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Turn a read-only violation into core's refusal (`QuiesceError('READ_ONLY_MODE')`, rendered by every
 * adapter as 503 + Retry-After), carrying the window; any other error is returned unchanged.
 */
export function readOnlyRefusal(error: unknown, engine?: Pick<QuiesceEngine, 'window'>): unknown {
  if (!isReadOnlyViolation(error)) return error;
  const window = engine?.window ?? null;
  return new QuiesceError(
    'READ_ONLY_MODE',
    window?.message ?? 'Writes are paused: the database is in read-only mode.',
    {
      cause: error,
      details: window ? { windowId: window.id, endsAt: window.endsAt } : { sqlstate: READ_ONLY_SQLSTATE },
    },
  );
}
