import {
  type CompareAndSetResult,
  type ConnectedStore,
  createStoreKit,
  type InstanceRecord,
  parseInstanceRecord,
  QuiesceError,
  type QuiesceState,
  type StoreKitWants,
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

export interface PostgresStore extends ConnectedStore {
  readonly kind: 'postgres';
  /** The schema in use (the write audit excludes it). */
  readonly schema: string;
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
  const kit = createStoreKit({
    name: 'postgres store',
    location: `${schema}.state, key ${key}`,
    read,
    follow,
  });

  let ready: Promise<void> | null = null;
  const prepare = () => {
    if (options.setup === false) return Promise.resolve();
    ready ??= ensureSchema(pool, schema).catch((err) => {
      ready = null;
      throw storeError(err, `postgres store: preparing schema ${schema}`);
    });
    return ready;
  };
  const query = async (text: string, values: unknown[], what: string) => {
    kit.assertOpen(what);
    await prepare();
    try {
      return await pool.query(text, values);
    } catch (err) {
      throw storeError(err, `postgres store: ${what}`);
    }
  };

  async function read(): Promise<QuiesceState> {
    const r = await query(`SELECT version, payload FROM ${s}.state WHERE key = $1`, [key], 'read');
    const row = r.rows[0];
    return row ? kit.decode(row.payload, row.version) : kit.missing();
  }

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
  const stateFeed = {
    notification(payload: string) {
      let notice: Notice;
      try {
        notice = JSON.parse(payload) as Notice;
      } catch {
        return;
      }
      if (notice.key !== key || notice.kind !== 'state') return;
      // A state too big for a NOTIFY payload is announced by version only: read it.
      kit.stateNotice(notice.state == null ? undefined : () => kit.decode(notice.state, notice.version));
    },
    listening: (reconnected: boolean) => kit.feedUp('state', reconnected),
    lost(error: Error) {
      kit.feedDown('state');
      kit.reportError(error);
    },
  };
  const registryFeed = {
    notification(payload: string) {
      if (payload === key) kit.registryNotice();
    },
    listening: () => kit.feedUp('registry'),
    lost: () => kit.feedDown('registry'),
  };
  let stopState: (() => Promise<void>) | null = null;
  // The registry channel is listened to only while a controller waits for acknowledgements.
  let stopRegistry: (() => Promise<void>) | null = null;
  function follow(wants: StoreKitWants) {
    if (wants.state && !stopState) stopState = listener.listen(channel, stateFeed);
    if (!wants.state && stopState) {
      kit.feedDown('state');
      void stopState();
      stopState = null;
    }
    if (wants.registry && !stopRegistry) stopRegistry = listener.listen(registryChannel, registryFeed);
    if (!wants.registry && stopRegistry) {
      kit.feedDown('registry');
      void stopRegistry();
      stopRegistry = null;
    }
  }

  // An engine heartbeats on a timer and acknowledges on applied states, and pool connections commit
  // in any order: a record built earlier must not take back an acknowledgement. (Not ordered by
  // last_seen: a clock stepping back would silence the instance. A stale record with the same version
  // can only report more in-flight writes, never fewer: it errs on the safe side.)
  const UPSERT = `WITH up AS (
      INSERT INTO ${s}.instances AS t (key, id, acked_version, in_flight, last_seen, record)
      VALUES ($1, $2, $3, $4, $5, $6)
      ON CONFLICT (key, id) DO UPDATE SET acked_version = EXCLUDED.acked_version,
        in_flight = EXCLUDED.in_flight, last_seen = EXCLUDED.last_seen, record = EXCLUDED.record
      WHERE t.acked_version <= EXCLUDED.acked_version
      RETURNING 1)`;
  const upsertValues = (r: InstanceRecord) => [
    key,
    r.id,
    r.ackedVersion,
    r.inFlight,
    r.lastSeen,
    JSON.stringify(r),
  ];

  let lastPrune = 0;
  const registry: PostgresStore['registry'] = {
    async upsert(record, upsertOptions) {
      const checked = parseInstanceRecord(record, 'registry.upsert');
      // One statement: the upsert, and (when asked) the announcement on the registry channel, which
      // only a controller confirming a freeze or a thaw listens to.
      await query(
        `${UPSERT} SELECT pg_notify($7, $1) FROM up WHERE $8::boolean`,
        [...upsertValues(checked), registryChannel, upsertOptions?.announce === true],
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
      return r.rows.flatMap((row) => kit.readRecord(row.record, 'registry record') ?? []);
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
    subscribe: (fn) => kit.subscribeRegistry(fn),
    get listening() {
      return kit.listening.registry;
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
        `${UPSERT} SELECT version, payload, (SELECT count(*) FROM up) AS renewed FROM ${s}.state WHERE key = $1`,
        upsertValues(checked),
        'heartbeat',
      );
      const row = r.rows[0];
      // No state yet: the upsert ran all the same (a data-modifying WITH always does).
      return row ? kit.decode(row.payload, row.version) : kit.missing();
    },
    get listening() {
      return kit.listening.state;
    },
    received: kit.received,
    read,
    async compareAndSet(expectedVersion, next): Promise<CompareAndSetResult> {
      const { state, payload } = kit.prepareWrite(expectedVersion, next);
      // Only a handle that never saw a state may create it: one that did would resurrect version 1.
      const r =
        expectedVersion === 0 && kit.highest === 0
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
      if (r.rowCount === 1) return { ok: true, state: kit.seen(state) };
      return { ok: false, current: await read() };
    },
    subscribe: (fn, onError) => kit.subscribe(fn, onError),
    async close() {
      if (!kit.close()) return;
      await Promise.all([stopState?.(), stopRegistry?.()]);
      stopState = null;
      stopRegistry = null;
      if (connection.owned) await pool.end().catch(() => {});
    },
  };
}
