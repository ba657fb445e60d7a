import {
  type CompareAndSetResult,
  type ConnectedStore,
  createStoreKit,
  type InstanceRecord,
  parseInstanceRecord,
  QuiesceError,
  type QuiesceState,
  reconnectDelay,
  type StoreFeed,
  type StoreKitWants,
} from '@quiesce/core';
import { Redis } from 'ioredis';

/** Where the store connects: an app's ioredis client, or a URL (then the store owns its clients). */
export type RedisConnectionOptions =
  | {
      /** An existing ioredis client; never quit by the store (a duplicate is made for pub/sub). */
      client: Redis;
      url?: never;
    }
  | {
      /** A `redis://` URL; the store then owns its clients and quits them on `close()`. */
      url: string;
      client?: never;
    };

export interface RedisReconnectOptions {
  /** First delay before reconnecting. @default 50 */
  initialDelayMs?: number;
  /** Cap of the exponential backoff. @default 5000 */
  maxDelayMs?: number;
  /**
   * How often the pub/sub connection is checked (`PING`); a check unanswered within this time
   * reconnects it. A half-open connection (a partition, no FIN, no RST) would otherwise stay silent
   * for hours. 0 disables. @default 10000
   */
  pingMs?: number;
}

export type RedisStoreOptions = RedisConnectionOptions & {
  /** Prefix of the keys and channels (`<prefix>state`, `<prefix>instances`). @default 'quiesce:' */
  prefix?: string;
  /** Backoff of the clients the store owns (and of the pub/sub connection). */
  reconnect?: RedisReconnectOptions;
  /** A command that gets no answer within this time fails (clients the store owns). @default 2000 */
  commandTimeoutMs?: number;
  /** Registry records silent for longer are deleted by `registry.list()`. @default 3600000 (1 h) */
  pruneInstancesAfterMs?: number;
};

export interface RedisStore extends ConnectedStore {
  readonly kind: 'redis';
  /** Key holding the state (a hash with `version` and `payload`). */
  readonly stateKey: string;
}

// Compare-and-set and announce in one atomic step: no other command runs in between. ARGV[5] = '1'
// refuses to create a missing state (the caller has seen one: it was deleted or evicted).
const CAS = `
local cur = redis.call('HGET', KEYS[1], 'version')
if not cur and ARGV[5] == '1' then return {0} end
local v = 0
if cur then v = tonumber(cur) end
if v ~= tonumber(ARGV[1]) then
  return {0, redis.call('HGET', KEYS[1], 'payload'), cur}
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'payload', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[3])
return {1}
`;

// A record that would take back an acknowledgement (built earlier, arriving later) is ignored; see
// the PostgreSQL registry for why not by lastSeen. Announced on the registry channel (which only a
// controller confirming a freeze or a thaw subscribes to) only when the caller asks (ARGV[3] = '1').
const UPSERT = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local ok, rec = pcall(cjson.decode, old)
  if ok and type(rec) == 'table' and type(rec.ackedVersion) == 'number' then
    if rec.ackedVersion > tonumber(ARGV[5]) then return 0 end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '1' then redis.call('PUBLISH', ARGV[4], ARGV[1]) end
return 1
`;

// Drop a record, only if it is still the one judged expired (ARGV[3] = its lastSeen, or '' for any).
const REMOVE = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
if ARGV[3] ~= '' then
  local ok, rec = pcall(cjson.decode, old)
  if ok and type(rec) == 'table' and tostring(rec.lastSeen) ~= ARGV[3] then
    if not (type(rec.lastSeen) == 'number' and rec.lastSeen == tonumber(ARGV[3])) then return 0 end
  end
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
`;

function storeError(err: unknown, what: string): Error {
  if (err instanceof QuiesceError) return err;
  const e = err as Error;
  // A ReplyError is Redis answering (a script or type error); anything else is the connection.
  if (e?.name === 'ReplyError') return e;
  return new QuiesceError('STORE_UNAVAILABLE', `redis store: ${what}: ${e?.message ?? String(err)}`, {
    cause: err,
  });
}

/**
 * The state in a Redis hash, compare-and-set by version in a Lua script that also PUBLISHes the new
 * state, received on a dedicated subscriber connection that re-subscribes and catches up by itself
 * after it is dropped (`CLIENT KILL`, a restart). The engine's periodic `read()` is the safety net.
 */
