import {
  type CompareAndSetResult,
  INITIAL_STATE,
  type InstanceRecord,
  type InstanceRegistry,
  parseInstanceRecord,
  parseState,
  QuiesceError,
  type QuiesceState,
  type StateStore,
} from '@quiesce/core';
import type pg from 'pg';
import { type PostgresConnectionOptions, resolveConnection, storeError } from './connection.js';
import { NotificationListener, type ReconnectOptions, sharedListener } from './notificationListener.js';
import {
  channelFor,
  checkSchemaName,
  DEFAULT_SCHEMA,
  ensureSchema,
  quoteIdent,
  registryChannelFor,
} from './schema.js';

export type PostgresStoreOptions = PostgresConnectionOptions & {
  /** Schema holding quiesce's tables (created when missing unless `setup: false`). @default 'quiesce' */
  schema?: string;
  /** Row of the state table: several apps can share one schema under different keys. @default 'default' */
  key?: string;
  /** Create the schema, tables and notify triggers when missing. @default true */
  setup?: boolean;
  /** Backoff and liveness check of the dedicated LISTEN connection. */
  reconnect?: ReconnectOptions;
  /**
   * Where the dedicated LISTEN connection goes, when not where the pool goes: a pooler in
   * transaction mode (PgBouncer) does not carry LISTEN. @default the pool's settings
   */
  listenConnection?: string | pg.ClientConfig;
  /** Registry records silent for longer are deleted by `registry.list()`. @default 3600000 (1 h) */
  pruneInstancesAfterMs?: number;
  /**
   * Share one LISTEN connection with every other store of this process that connects the same way
   * (many engines in one process hold one connection, not one each). @default true
   */
  shareListener?: boolean;
};

export interface PostgresStore extends StateStore {
  readonly kind: 'postgres';
  readonly registry: InstanceRegistry & { subscribe(listener: () => void): () => void };
  /** The schema in use (the write audit excludes it). */
  readonly schema: string;
  /** True while the state channel is LISTENed on a live connection. */
  readonly listening: boolean;
  /** Notifications this store received: state changes, and registry changes while it listened to them. */
  readonly received: { state: number; registry: number };
}

interface Notice {
  kind: 'state';
  key: string;
  version?: number;
  state?: unknown;
}

/**
 * The state in a row of `<schema>.state`, compare-and-set by version in one statement, every change
 * announced by a trigger through NOTIFY and received on a dedicated LISTEN connection that
 * reconnects by itself. The engine's periodic `read()` is the safety net for anything missed.
 */
