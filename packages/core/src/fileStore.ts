import { type FSWatcher, unwatchFile, watch, watchFile } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { QuiesceError } from './errors.js';
import {
  type CompareAndSetResult,
  type InstanceRecord,
  type InstanceRegistry,
  instanceRecordSchema,
  type StateStore,
} from './store.js';
import { createStoreKit } from './storeKit.js';
import { INITIAL_STATE, parseState, type QuiesceState } from './window.js';

export interface FileStoreOptions {
  /** Path of the JSON state file. */
  path: string;
  /** Poll interval backing up fs.watch (which can miss events on some filesystems). @default 1000 */
  pollMs?: number;
  /** A lock older than this is considered abandoned by a crashed writer. @default 10000 */
  staleLockMs?: number;
}

export interface FileStore extends StateStore {
  /** The last error reading the file (a malformed or half-written file), or null. */
  readonly lastError: Error | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * State in a JSON file: written atomically (temp file + rename) under a lock file, watched for
 * changes by other processes. A malformed or half-written file keeps the last good state and
 * reports the error to subscribers.
 */
export function createFileStore(options: FileStoreOptions | string): FileStore {
  const o = typeof options === 'string' ? { path: options } : options;
  if (!o.path) throw new QuiesceError('INVALID_INPUT', 'file store: path is required', { field: 'path' });
  const path = resolve(o.path);
  const pollMs = o.pollMs ?? 1000;
  const staleLockMs = o.staleLockMs ?? 10_000;
  let lastGood: QuiesceState | null = null;
  let lastError: Error | null = null;
  let lastRaw: string | null = null;
  // Watched from the first subscriber on (until close: other processes may write at any time).
  const kit = createStoreKit({
    name: `file store ${path}`,
    follow(wants) {
      if (!wants.state) return;
      startWatching();
      kit.feedUp('state');
    },
  });
  let watcher: FSWatcher | null = null;
  let polling = false;

  async function load(): Promise<QuiesceState> {
    let raw: string;
    try {
      raw = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        lastError = null;
        return lastGood ?? INITIAL_STATE;
      }
      throw err;
    }
    if (raw === lastRaw && lastGood) return lastGood;
    try {
      const state = parseState(JSON.parse(raw));
      lastGood = state;
      lastRaw = raw;
      lastError = null;
      return state;
    } catch (cause) {
      const error = new QuiesceError(
        'INVALID_INPUT',
        `file store ${path}: malformed state file (${cause instanceof Error ? cause.message : String(cause)}); keeping the last good state`,
        { cause },
      );
      lastError = error;
      kit.reportError(error);
      if (lastGood) return lastGood;
      throw error;
    }
  }

  async function check() {
    if (kit.closed) return;
    try {
      const before = lastGood?.version ?? 0;
      const s = await load();
      if (s.version > before) kit.deliver(s);
    } catch (err) {
      kit.reportError(err as Error);
    }
  }

  async function lock(lockPath = `${path}.lock`): Promise<() => Promise<void>> {
    await mkdir(dirname(path), { recursive: true });
    const deadline = Date.now() + staleLockMs * 2;
    for (;;) {
      try {
        const h = await open(lockPath, 'wx');
        await h.writeFile(String(process.pid));
        await h.close();
        return () => rm(lockPath, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const s = await stat(lockPath).catch(() => null);
        if (s && Date.now() - s.mtimeMs > staleLockMs) await rm(lockPath, { force: true });
        if (Date.now() > deadline) {
          throw new QuiesceError(
            'STORE_UNAVAILABLE',
            `file store ${path}: could not take the lock ${lockPath}`,
          );
        }
        await sleep(5 + Math.random() * 20);
      }
    }
  }

  function startWatching() {
    if (watcher || polling) return;
    try {
      // Watch the directory: an atomic rename replaces the file's inode.
      watcher = watch(dirname(path), (_event, name) => {
        if (!name || name.toString() === basename(path)) void check();
      });
      watcher.unref?.();
    } catch {
      watcher = null;
    }
    watchFile(path, { interval: pollMs, persistent: false }, () => void check());
    polling = true;
  }

  // The instance registry lives beside the state, in `<path>.instances.json`, under its own lock.
  const registryPath = `${path}.instances.json`;
  async function readInstances(): Promise<Record<string, InstanceRecord>> {
    try {
      const raw = JSON.parse(await readFile(registryPath, 'utf8')) as Record<string, unknown>;
      const out: Record<string, InstanceRecord> = {};
      for (const [id, r] of Object.entries(raw)) {
        const parsed = instanceRecordSchema.safeParse(r);
        if (parsed.success) out[id] = parsed.data;
      }
      return out;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return {};
      throw err;
    }
  }
  async function updateInstances(mutate: (all: Record<string, InstanceRecord>) => void): Promise<void> {
    const release = await lock(`${registryPath}.lock`);
    try {
      const all = await readInstances();
      mutate(all);
      const tmp = `${registryPath}.${process.pid}.${Date.now()}.tmp`;
      await writeFile(tmp, JSON.stringify(all), { mode: 0o600 });
      await rename(tmp, registryPath);
    } finally {
      await release();
    }
  }
  const registry: InstanceRegistry = {
    upsert: (record) =>
      updateInstances((all) => {
        const known = all[record.id];
        // A heartbeat built before a newer one (it raced it) is stale as a whole: ignore it.
        if (known && known.ackedVersion > record.ackedVersion) return;
        all[record.id] = record;
      }),
    list: async () => Object.values(await readInstances()),
    get: async (id) => (await readInstances())[id] ?? null,
    remove: (id, options) =>
      updateInstances((all) => {
        const known = all[id];
        if (!known || (options?.ifLastSeen !== undefined && known.lastSeen !== options.ifLastSeen)) return;
        delete all[id];
      }),
  };

  return {
    kind: 'file',
    registry,
    writable: true,
    get lastError() {
      return lastError;
    },
    read: async () => structuredClone(await load()),
    async compareAndSet(expectedVersion, next): Promise<CompareAndSetResult> {
      const release = await lock();
      try {
        lastRaw = null;
        const current = await load();
        if (lastError) throw lastError;
        if (current.version !== expectedVersion) return { ok: false, current: structuredClone(current) };
        const validated = parseState(next);
        const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
        const raw = `${JSON.stringify(validated, null, 2)}\n`;
        await writeFile(tmp, raw, { mode: 0o600 });
        await rename(tmp, path);
        lastGood = validated;
        lastRaw = raw;
        queueMicrotask(() => kit.deliver(validated));
        return { ok: true, state: structuredClone(validated) };
      } finally {
        await release();
      }
    },
    subscribe: (fn, onError) => kit.subscribe(fn, onError),
    get listening() {
      return kit.listening.state;
    },
    async close() {
      kit.close();
      watcher?.close();
      watcher = null;
      if (polling) unwatchFile(path);
      polling = false;
    },
  };
}