export function createRedisStore(options: RedisStoreOptions): RedisStore {
  if (options === null || typeof options !== 'object') {
    throw new QuiesceError('INVALID_INPUT', 'redis store: options are required', { field: 'options' });
  }
  if (options.client && options.url) {
    throw new QuiesceError('INVALID_INPUT', 'redis store: give either client or url, not both', {
      field: 'url',
    });
  }
  if (!options.client && (typeof options.url !== 'string' || options.url.length === 0)) {
    throw new QuiesceError('INVALID_INPUT', 'redis store: client or url is required', { field: 'url' });
  }
  if (options.client && typeof options.client.duplicate !== 'function') {
    throw new QuiesceError('INVALID_INPUT', 'redis store: client must be an ioredis client', {
      field: 'client',
    });
  }
  const prefix = options.prefix ?? 'quiesce:';
  if (typeof prefix !== 'string') {
    throw new QuiesceError('INVALID_INPUT', 'redis store: prefix must be a string', { field: 'prefix' });
  }
  const initialMs = options.reconnect?.initialDelayMs ?? 50;
  const maxMs = options.reconnect?.maxDelayMs ?? 5000;
  const pruneAfterMs = options.pruneInstancesAfterMs ?? 3_600_000;
  const pingMs = options.reconnect?.pingMs ?? 10_000;
  const retryStrategy = (times: number) => reconnectDelay(times - 1, initialMs, maxMs);
  const owned = !options.client;
  // Named after the prefix, so CLIENT LIST tells which app a connection serves.
  const connectionName = (role: string) => `quiesce-${role}:${prefix.replace(/[^A-Za-z0-9:_.-]/g, '_')}`;
  const client =
    options.client ??
    new Redis(options.url!, {
      retryStrategy,
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs ?? 2000,
      connectionName: connectionName('store'),
    });
  // Without a listener an 'error' event would crash the process; the failures surface through commands.
  if (owned) client.on('error', () => {});

  const stateKey = `${prefix}state`;
  const instancesKey = `${prefix}instances`;
  const stateChannel = `${prefix}state`;
  const instancesChannel = `${prefix}instances`;
  const kit = createStoreKit({ name: 'redis store', location: `key ${stateKey}`, read, follow });

  const run = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    kit.assertOpen(what);
    try {
      return await fn();
    } catch (err) {
      // A timed-out command on a connection that looks fine: it is half-open; start a fresh one.
      if (owned && /Command timed out/.test((err as Error)?.message ?? '') && client.status === 'ready') {
        client.disconnect(true);
      }
      throw storeError(err, what);
    }
  };

  async function read(): Promise<QuiesceState> {
    const [version, payload] = await run('read', () => client.hmget(stateKey, 'version', 'payload'));
    if (version == null && payload == null) return kit.missing();
    return kit.decode(payload ?? '', version);
  }
  const reportError = (err: Error, what: string) => kit.reportError(storeError(err, what));

  let subscriber: Redis | null = null;
  /** The subscriber's channels are in place on its current connection (its loss is then reported). */
  let subscribed = false;
  /** Channels subscribed, or being subscribed, on the subscriber's current connection. */
  const current = new Set<string>();
  const feedOf = (channel: string): StoreFeed => (channel === stateChannel ? 'state' : 'registry');
  /** Bring the subscriber's channels in line with what is wanted (on a ready connection). */
  const sync = async (sub: Redis, reconnected = false) => {
    const { state, registry } = kit.wants;
    const want = new Set([...(state ? [stateChannel] : []), ...(registry ? [instancesChannel] : [])]);
    const add = [...want].filter((c) => !current.has(c));
    const drop = [...current].filter((c) => !want.has(c));
    for (const c of add) current.add(c);
    for (const c of drop) {
      current.delete(c);
      kit.feedDown(feedOf(c));
    }
    if (add.length) await sub.subscribe(...add);
    if (drop.length) await sub.unsubscribe(...drop);
    // Confirmed by the server: a PUBLISH from now on reaches this connection.
    if (subscriber === sub) for (const c of add) if (current.has(c)) kit.feedUp(feedOf(c), reconnected);
  };
  let pinger: NodeJS.Timeout | null = null;
  function startListening() {
    if (subscriber || kit.closed) return;
    const sub = client.duplicate({
      retryStrategy,
      // Re-subscribed by hand on 'ready', so the catch-up read happens only once it is in place.
      autoResubscribe: false,
      maxRetriesPerRequest: null,
      connectionName: connectionName('subscriber'),
    });
    subscriber = sub;
    let readyOnce = false;
    sub.on('error', (err: Error) => {
      if (subscriber === sub) reportError(err, 'pub/sub connection');
    });
    sub.on('close', () => {
      if (subscriber !== sub) return;
      current.clear();
      kit.feedDown();
      if (!subscribed) return;
      subscribed = false;
      kit.reportError(
        new QuiesceError('STORE_UNAVAILABLE', 'redis store: pub/sub connection lost; reconnecting'),
      );
    });
    sub.on('ready', () => {
      if (subscriber !== sub) return;
      current.clear();
      // After a reconnection, whatever changed while the connection was down was not announced to us.
      sync(sub, readyOnce).then(
        () => {
          if (subscriber !== sub) return;
          subscribed = true;
          readyOnce = true;
        },
        (err: Error) => reportError(err, 'subscribe'),
      );
    });
    if (pingMs > 0) {
      let busy = false;
      pinger = setInterval(() => {
        if (busy || !subscribed || subscriber !== sub) return;
        busy = true;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer to PING within ${pingMs} ms`)), pingMs);
        });
        Promise.race([sub.ping(), timeout])
          .catch((err: Error) => {
            if (subscriber !== sub) return;
            kit.feedDown();
            reportError(err, 'pub/sub connection');
            sub.disconnect(true);
          })
          .finally(() => {
            clearTimeout(timer);
            busy = false;
          });
      }, pingMs);
      pinger.unref();
    }
    sub.on('message', (channel: string, message: string) => {
      if (channel === instancesChannel) kit.registryNotice();
      else if (channel === stateChannel) kit.stateNotice(() => kit.decode(message));
    });
  }
  /** Subscribers came or went: open the pub/sub connection, adjust its channels, or close it. */
  function follow(wants: StoreKitWants) {
    if (wants.state || wants.registry) {
      startListening();
      const sub = subscriber;
      // Not ready yet: 'ready' subscribes to whatever is wanted by then.
      if (sub?.status === 'ready') sync(sub).catch((err: Error) => reportError(err, 'subscribe'));
    } else stopListening();
  }
  function stopListening() {
    if (!subscriber) return;
    const sub = subscriber;
    subscriber = null;
    subscribed = false;
    current.clear();
    kit.feedDown();
    if (pinger) clearInterval(pinger);
    pinger = null;
    sub.disconnect();
  }

  let lastPrune = 0;
  const registry: RedisStore['registry'] = {
    async upsert(record, upsertOptions) {
      const r = parseInstanceRecord(record, 'registry.upsert');
      await run('registry.upsert', () =>
        client.eval(
          UPSERT,
          1,
          instancesKey,
          r.id,
          JSON.stringify(r),
          upsertOptions?.announce ? '1' : '0',
          instancesChannel,
          String(r.ackedVersion),
        ),
      );
    },
    async get(instanceId) {
      const raw = await run('registry.get', () => client.hget(instancesKey, instanceId));
      return raw == null ? null : kit.readRecord(raw, `registry record ${instanceId}`);
    },
    async list() {
      const all = await run('registry.list', () => client.hgetall(instancesKey));
      const records: InstanceRecord[] = [];
      const stale: string[] = [];
      const now = Date.now();
      for (const [id, raw] of Object.entries(all)) {
        const rec = kit.readRecord(raw, `registry record ${id}`);
        if (rec && pruneAfterMs > 0 && now - rec.lastSeen > pruneAfterMs) stale.push(id);
        else if (rec) records.push(rec);
      }
      if (stale.length && now - lastPrune > 60_000) {
        lastPrune = now;
        await run('registry.list', () => client.hdel(instancesKey, ...stale));
      }
      return records.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },
    async remove(instanceId, removeOptions) {
      await run('registry.remove', () =>
        client.eval(
          REMOVE,
          1,
          instancesKey,
          instanceId,
          instancesChannel,
          String(removeOptions?.ifLastSeen ?? ''),
        ),
      );
    },
    subscribe: (fn) => kit.subscribeRegistry(fn),
    get listening() {
      return kit.listening.registry;
    },
  };

  return {
    kind: 'redis',
    writable: true,
    stateKey,
    registry,
    get listening() {
      return kit.listening.state;
    },
    received: kit.received,
    read,
    async compareAndSet(expectedVersion, next): Promise<CompareAndSetResult> {
      const { state, payload } = kit.prepareWrite(expectedVersion, next);
      const r = (await run('compareAndSet', () =>
        client.eval(
          CAS,
          1,
          stateKey,
          String(expectedVersion),
          String(state.version),
          payload,
          stateChannel,
          // A handle that saw a state must not recreate it from scratch.
          kit.highest > 0 ? '1' : '0',
        ),
      )) as [number, string | null, string | null];
      if (r[0] === 1) return { ok: true, state: kit.seen(state) };
      if (r[1] == null && r[2] == null) return { ok: false, current: kit.missing() };
      return { ok: false, current: kit.decode(r[1] ?? '', r[2]) };
    },
    subscribe: (fn, onError) => kit.subscribe(fn, onError),
    async close() {
      if (!kit.close()) return;
      stopListening();
      if (owned) await client.quit().catch(() => client.disconnect());
    },
  };
}