export function createPostgresStore(options: PostgresStoreOptions): PostgresStore {
  const connection = resolveConnection(options, 'postgres store');
  const schema = checkSchemaName(options.schema ?? DEFAULT_SCHEMA);
  const key = options.key ?? 'default';
  if (typeof key !== 'string' || key.length === 0) {
    throw new QuiesceError('INVALID_INPUT', 'postgres store: key must be a non-empty string', {
      field: 'key',
    });
  }
  const pruneAfterMs = options.pruneInstancesAfterMs ?? 3_600_000;
  const { pool } = connection;
  const s = quoteIdent(schema);
  const channel = channelFor(schema);
  const registryChannel = registryChannelFor(schema);
  const received = { state: 0, registry: 0 };

  let ready: Promise<void> | null = null;
  const prepare = () => {
    if (options.setup === false) return Promise.resolve();
    ready ??= ensureSchema(pool, schema).catch((err) => {
      ready = null;
      throw storeError(err, `postgres store: preparing schema ${schema}`);
    });
    return ready;
  };
  let closed = false;
  const query = async (text: string, values: unknown[], what: string) => {
    if (closed) throw new QuiesceError('STORE_UNAVAILABLE', `postgres store: ${what} after close()`);
    await prepare();
    try {
      return await pool.query(text, values);
    } catch (err) {
      throw storeError(err, `postgres store: ${what}`);
    }
  };

  /** Highest version this handle has seen: the state never goes back to 0 by itself. */
  let highest = 0;
  const seen = (state: QuiesceState) => {
    if (state.version > highest) highest = state.version;
    return state;
  };
  const vanished = () =>
    new QuiesceError(
      'STORE_UNAVAILABLE',
      `postgres store: the state (${schema}.state, key ${key}) is gone after version ${highest} was seen (deleted, flushed or evicted?). ` +
        'Instances ignore versions they have passed: restore it with a higher version, or restart every instance.',
    );

  function decode(version: unknown, payload: unknown): QuiesceState {
    const state = parseState(payload);
    if (Number(version) !== state.version) {
      throw new QuiesceError(
        'INVALID_INPUT',
        `state payload: version: ${state.version} does not match the row's version ${version} (${schema}.state, key ${key})`,
        { field: 'version' },
      );
    }
    return seen(state);
  }

  async function read(): Promise<QuiesceState> {
    const r = await query(`SELECT version, payload FROM ${s}.state WHERE key = $1`, [key], 'read');
    const row = r.rows[0];
    if (!row) {
      if (highest > 0) throw vanished();
      return structuredClone(INITIAL_STATE);
    }
    return decode(row.version, row.payload);
  }

  const stateListeners = new Set<{ fn: (state: QuiesceState) => void; onError?: (error: Error) => void }>();
  const registryListeners = new Set<() => void>();
  const reportError = (error: Error) => {
    for (const l of stateListeners) l.onError?.(error);
  };
  const deliver = (state: QuiesceState) => {
    for (const l of stateListeners) l.fn(structuredClone(state));
  };
  const refresh = () => {
    read().then(deliver, reportError);
  };

  const listenConfig: pg.ClientConfig =
    options.listenConnection === undefined
      ? connection.clientConfig
      : typeof options.listenConnection === 'string'
        ? { connectionString: options.listenConnection }
        : options.listenConnection;
  const listener =
    options.shareListener === false
      ? new NotificationListener(listenConfig, options.reconnect)
      : sharedListener(listenConfig, options.reconnect);
  let stopState: (() => Promise<void>) | null = null;
  let stopRegistry: (() => Promise<void>) | null = null;
  const startListening = () => {
    if (closed || stopState) return;
    stopState = listener.listen(channel, {
      notification(payload) {
        let notice: Notice;
        try {
          notice = JSON.parse(payload) as Notice;
        } catch {
          return;
        }
        if (notice.key !== key || notice.kind !== 'state') return;
        received.state++;
        if (notice.state == null) return refresh();
        try {
          deliver(decode(notice.version, notice.state));
        } catch (err) {
          reportError(err as Error);
        }
      },
      listening(reconnected) {
        // Whatever changed while the connection was down was not announced to us.
        if (reconnected) refresh();
      },
      error: reportError,
    });
  };
  const maybeStopListening = () => {
    if (stateListeners.size === 0 && stopState) {
      void stopState();
      stopState = null;
    }
  };
  // The registry channel is listened to only while a controller waits for acknowledgements.
  const startRegistry = () => {
    if (closed || stopRegistry) return;
    stopRegistry = listener.listen(registryChannel, {
      notification(payload) {
        if (payload !== key) return;
        received.registry++;
        for (const l of registryListeners) l();
      },
      listening() {
        // Subscribed (or back): what was announced before may have been missed; look again.
        for (const l of registryListeners) l();
      },
      error: () => {},
    });
  };
  const maybeStopRegistry = () => {
    if (registryListeners.size === 0 && stopRegistry) {
      void stopRegistry();
      stopRegistry = null;
    }
  };

  let lastPrune = 0;
  const registry: PostgresStore['registry'] = {
    async upsert(record, upsertOptions) {
      const checked = parseInstanceRecord(record, 'registry.upsert');
      // One statement: the upsert, and (when asked) the announcement on the registry channel, which
      // only a controller confirming a freeze or a thaw listens to.
      await query(
        `WITH up AS (
           INSERT INTO ${s}.instances AS t (key, id, acked_version, in_flight, last_seen, record)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (key, id) DO UPDATE SET acked_version = EXCLUDED.acked_version,
             in_flight = EXCLUDED.in_flight, last_seen = EXCLUDED.last_seen, record = EXCLUDED.record
           -- An engine heartbeats on a timer and acknowledges on applied states, and pool connections
           -- commit in any order: a record built earlier must not take back an acknowledgement. (Not
           -- ordered by last_seen: a clock stepping back would silence the instance. A stale record
           -- with the same version can only report more in-flight writes, never fewer: it errs on the
           -- safe side.)
           WHERE t.acked_version <= EXCLUDED.acked_version
           RETURNING 1)
         SELECT pg_notify($7, $1) FROM up WHERE $8::boolean`,
        [
          key,
          checked.id,
          checked.ackedVersion,
          checked.inFlight,
          checked.lastSeen,
          JSON.stringify(checked),
          registryChannel,
          upsertOptions?.announce === true,
        ],
        'registry.upsert',
      );
    },
    async get(instanceId) {
      const r = await query(
        `SELECT record FROM ${s}.instances WHERE key = $1 AND id = $2`,
        [key, instanceId],
        'registry.get',
      );
      const row = r.rows[0];
      return row ? parseInstanceRecord(row.record, 'registry record') : null;
    },
    async list() {
      // The controller lists every 50 ms while freezing; pruning once a minute is plenty.
      if (pruneAfterMs > 0 && Date.now() - lastPrune > 60_000) {
        lastPrune = Date.now();
        await query(
          `DELETE FROM ${s}.instances WHERE key = $1 AND last_seen < $2`,
          [key, Date.now() - pruneAfterMs],
          'registry.list',
        );
      }
      const r = await query(
        `SELECT record FROM ${s}.instances WHERE key = $1 ORDER BY id`,
        [key],
        'registry.list',
      );
      const records: InstanceRecord[] = [];
      for (const row of r.rows) {
        try {
          records.push(parseInstanceRecord(row.record, 'registry record'));
        } catch (err) {
          // One unreadable row must not hide the others; say which one it was.
          reportError(err as Error);
        }
      }
      return records;
    },
    async remove(instanceId, removeOptions) {
      await query(
        `WITH gone AS (DELETE FROM ${s}.instances WHERE key = $1 AND id = $2
           AND ($4::bigint IS NULL OR last_seen = $4) RETURNING 1)
         SELECT pg_notify($3, $1) FROM gone`,
        [key, instanceId, registryChannel, removeOptions?.ifLastSeen ?? null],
        'registry.remove',
      );
    },
    subscribe(fn) {
      registryListeners.add(fn);
      startRegistry();
      return () => {
        registryListeners.delete(fn);
        maybeStopRegistry();
      };
    },
  };

  return {
    kind: 'postgres',
    writable: true,
    schema,
    registry,
    async heartbeat(record) {
      const checked = parseInstanceRecord(record, 'heartbeat');
      // The renewal and the state read in one statement (the read sees the state as of its start).
      const r = await query(
        `WITH up AS (
           INSERT INTO ${s}.instances AS t (key, id, acked_version, in_flight, last_seen, record)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (key, id) DO UPDATE SET acked_version = EXCLUDED.acked_version,
             in_flight = EXCLUDED.in_flight, last_seen = EXCLUDED.last_seen, record = EXCLUDED.record
           WHERE t.acked_version <= EXCLUDED.acked_version
           RETURNING 1)
         SELECT version, payload, (SELECT count(*) FROM up) AS renewed FROM ${s}.state WHERE key = $1`,
        [key, checked.id, checked.ackedVersion, checked.inFlight, checked.lastSeen, JSON.stringify(checked)],
        'heartbeat',
      );
      const row = r.rows[0];
      if (!row) {
        if (highest > 0) throw vanished();
        // No state yet: the upsert ran all the same (a data-modifying WITH always does).
        return structuredClone(INITIAL_STATE);
      }
      return decode(row.version, row.payload);
    },
    get listening() {
      return stopState !== null && listener.listening(channel);
    },
    received,
    read,
    async compareAndSet(expectedVersion, next): Promise<CompareAndSetResult> {
      if (!Number.isInteger(expectedVersion) || expectedVersion < 0) {
        throw new QuiesceError(
          'INVALID_INPUT',
          'compareAndSet: expectedVersion must be a non-negative integer',
          {
            field: 'expectedVersion',
          },
        );
      }
      const state = parseState(next);
      const payload = JSON.stringify(state);
      // Only a handle that never saw a state may create it: one that did would resurrect version 1.
      const r =
        expectedVersion === 0 && highest === 0
          ? await query(
              `INSERT INTO ${s}.state AS t (key, version, payload) VALUES ($1, $2, $3)
               ON CONFLICT (key) DO UPDATE SET version = EXCLUDED.version, payload = EXCLUDED.payload, updated_at = now()
               WHERE t.version = 0
               RETURNING version`,
              [key, state.version, payload],
              'compareAndSet',
            )
          : await query(
              `UPDATE ${s}.state SET version = $2, payload = $3, updated_at = now()
               WHERE key = $1 AND version = $4 RETURNING version`,
              [key, state.version, payload, expectedVersion],
              'compareAndSet',
            );
      if (r.rowCount === 1) return { ok: true, state: seen(state) };
      return { ok: false, current: await read() };
    },
    subscribe(fn, onError) {
      const entry = { fn, onError };
      stateListeners.add(entry);
      startListening();
      return () => {
        stateListeners.delete(entry);
        maybeStopListening();
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      stateListeners.clear();
      registryListeners.clear();
      await Promise.all([stopState?.(), stopRegistry?.()]);
      stopState = null;
      stopRegistry = null;
      if (connection.owned) await pool.end().catch(() => {});
    },
  };
}
