import { QuiesceError } from '@quiesce/core';
import pg from 'pg';

/** Where a quiesce component connects: an app's pool, or a connection string (then it owns a pool). */
export type PostgresConnectionOptions =
  | {
      /** An existing `pg` pool; never ended by quiesce. */
      pool: pg.Pool;
      connectionString?: never;
    }
  | {
      /** A connection string; quiesce then owns a small pool and ends it on `close()`. */
      connectionString: string;
      pool?: never;
    };

export interface ResolvedConnection {
  pool: pg.Pool;
  owned: boolean;
  /** Settings for a dedicated connection (LISTEN) to the same server. */
  clientConfig: pg.ClientConfig;
}

export function resolveConnection(options: PostgresConnectionOptions, what: string): ResolvedConnection {
  if (options === null || typeof options !== 'object') {
    throw new QuiesceError('INVALID_INPUT', `${what}: options are required`, { field: 'options' });
  }
  if (options.pool && options.connectionString) {
    throw new QuiesceError('INVALID_INPUT', `${what}: give either pool or connectionString, not both`, {
      field: 'connectionString',
    });
  }
  if (options.pool) {
    if (typeof options.pool.connect !== 'function' || typeof options.pool.query !== 'function') {
      throw new QuiesceError('INVALID_INPUT', `${what}: pool must be a pg Pool`, { field: 'pool' });
    }
    const { max: _max, idleTimeoutMillis: _idle, ...clientConfig } = options.pool.options ?? {};
    return { pool: options.pool, owned: false, clientConfig: clientConfig as pg.ClientConfig };
  }
  if (typeof options.connectionString !== 'string' || options.connectionString.length === 0) {
    throw new QuiesceError('INVALID_INPUT', `${what}: pool or connectionString is required`, {
      field: 'connectionString',
    });
  }
  const clientConfig: pg.ClientConfig = {
    connectionString: options.connectionString,
    connectionTimeoutMillis: 5000,
    keepAlive: true,
  };
  // A query unanswered for 10 s fails, and its connection is dropped from the pool (a half-open
  // connection would otherwise hang every read).
  const pool = new pg.Pool({ ...clientConfig, max: 4, idleTimeoutMillis: 10_000, query_timeout: 10_000 });
  // An idle client that loses its server emits on the pool; without a listener that would crash.
  pool.on('error', () => {});
  return { pool, owned: true, clientConfig };
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  '57P01',
  '57P02',
  '57P03',
]);

/** Wrap a driver error: connection trouble becomes `STORE_UNAVAILABLE`, the rest passes through. */
export function storeError(err: unknown, what: string): Error {
  if (err instanceof QuiesceError) return err;
  const e = err as { code?: string; message?: string };
  const message = e?.message ?? String(err);
  if (
    (e?.code && CONNECTION_CODES.has(e.code)) ||
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|Query read timeout/i.test(
      message,
    )
  ) {
    return new QuiesceError('STORE_UNAVAILABLE', `${what}: ${message}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(message);
}
