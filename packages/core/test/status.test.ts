import { describe, expect, it } from 'vitest';
import { createManualClock } from '../src/clock.js';
import { createQuiesce } from '../src/engine.js';
import { createMemoryStore } from '../src/memoryStore.js';
import type { StateStore } from '../src/store.js';

describe('status(): one instance record', () => {
  it('an instance outside any registry shows the record its heartbeat would publish', async () => {
    const clock = createManualClock();
    const store = createMemoryStore();
    // Same store, seen without its registry (as an env store would be).
    const bareStore: StateStore = {
      kind: store.kind,
      writable: store.writable,
      read: () => store.read(),
      compareAndSet: (v, s) => store.compareAndSet(v, s),
      subscribe: (l, e) => store.subscribe(l, e),
      close: async () => {},
    };
    const a = createQuiesce({ store, clock, instanceId: 'a' });
    const b = createQuiesce({ store: bareStore, clock, instanceId: 'b' });
    for (const e of [a, b]) e.handle('note', async () => {});
    await Promise.all([a.start(), b.start()]);
    await clock.advance(1500);
    const published = (await store.registry!.list()).find((r) => r.id === 'a')!;
    expect(published).toMatchObject({ replays: true, ackedVersion: 0, inFlight: 0 });
    const self = (await b.status()).instances.find((i) => i.self)!;
    expect(self).toMatchObject({ id: 'b', replays: true, live: true, leaseUntil: clock.now() + 5000 });
    expect(Object.keys(self).sort()).toEqual([...Object.keys(published), 'live', 'self'].sort());
    await Promise.all([a.close(), b.close()]);
  });
});
