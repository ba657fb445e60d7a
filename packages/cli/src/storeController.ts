import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createFileStore,
  createQuiesce,
  isQuiesceError,
  type QuiesceEngine,
  type StateStore,
} from '@quiesce/core';
import { CliError, EXIT, exitForCode } from './cliError.js';
import type { Controller } from './controller.js';

export interface StoreControllerOptions {
  /** `postgres://…`, `postgresql://…`, `redis://…`, `rediss://…`, `file:./state.json`. */
  store: string;
  /** PostgreSQL schema of the store. @default 'quiesce' */
  schema?: string;
  /** Row key of the PostgreSQL store. @default 'default' */
  key?: string;
  /** Key prefix of the Redis store. @default 'quiesce:' */
  prefix?: string;
  /** Freezing waits this long for acknowledgements and in-flight writes. @default 30000 */
  drainDeadlineMs?: number;
  /** Soak after `end`, before the closure notice and backfill. @default 10000 */
  soakMs?: number;
  /** An app instance silent for longer is dropped and named. @default 5000 */
  instanceTimeoutMs?: number;
  /**
   * Start a new store where none exists yet. Without it, a store URL whose file, schema, key or
   * Redis keys do not exist is refused (exit 9): a typo must not freeze nobody. @default false
   */
  create?: boolean;
}

type StoreKind = 'postgres' | 'redis' | 'file';

/** Validate `--store` and say which backend it names. */
export function parseStoreUrl(value: string, flag = '--store'): { kind: StoreKind; location: string } {
  const v = value.trim();
  if (/^file:/i.test(v)) {
    const path = /^file:\/\//i.test(v) ? fileURLToPath(v) : v.slice('file:'.length);
    if (!path)
      throw new CliError(EXIT.usage, `${flag}: file: needs a path, e.g. file:./state.json`, { field: flag });
    return { kind: 'file', location: resolve(path) };
  }
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new CliError(
      EXIT.usage,
      `${flag}: "${value}" is not a store URL; use postgres://…, redis://… or file:./state.json`,
      { field: flag },
    );
  }
  if (url.protocol === 'postgres:' || url.protocol === 'postgresql:')
    return { kind: 'postgres', location: v };
  if (url.protocol === 'redis:' || url.protocol === 'rediss:') return { kind: 'redis', location: v };
  throw new CliError(
    EXIT.usage,
    `${flag}: unsupported scheme ${url.protocol}; use postgres://…, redis://… or file:./state.json` +
      (url.protocol.startsWith('http') ? ' (an app? use --url)' : ''),
    { field: flag },
  );
}

async function optionalImport<T>(name: string, kind: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' ||
      (err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND'
    ) {
      throw new CliError(EXIT.usage, `--store ${kind}: install ${name} next to @quiesce/cli to use it`, {
        field: '--store',
        cause: err,
      });
    }
    throw err;
  }
}

const redact = (url: string) => url.replace(/\/\/([^@/]*)@/, '//***@');

async function openStore(o: StoreControllerOptions): Promise<{ store: StateStore; target: string }> {
  const { kind, location } = parseStoreUrl(o.store);
  if (kind === 'file')
    return { store: createFileStore({ path: location }), target: `file store ${location}` };
  if (kind === 'postgres') {
    const pg = await optionalImport<typeof import('@quiesce/postgres')>('@quiesce/postgres', 'postgres://');
    return {
      store: pg.createPostgresStore({
        connectionString: location,
        ...(o.schema ? { schema: o.schema } : {}),
        ...(o.key ? { key: o.key } : {}),
      }),
      target: `postgres store ${redact(location)}${o.schema ? ` (schema ${o.schema})` : ''}`,
    };
  }
  const redis = await optionalImport<typeof import('@quiesce/redis')>('@quiesce/redis', 'redis://');
  return {
    store: redis.createRedisStore({
      url: location,
      ...(o.prefix ? { prefix: o.prefix } : {}),
      // Fail fast instead of retrying forever against a server that is not there.
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    }),
    target: `redis store ${redact(location)}${o.prefix ? ` (prefix ${o.prefix})` : ''}`,
  };
}

const missing = (what: string, flag = '--store') =>
  new CliError(
    EXIT.storeMissing,
    `${what}; check ${flag}${flag === '--store' ? '' : ' and --store'}, or pass --create to start a new store there`,
    { field: flag },
  );

/**
 * Refuse a store that does not exist (exit 9) unless `--create`: a file with neither state nor
 * instance registry, a PostgreSQL schema without the state table or without the key (no state row,
 * no registered instance), Redis keys absent under the prefix. Looked up without creating anything.
 */
