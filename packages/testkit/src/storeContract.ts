import {
  type ConnectedStore,
  INITIAL_STATE,
  type InstanceRecord,
  isQuiesceError,
  type MaintenanceWindow,
  type QuiesceState,
  type StateStore,
} from '@quiesce/core';
import { afterEach, describe, expect, it } from 'vitest';
import { proxyTo, viaProxy } from '../fixtures/instanceHarness.mjs';
import type { TcpProxy } from './instanceSuite.js';
import { waitFor } from './waitFor.js';

/** One backend (a schema, a key prefix, a file…) the suite can open several handles on. */
export interface StoreContractBackend {
  /**
   * Open a handle on this backend. Handles opened from one backend share the state, as two
   * processes pointing at the same database would. A store that lives in one process may return
   * the same instance each time.
   */
  open(): StateStore | Promise<StateStore>;
  /**
   * Replace the stored payload with `raw` (not valid state) and let the backend announce the
   * change as it would any other (trigger, publish, file write). Omit when the backend cannot hold
   * a corrupt payload (memory).
   */
  corrupt?(raw: string): Promise<void>;
  /**
   * How the suite reaches the server, for a store that holds connections to one. Omit for a store
   * that lives in this process or in a file (memory, file): the connection checks are then reported
   * as skipped, n/a, with the reason.
   */
  connection?: StoreContractConnection;
  /** Drop the backend's data (schema, keys, files). */
  dispose?(): Promise<unknown>;
}

/** What the connection checks need: the server, a handle through the suite's TCP proxy, a way to kill connections. */
export interface StoreContractConnection {
  /** The server's URL (`postgres://…`, `redis://…`); the suite puts a TCP proxy of its own in front of it. */
  url: string;
  /** The port when the URL names none. */
  defaultPort: number;
  /**
   * Open a handle on the backend whose every connection goes to `url` (the server's URL rewritten
   * to the suite's proxy), with short reconnection delays, liveness checks and command timeouts (a
   * few hundred ms), so that a lost or half-open connection is noticed within a test.
   */
  openVia(url: string): ConnectedStore | Promise<ConnectedStore>;
  /**
   * Terminate, on the server, the connections whose client port is in `ports` (as a restart, a
   * failover or an idle timeout would: `pg_terminate_backend`, `CLIENT KILL`); returns how many.
   */
  terminate(ports: number[]): Promise<number>;
}

export interface StoreContractOptions {
  /** How long a change may take to reach another handle's subscriber. @default 3000 */
  propagationTimeoutMs?: number;
  /** vitest timeout of each test. @default 10000 */
  testTimeoutMs?: number;
  /**
   * Check that a registry record with a lower `ackedVersion` (built earlier, arriving later) never
   * overwrites a newer one.
   * Only a registry whose writes are applied in call order (one process, synchronous) may opt out.
   * @default true
   */
  registryRejectsOlderRecords?: boolean;
}

const T0 = Date.UTC(2026, 4, 1, 12, 0, 0);

/** A valid state at `version` with a window carrying every optional member, to check fidelity. */
export function sampleState(version: number, overrides: Partial<MaintenanceWindow> = {}): QuiesceState {
  const at = new Date(T0 + version * 1000).toISOString();
  return {
    mode: 'read-only',
    version,
    updatedAt: at,
    updatedBy: 'contract-suite',
    window: {
      id: `win_contract_${version}`,
      reason: 'contract suite',
      message: 'Writes are paused for the contract suite — «ünïcode» ok',
      startsAt: at,
      endsAt: new Date(T0 + 3_600_000).toISOString(),
      contact: 'ops@example.com',
      rollbackPlan: 'end the window',
      scope: ['http', 'job'],
      openedBy: 'tester',
      phase: 'freezing',
      autoEnd: false,
      freezeVersion: version,
      frozenAt: null,
      endedAt: null,
      closedAt: null,
      stragglers: [
        {
          instanceId: 'i-1',
          inFlight: 2,
          ackedVersion: version - 1,
          reason: 'in-flight',
          oldestOperation: 'POST /orders',
        },
      ],
      notices: { statuspage: { status: 'ok', attempts: 1, updatedAt: at, data: { incidentId: 'inc_1' } } },
      report: { nested: { list: [1, 2, 3], flag: true, nothing: null } },
      ...overrides,
    },
  };
}

