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