async function assertStoreExists(o: StoreControllerOptions): Promise<void> {
  if (o.create) return;
  const { kind, location } = parseStoreUrl(o.store);
  if (kind === 'file') {
    if (!existsSync(location) && !existsSync(`${location}.instances.json`))
      throw missing(`the file store ${location} does not exist (no state file, no instance registry)`);
    return;
  }
  if (kind === 'postgres') {
    const pg = await optionalImport<typeof import('pg')>('pg', 'postgres://');
    const Client =
      (pg as { Client?: typeof import('pg').Client; default?: { Client: typeof import('pg').Client } })
        .Client ?? (pg as { default: { Client: typeof import('pg').Client } }).default.Client;
    const client = new Client({ connectionString: location, connectionTimeoutMillis: 10_000 });
    const schema = o.schema ?? 'quiesce';
    const key = o.key ?? 'default';
    try {
      await client.connect();
      const table = await client.query('SELECT to_regclass($1) AS t', [
        `"${schema.replaceAll('"', '""')}".state`,
      ]);
      if (!table.rows[0]?.t) {
        throw missing(
          `the postgres store has no schema "${schema}" with a quiesce state table`,
          o.schema ? '--schema' : '--store',
        );
      }
      const s = `"${schema.replaceAll('"', '""')}"`;
      const found = await client.query(
        `SELECT (SELECT count(*) FROM ${s}.state WHERE key = $1)::int AS states,
                (SELECT count(*) FROM ${s}.instances WHERE key = $1)::int AS instances`,
        [key],
      );
      const row = found.rows[0] as { states: number; instances: number } | undefined;
      if (!row || (row.states === 0 && row.instances === 0)) {
        const keys = await client.query(
          `SELECT key FROM ${s}.state UNION SELECT key FROM ${s}.instances ORDER BY 1 LIMIT 10`,
        );
        const known = keys.rows.map((r: { key: string }) => r.key);
        throw missing(
          `the postgres store (schema "${schema}") has no state and no instance under key "${key}"` +
            (known.length ? ` (keys there: ${known.join(', ')})` : ''),
          o.key ? '--key' : '--store',
        );
      }
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(
        EXIT.unreachable,
        `cannot reach the postgres store ${redact(location)}: ${(err as Error)?.message ?? String(err)}`,
        {
          cause: err,
        },
      );
    } finally {
      await client.end().catch(() => {});
    }
    return;
  }
  type RedisCtor = new (url: string, o: object) => RedisLike;
  const mod = await optionalImport<{ Redis?: RedisCtor; default?: RedisCtor }>('ioredis', 'redis://');
  const Redis = (mod.Redis ?? mod.default)!;
  const prefix = o.prefix ?? 'quiesce:';
  const redis = new Redis(location, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const n = await redis.exists(`${prefix}state`, `${prefix}instances`);
    if (n === 0) {
      throw missing(
        `the redis store has no keys under the prefix "${prefix}"`,
        o.prefix ? '--prefix' : '--store',
      );
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(
      EXIT.unreachable,
      `cannot reach the redis store ${redact(location)}: ${(err as Error)?.message ?? String(err)}`,
      {
        cause: err,
      },
    );
  } finally {
    redis.disconnect();
  }
}

interface RedisLike {
  on(event: 'error', fn: (e: unknown) => void): unknown;
  connect(): Promise<unknown>;
  exists(...keys: string[]): Promise<number>;
  disconnect(): void;
}

function translate(err: unknown, target: string): never {
  if (err instanceof CliError) throw err;
  if (isQuiesceError(err)) {
    const code = exitForCode(err.code);
    throw new CliError(
      code,
      code === EXIT.unreachable ? `cannot reach the ${target}: ${err.message}` : err.message,
      {
        field: err.field,
        cause: err,
      },
    );
  }
  throw new CliError(EXIT.unreachable, `${target}: ${(err as Error)?.message ?? String(err)}`, {
    cause: err,
  });
}

const needsApp = (what: string, target: string) =>
  new CliError(
    EXIT.usage,
    `${what} lives in the app's processes, not in the ${target}; ask the app: --url http://host/quiesce --token …`,
    { field: '--store' },
  );

/**
 * A non-participant engine on the store: it changes the state, confirms the freeze (counting the
 * app instances in the store's registry) and runs the end-of-window checklist, but serves nothing.
 */
export async function createStoreController(o: StoreControllerOptions): Promise<Controller> {
  await assertStoreExists(o);
  const { store, target } = await openStore(o);
  // Prove the store answers before an engine starts: a silent fallback would show a wrong state.
  try {
    await store.read();
  } catch (err) {
    await store.close().catch(() => {});
    translate(err, target);
  }
  const engine: QuiesceEngine = createQuiesce({
    store,
    participant: false,
    instanceId: `quiesce-cli:${process.pid}`,
    ...(o.drainDeadlineMs !== undefined ? { drainDeadlineMs: o.drainDeadlineMs } : {}),
    ...(o.soakMs !== undefined ? { soakMs: o.soakMs } : {}),
    ...(o.instanceTimeoutMs !== undefined ? { instanceTimeoutMs: o.instanceTimeoutMs } : {}),
  });
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      translate(err, target);
    }
  };
  await guard(() => engine.start());
  return {
    kind: 'store',
    target,
    soakMs: o.soakMs ?? 10_000,
    begin: (input) =>
      guard(() => {
        const { startsAt, ...rest } = input;
        return startsAt ? engine.schedule({ ...rest, startsAt }) : engine.begin(rest);
      }),
    extend: (input) => guard(() => engine.extend(input)),
    end: (input) => guard(() => engine.end(input)),
    async status() {
      const s = await guard(() => engine.status());
      // This process's own queue and counters are empty by construction: the app holds the real ones.
      return { ...s, queue: null, inFlight: { count: 0, oldest: null } };
    },
    async inventory() {
      throw needsApp('the inventory of write surfaces', target);
    },
    async audit() {
      throw needsApp('the audit log', target);
    },
    async intents() {
      throw needsApp('the intent queue', target);
    },
    async intent() {
      throw needsApp('the intent queue', target);
    },
    async close() {
      await engine.close();
      await store.close().catch(() => {});
    },
  };
}