function record(id: string, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id,
    host: 'host-a',
    pid: 1234,
    startedAt: new Date(T0).toISOString(),
    lastSeen: Date.now(),
    ackedVersion: 0,
    inFlight: 0,
    ...overrides,
  };
}

/**
 * A subscription that connects asynchronously (LISTEN, pub/sub) is in place once the store (or its
 * registry) says it listens; one without `listening` is in place on `subscribe()`.
 */
async function listening(feed: { readonly listening?: boolean }, what = 'the subscription'): Promise<void> {
  if ('listening' in feed) await waitFor(`${what} in place`, () => feed.listening === true);
}

const storeUnavailable = (e: Error) => isQuiesceError(e) && e.code === 'STORE_UNAVAILABLE';

/**
 * The store contract: every `StateStore` (memory, file, postgres, redis…) must pass it.
 * `createBackend` is called once per test and must return a fresh, empty backend.
 */
export function runStoreContractSuite(
  name: string,
  createBackend: () => StoreContractBackend | Promise<StoreContractBackend>,
  options: StoreContractOptions = {},
): void {
  const propagation = options.propagationTimeoutMs ?? 3000;
  const within = { timeout: propagation };
  const timeout = options.testTimeoutMs ?? 10_000;

  describe(`store contract: ${name}`, () => {
    let backend: StoreContractBackend | null = null;
    const opened = new Set<StateStore>();
    const proxies = new Set<TcpProxy>();

    async function fresh(): Promise<StoreContractBackend> {
      backend = await createBackend();
      return backend;
    }
    async function open(b: StoreContractBackend): Promise<StateStore> {
      const store = await b.open();
      opened.add(store);
      return store;
    }

    afterEach(async () => {
      for (const s of opened) await s.close();
      opened.clear();
      for (const p of proxies) await p.close();
      proxies.clear();
      await backend?.dispose?.();
      backend = null;
    });

    it('an empty store reads the initial state (version 0, read-write, no window)', { timeout }, async () => {
      const store = await open(await fresh());
      const state = await store.read();
      expect(state).toEqual(INITIAL_STATE);
      expect(typeof store.kind).toBe('string');
      expect(store.writable).toBe(true);
    });

    it('compare-and-set from the read version writes; every handle reads it back intact', {
      timeout,
    }, async () => {
      const b = await fresh();
      const a = await open(b);
      const next = sampleState(1);
      const r = await a.compareAndSet(0, next);
      expect(r).toEqual({ ok: true, state: next });
      expect(await a.read()).toEqual(next);
      const other = await open(b);
      expect(await other.read()).toEqual(next);
      const r2 = await other.compareAndSet(
        1,
        sampleState(2, { phase: 'frozen', frozenAt: new Date(T0).toISOString() }),
      );
      expect(r2.ok).toBe(true);
      expect((await a.read()).window?.phase).toBe('frozen');
    });

    it('compare-and-set with a stale version changes nothing and returns the current state', {
      timeout,
    }, async () => {
      const b = await fresh();
      const store = await open(b);
      await store.compareAndSet(0, sampleState(1));
      await store.compareAndSet(1, sampleState(2));
      for (const stale of [0, 1, 3]) {
        const r = await store.compareAndSet(stale, sampleState(stale + 1, { reason: 'stale writer' }));
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.current).toEqual(sampleState(2));
      }
      expect(await store.read()).toEqual(sampleState(2));
    });

    it('concurrent compare-and-sets from one version: exactly one wins', { timeout }, async () => {
      const b = await fresh();
      const handles = [await open(b), await open(b), await open(b)];
      await handles[0]!.compareAndSet(0, sampleState(1));
      const attempts = Array.from({ length: 12 }, (_, i) =>
        handles[i % handles.length]!.compareAndSet(1, sampleState(2, { reason: `writer ${i}` })),
      );
      const results = await Promise.all(attempts);
      const winners = results.filter((r) => r.ok);
      expect(winners).toHaveLength(1);
      const stored = await handles[1]!.read();
      expect(stored.version).toBe(2);
      expect(winners[0]!.ok && winners[0]!.state).toEqual(stored);
      for (const r of results) if (!r.ok) expect(r.current.version).toBe(2);
    });

    it('a subscriber on another handle receives each change; unsubscribe stops delivery', {
      timeout,
    }, async () => {
      const b = await fresh();
      const writer = await open(b);
      const reader = await open(b);
      const seen: QuiesceState[] = [];
      const errors: Error[] = [];
      // `listening` (when the store has it) tells when a subscription is in place, and only then.
      if ('listening' in reader) expect(reader.listening).toBe(false);
      const off = reader.subscribe(
        (s) => seen.push(s),
        (e) => errors.push(e),
      );
      // A second subscriber on the same handle stays: it hears every change the first one would.
      const witness: number[] = [];
      const offWitness = reader.subscribe((s) => witness.push(s.version));
      await listening(reader);
      await writer.compareAndSet(0, sampleState(1));
      await waitFor('version 1 at the subscriber', () => seen.some((s) => s.version === 1), within);
      expect(seen.find((s) => s.version === 1)).toEqual(sampleState(1));
      await writer.compareAndSet(1, sampleState(2));
      await waitFor('version 2 at the subscriber', () => seen.some((s) => s.version === 2), within);
      off();
      await writer.compareAndSet(2, sampleState(3));
      await waitFor('version 3 at the subscriber that stayed', () => witness.includes(3), within);
      expect(seen.some((s) => s.version === 3)).toBe(false);
      expect(errors).toEqual([]);
      if ('listening' in reader) expect(reader.listening).toBe(true);
      offWitness();
      if ('listening' in reader) expect(reader.listening).toBe(false);
    });

    it('the writing handle’s own subscriber hears its change too', { timeout }, async () => {
      const store = await open(await fresh());
      const seen: number[] = [];
      store.subscribe((s) => seen.push(s.version));
      await listening(store);
      await store.compareAndSet(0, sampleState(1));
      await waitFor('own change', () => seen.includes(1), within);
    });

    it('a corrupt payload is reported as INVALID_INPUT naming the store payload, never a crash', {
      timeout,
    }, async (ctx) => {
      const b = await fresh();
      if (!b.corrupt) return ctx.skip(`n/a: the ${name} store cannot hold a corrupt payload`);
      const writer = await open(b);
      await writer.compareAndSet(0, sampleState(1));
      const watcher = await open(b);
      const errors: Error[] = [];
      watcher.subscribe(
        () => {},
        (e) => errors.push(e),
      );
      await listening(watcher);
      await b.corrupt('{"mode":"sideways","version":"two"}');
      await waitFor('the corrupt payload reported to the subscriber', () => errors.length > 0, within);
      expect(errors.some((e) => isQuiesceError(e) && e.code === 'INVALID_INPUT')).toBe(true);
      // A handle with no good state to fall back on refuses to invent one.
      const late = await open(b);
      const err = await late.read().then(
        () => null,
        (e: unknown) => e,
      );
      expect(isQuiesceError(err) && err.code === 'INVALID_INPUT').toBe(true);
      expect(String((err as Error).message)).toMatch(/mode|version|payload|state/);
    });

    it('close() resolves, and twice is harmless', { timeout }, async () => {
      const store = await (await fresh()).open();
      store.subscribe(() => {});
      await store.close();
      await store.close();
    });

    describe('connections (when the store holds any)', () => {
      /**
       * A reader whose every connection goes through a TCP proxy the test can kill or freeze,
       * following the state; a writer connected directly; version 1 seen by the reader.
       */
      async function throughProxy(ctx: { skip(note?: string): never }) {
        const b = await fresh();
        if (!b.connection) {
          return ctx.skip(
            `n/a: the ${name} store holds no connection to a server (nothing to kill, nothing half-open)`,
          );
        }
        const proxy = await proxyTo(b.connection.url, b.connection.defaultPort);
        proxies.add(proxy);
        const reader = await b.connection.openVia(viaProxy(b.connection.url, proxy.port));
        opened.add(reader);
        const writer = await open(b);
        const seen: number[] = [];
        const errors: Error[] = [];
        reader.subscribe(
          (s) => seen.push(s.version),
          (e) => errors.push(e),
        );
        await listening(reader);
        await writer.compareAndSet(0, sampleState(1));
        await waitFor('version 1 at the reader', () => seen.includes(1), within);
        return { connection: b.connection, proxy, reader, writer, seen, errors };
      }
      /** The engine's poll: a read that succeeds (on whatever connection the store has by then). */
      const readBack = (store: StateStore, version: number) =>
        waitFor(`a read of version ${version}`, async () => {
          const state = await store.read().catch(() => null);
          return state?.version === version;
        });

      it('connections killed by the server: the loss is reported, the feed comes back by itself and catches up on what changed meanwhile; reads work again', {
        timeout,
      }, async (ctx) => {
        const { connection, proxy, reader, writer, seen, errors } = await throughProxy(ctx);
        expect(await connection.terminate(proxy.upstreamPorts())).toBeGreaterThanOrEqual(1);
        // The change lands while the feed may still be down: the reconnection must re-read it.
        await writer.compareAndSet(1, sampleState(2));
        await waitFor('version 2 after the connections were killed', () => seen.includes(2));
        await waitFor('the lost connection reported', () => errors.length > 0);
        expect(errors.every(storeUnavailable), errors.map(String).join('; ')).toBe(true);
        await listening(reader);
        await writer.compareAndSet(2, sampleState(3));
        await waitFor('version 3 through the new feed', () => seen.includes(3));
        await readBack(reader, 3);
      });

      it('a half-open connection (partition: no FIN, no RST) is caught by its liveness check and replaced', {
        timeout,
      }, async (ctx) => {
        const { proxy, reader, writer, seen, errors } = await throughProxy(ctx);
        // Open connections stop carrying data but stay open; new ones go through.
        proxy.freeze();
        await writer.compareAndSet(1, sampleState(2));
        // Reads fail (timed out) until the connection they use is replaced.
        await readBack(reader, 2);
        await waitFor('the silent feed reported', () => errors.some(storeUnavailable));
        expect(errors.every(storeUnavailable), errors.map(String).join('; ')).toBe(true);
        await listening(reader);
        // Only a replaced feed can carry this one: the frozen connection carries nothing.
        await writer.compareAndSet(2, sampleState(3));
        await waitFor('version 3 through the new feed', () => seen.includes(3));
      });
    });

    describe('instance registry (when the store has one)', () => {
      it('upsert, list from another handle, overwrite, remove', { timeout }, async (ctx) => {
        const b = await fresh();
        const a = await open(b);
        if (!a.registry) return ctx.skip(`n/a: the ${name} store has no instance registry`);
        const other = (await open(b)).registry!;
        await a.registry.upsert(record('i-1'));
        await a.registry.upsert(
          record('i-2', { ackedVersion: 3, inFlight: 2, oldestOperation: 'POST /orders', oldestSince: T0 }),
        );
        let list = await other.list();
        expect(list.map((r) => r.id).sort()).toEqual(['i-1', 'i-2']);
        expect(list.find((r) => r.id === 'i-2')).toEqual(
          record('i-2', {
            ackedVersion: 3,
            inFlight: 2,
            oldestOperation: 'POST /orders',
            oldestSince: T0,
            lastSeen: list.find((r) => r.id === 'i-2')!.lastSeen,
          }),
        );
        await other.upsert(record('i-2', { ackedVersion: 4, inFlight: 0 }));
        list = await a.registry.list();
        expect(list.find((r) => r.id === 'i-2')).toMatchObject({ ackedVersion: 4, inFlight: 0 });
        expect(list.find((r) => r.id === 'i-2')?.oldestOperation).toBeUndefined();
        await a.registry.remove('i-1');
        await a.registry.remove('never-registered');
        expect((await other.list()).map((r) => r.id)).toEqual(['i-2']);
      });

      it('a record built earlier never takes back an acknowledgement (heartbeats race on separate connections)', {
        timeout,
      }, async (ctx) => {
        const b = await fresh();
        const a = await open(b);
        if (!a.registry) return ctx.skip(`n/a: the ${name} store has no instance registry`);
        if (options.registryRejectsOlderRecords === false)
          return ctx.skip(
            `n/a: the ${name} registry applies writes in call order (registryRejectsOlderRecords: false)`,
          );
        const seen = Date.now();
        await a.registry.upsert(record('i-race', { lastSeen: seen, ackedVersion: 7 }));
        // The timer's heartbeat, built before version 7 was applied, lands after it.
        await a.registry.upsert(record('i-race', { lastSeen: seen - 5, ackedVersion: 6, inFlight: 3 }));
        expect((await a.registry.list()).find((r) => r.id === 'i-race')).toMatchObject({
          ackedVersion: 7,
          inFlight: 0,
        });
        // Same version: accepted even with an earlier lastSeen (a clock stepping back must not silence an instance).
        await a.registry.upsert(record('i-race', { lastSeen: seen - 1000, ackedVersion: 7, inFlight: 1 }));
        expect((await a.registry.list()).find((r) => r.id === 'i-race')).toMatchObject({
          ackedVersion: 7,
          inFlight: 1,
          lastSeen: seen - 1000,
        });
        await a.registry.upsert(record('i-race', { lastSeen: seen + 1, ackedVersion: 8 }));
        expect((await a.registry.list()).find((r) => r.id === 'i-race')).toMatchObject({
          ackedVersion: 8,
          inFlight: 0,
        });
      });

      it('registry subscribers hear of an acknowledgement from another handle', { timeout }, async (ctx) => {
        const b = await fresh();
        const a = await open(b);
        const other = await open(b);
        if (!a.registry?.subscribe || !other.registry)
          return ctx.skip(`n/a: the ${name} registry announces nothing (no registry.subscribe)`);
        const seen: string[] = [];
        let subscribed = false;
        const off = a.registry.subscribe(() => {
          subscribed = true;
          seen.push('notice');
        });
        // A store may call the listener once when its subscription is in place (to look again):
        // by the time it says it listens, it has.
        await listening(a.registry, 'the registry subscription');
        const before = seen.length;
        // A heartbeat that nobody waits for announces nothing; an acknowledgement does (in order).
        await other.registry.upsert(record('i-9', { ackedVersion: 1 }));
        await other.registry.upsert(record('i-9', { ackedVersion: 2 }), { announce: true });
        await waitFor('a registry notification', () => seen.length > before, within);
        // The announced upsert was the last one published: a notice of the first would be here too.
        expect(seen.length - before).toBe(1);
        expect(subscribed).toBe(true);
        off();
        // The last listener gone, the store stops listening at once.
        if ('listening' in a.registry) expect(a.registry.listening).toBe(false);
      });

      it('get() reads one record; remove() with ifLastSeen keeps a record renewed meanwhile', {
        timeout,
      }, async (ctx) => {
        const b = await fresh();
        const s = await open(b);
        if (!s.registry?.get) return ctx.skip(`n/a: the ${name} registry has no get()`);
        await s.registry.upsert(record('i-7', { ackedVersion: 1, lastSeen: 1000 }));
        expect(await s.registry.get('i-7')).toMatchObject({ id: 'i-7', ackedVersion: 1, lastSeen: 1000 });
        expect(await s.registry.get('nobody')).toBeNull();
        await s.registry.upsert(record('i-7', { ackedVersion: 1, lastSeen: 2000 }));
        await s.registry.remove('i-7', { ifLastSeen: 1000 });
        expect(await s.registry.get('i-7')).toMatchObject({ lastSeen: 2000 });
        await s.registry.remove('i-7', { ifLastSeen: 2000 });
        expect(await s.registry.get('i-7')).toBeNull();
      });
    });
  });
}
