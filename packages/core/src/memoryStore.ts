import type { CompareAndSetResult, InstanceRecord, InstanceRegistry, StateStore } from './store.js';
import { createStoreKit } from './storeKit.js';
import { INITIAL_STATE, type QuiesceState } from './window.js';

/**
 * State in process memory. Several engines in one process may share one memory store (and its
 * registry), which is how single-process tests exercise acknowledgements.
 */
export function createMemoryStore(initial: QuiesceState = INITIAL_STATE): StateStore {
  let state = structuredClone(initial);
  const kit = createStoreKit({ name: 'memory store' });
  const instances = new Map<string, InstanceRecord>();
  const registry: InstanceRegistry = {
    async upsert(record, options) {
      // A heartbeat built before a newer one (it raced it) is stale as a whole: ignore it.
      const known = instances.get(record.id);
      if (known && known.ackedVersion > record.ackedVersion) return;
      instances.set(record.id, structuredClone(record));
      // Only what a controller waits for is announced (acknowledgements, a finished backfill).
      if (options?.announce) queueMicrotask(kit.registryChanged);
    },
    async list() {
      return [...instances.values()].map((r) => structuredClone(r));
    },
    async get(id) {
      const r = instances.get(id);
      return r ? structuredClone(r) : null;
    },
    async remove(id, options) {
      const known = instances.get(id);
      if (!known || (options?.ifLastSeen !== undefined && known.lastSeen !== options.ifLastSeen)) return;
      instances.delete(id);
      queueMicrotask(kit.registryChanged);
    },
    subscribe: (listener) => kit.subscribeRegistry(listener),
    get listening() {
      return kit.listening.registry;
    },
  };
  return {
    kind: 'memory',
    writable: true,
    registry,
    async read() {
      return structuredClone(state);
    },
    async compareAndSet(expectedVersion, next): Promise<CompareAndSetResult> {
      if (state.version !== expectedVersion) return { ok: false, current: structuredClone(state) };
      const written = structuredClone(next);
      state = written;
      // Deliver asynchronously, like a real store's notification would arrive.
      queueMicrotask(() => kit.deliver(written));
      return { ok: true, state: structuredClone(state) };
    },
    subscribe: (listener) => kit.subscribe(listener),
    get listening() {
      return kit.listening.state;
    },
    async close() {
      kit.close();
    },
  };
}
