import type { CompareAndSetResult, InstanceRecord, InstanceRegistry, StateStore } from './store.js';
import { INITIAL_STATE, type QuiesceState } from './window.js';

/**
 * State in process memory. Several engines in one process may share one memory store (and its
 * registry), which is how single-process tests exercise acknowledgements.
 */
export function createMemoryStore(initial: QuiesceState = INITIAL_STATE): StateStore {
  let state = structuredClone(initial);
  const listeners = new Set<(s: QuiesceState) => void>();
  const instances = new Map<string, InstanceRecord>();
  const registryListeners = new Set<() => void>();
  const registry: InstanceRegistry = {
    async upsert(record, options) {
      // A heartbeat built before a newer one (it raced it) is stale as a whole: ignore it.
      const known = instances.get(record.id);
      if (known && known.ackedVersion > record.ackedVersion) return;
      instances.set(record.id, structuredClone(record));
      // Only what a controller waits for is announced (acknowledgements, a finished backfill).
      if (options?.announce) for (const l of registryListeners) queueMicrotask(l);
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
      for (const l of registryListeners) queueMicrotask(l);
    },
    subscribe(listener) {
      registryListeners.add(listener);
      return () => registryListeners.delete(listener);
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
      state = structuredClone(next);
      // Deliver asynchronously, like a real store's notification would arrive.
      for (const l of listeners) {
        const copy = structuredClone(state);
        queueMicrotask(() => l(copy));
      }
      return { ok: true, state: structuredClone(state) };
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      listeners.clear();
      registryListeners.clear();
    },
  };
}
