import {
  createQuiesce,
  type EngineStatus,
  type MaintenanceWindow,
  type QuiesceEngine,
  type StateStore,
  silentLogger,
} from '@quiesce/core';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { proxyTo, viaProxy } from '../fixtures/instanceHarness.mjs';
import { POSTGRES_URL, uniqueName } from './services.js';
import { waitFor } from './waitFor.js';

/** What a child instance reports on each applied state, fallback or recovery. */
export interface InstanceReport {
  id: string;
  event: string;
  /** performance.timeOrigin + performance.now() in the child (comparable across local processes). */
  at: number;
  started: boolean;
  version: number;
  phase: string | null;
  windowId: string | null;
  /** Whether the instance refuses a plain write (`POST /orders`) right now. */
  refusing: boolean;
  fallback: string | null;
  /** The window's controller and checklist progress, as this instance last applied them. */
  controller?: string | null;
  closureNotice?: { by: string; claimedAt: string; sentAt: string | null } | null;
  backfill?: { done: number; total: number; applied: number } | null;
}

/** One engine running in a child process on the backend. */
export interface InstanceHandle {
  readonly id: string;
  call<T = unknown>(
    cmd:
      | 'begin'
      | 'end'
      | 'decide'
      | 'status'
      | 'track'
      | 'finish'
      | 'close'
      | 'enqueue'
      | 'startWriting'
      | 'stopWriting'
      | 'waitForPhase',
    args?: unknown,
  ): Promise<T>;
  waitForReport(
    pred: (r: InstanceReport) => boolean,
    timeoutMs?: number,
    what?: string,
  ): Promise<InstanceReport>;
  latest(): InstanceReport | null;
  /** SIGKILL: the instance stops heartbeating without deregistering. */
  kill(): Promise<unknown>;
  close(): Promise<void>;
  /** Notices the instance's notifiers sent (child config `notices: true`). */
  readonly notices?: Array<{ kind: string; windowId: string; id: string }>;
}

/** Engine timings the scenarios run with (short, so the suite stays fast). */
export interface ScenarioTimings {
  heartbeatMs: number;
  leaseTtlMs: number;
  clockSkewMs: number;
  stalenessMs: number;
  drainDeadlineMs: number;
  soakMs: number;
}

/** A loopback TCP proxy in front of a server, which a test cuts, freezes or kills connections behind. */
export interface TcpProxy {
  port: number;
  /** Local ports of the proxy's connections to the server, as the server sees them. */
  upstreamPorts(): number[];
  /** Refuse new connections (open ones carry on). */
  cut(): void;
  /** A half-open link: open connections stop carrying data but stay open (no FIN, no RST); new ones go through. */
  freeze(): void;
  restore(): void;
  close(): Promise<void>;
}

export interface InstanceScenarioBackend {
  /** Fork an engine on this backend; `proxyPort` routes its connections through a proxy the test can cut. */
  spawn(
    id: string,
    engine: Partial<ScenarioTimings> & { storeFallback?: 'keep' | 'read-only' | 'read-write' },
    proxyPort?: number,
    /** More of the child's config: `effects`, `queue`, `notices` (see serveInstance.mjs). */
    extra?: Record<string, unknown>,
  ): Promise<InstanceHandle>;
  /** A store handle for the test process's own controller engine (like the CLI's). */
  openStore(): StateStore | Promise<StateStore>;
  /** A loopback proxy in front of the backend's server. */
  proxy(): Promise<TcpProxy>;
  /**
   * Terminate the server-side connections whose client port is in `ports` (`pg_terminate_backend`,
   * `CLIENT KILL ADDR`); returns how many were terminated.
   */
  terminate(ports: number[]): Promise<number>;
  dispose?(): Promise<unknown>;
}

/** A schema of the test's own on the test database, and a pool on it; dropped and ended by `cleanups`. */
function scratchSchema(prefix: string, cleanups: Array<() => Promise<unknown>>) {
  const db = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
  const schema = uniqueName(prefix);
  cleanups.push(async () => {
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await db.end();
  });
  return { db, schema };
}

export const SCENARIO_TIMINGS: ScenarioTimings = {
  heartbeatMs: 100,
  // Generous against a loaded CI machine (an event loop stalled past it fences the instance).
  leaseTtlMs: 2000,
  clockSkewMs: 250,
  stalenessMs: 600,
  drainDeadlineMs: 10_000,
  soakMs: 0,
};

/**
 * Several engines in separate processes on one backend: a window begun anywhere is refused
 * everywhere; `frozen` waits for every live instance's acknowledgement and in-flight writes; a
 * killed instance is dropped and named; a cut-off instance keeps its state, applies the fallback
 * past the staleness bound and recovers by itself.
 */
export function runInstanceScenarios(
  name: string,
  createBackend: () => InstanceScenarioBackend | Promise<InstanceScenarioBackend>,
): void {
  const t = SCENARIO_TIMINGS;
  describe(`many instances: ${name}`, () => {
    let backend: InstanceScenarioBackend;
    let handles: InstanceHandle[] = [];
    let controller: QuiesceEngine | null = null;
    const closers: Array<() => Promise<unknown>> = [];

    /** The test process's own controller (like the CLI's), once `registered` instances are. */
    async function startController(registered: number, controllerOptions: Partial<ScenarioTimings> = {}) {
      const store = await backend.openStore();
      closers.push(() => store.close());
      const engine = createQuiesce({
        ...t,
        ...controllerOptions,
        store,
        participant: false,
        instanceId: 'controller',
        logger: silentLogger,
      });
      controller = engine;
      await engine.start();
      await waitFor(
        'every instance registered',
        async () => (await engine.status()).instances.length >= registered,
        { timeout: 5000 },
      );
      return engine;
    }

    async function setup(count: number, controllerOptions: Partial<ScenarioTimings> = {}) {
      backend = await createBackend();
      handles = await Promise.all(Array.from({ length: count }, (_, i) => backend.spawn(`i${i + 1}`, t)));
      await startController(count, controllerOptions);
      return { handles, controller };
    }

    afterEach(async () => {
      await Promise.all(handles.map((h) => h.close()));
      await controller?.close();
      controller = null;
      for (const c of closers.splice(0)) await c();
      handles = [];
      await backend?.dispose?.();
    });

    const refusingAt = (h: InstanceHandle, version: number, timeoutMs = 5000) =>
      h.waitForReport(
        (r) => r.refusing && r.version >= version,
        timeoutMs,
        `refusing at version ≥ ${version}`,
      );

    it('a window begun in one instance is refused by all; frozen once all acknowledged; status lists them', {
      timeout: 30_000,
    }, async () => {
      const [a, b, c] = (await setup(3)).handles;
      const window = await a!.call<MaintenanceWindow>('begin', {
        reason: 'migration',
        message: 'Back soon',
        actor: 'ops',
      });
      expect(window.phase).toBe('freezing');
      const freezeVersion = window.freezeVersion!;
      await Promise.all([a, b, c].map((h) => refusingAt(h!, freezeVersion)));
      for (const h of [a, b, c]) expect(await h!.call('decide')).toBe('refuse');
      const frozen = await controller!.waitForPhase('frozen', { timeoutMs: 5000 });
      expect(frozen.id).toBe(window.id);
      expect(frozen.stragglers).toEqual([]);
      const status = await controller!.status();
      const byId = new Map(status.instances.map((i) => [i.id, i]));
      for (const h of [a, b, c]) {
        const i = byId.get(h!.id);
        expect(i, `status lists ${h!.id}`).toBeDefined();
        expect(i!.ackedVersion).toBeGreaterThanOrEqual(freezeVersion);
        expect(i!.inFlight).toBe(0);
        expect(i!.live).toBe(true);
        expect(i!.leaseUntil).toBeGreaterThan(Date.now() - t.clockSkewMs);
      }
      await b!.call('end', { actor: 'ops' });
      await Promise.all(
        [a, b, c].map((h) =>
          h!.waitForReport((r) => !r.refusing && r.phase === 'thawing', 5000, 'writes back on'),
        ),
      );
    });

    it('a slow in-flight write holds freezing until it finishes', { timeout: 30_000 }, async () => {
      const [a, b] = (await setup(2)).handles;
      expect(await b!.call('track', { name: 'POST /slow-import' })).toBe(1);
      const window = await controller!.begin({ reason: 'reindex', message: 'Back soon' });
      await Promise.all([a, b].map((h) => refusingAt(h!, window.freezeVersion!)));
      // Several heartbeats of the holder (and confirmation rounds) later, still freezing.
      const beats = new Set<number>();
      await waitFor('six heartbeats of the holder with its write in flight', async () => {
        const holder = (await controller!.status()).instances.find((i) => i.id === b!.id);
        if (holder?.inFlight === 1) beats.add(holder.lastSeen);
        return beats.size >= 6;
      });
      expect(controller!.phase).toBe('freezing');
      const holder = (await controller!.status()).instances.find((i) => i.id === b!.id);
      expect(holder).toMatchObject({ inFlight: 1, oldestOperation: 'POST /slow-import' });
      await b!.call('finish', { name: 'POST /slow-import' });
      const frozen = await controller!.waitForPhase('frozen', { timeoutMs: 5000 });
      expect(frozen.stragglers).toEqual([]);
    });

    it('past the drain deadline the stragglers are named with their count and oldest operation', {
      timeout: 30_000,
    }, async () => {
      const [, b] = (await setup(2, { drainDeadlineMs: 1500 })).handles;
      await b!.call('track', { name: 'POST /never-ends' });
      await controller!.begin({ reason: 'reindex', message: 'Back soon' });
      const frozen = await controller!.waitForPhase('frozen', { timeoutMs: 5000 });
      expect(frozen.stragglers).toEqual([
        expect.objectContaining({
          instanceId: b!.id,
          inFlight: 1,
          oldestOperation: 'POST /never-ends',
          reason: 'in-flight',
        }),
      ]);
      await b!.call('finish', { name: 'POST /never-ends' });
    });

    it('a killed instance is dropped after the timeout and named', { timeout: 30_000 }, async () => {
      const [a, b, c] = (await setup(3)).handles;
      await c!.kill();
      const started = Date.now();
      const window = await a!.call<MaintenanceWindow>('begin', { reason: 'migration', message: 'Back soon' });
      await Promise.all([a, b].map((h) => refusingAt(h!, window.freezeVersion!)));
      const frozen = await controller!.waitForPhase('frozen', { timeoutMs: t.leaseTtlMs + 5000 });
      // Unreachable: counted as stopped only once its lease expired (it had fenced itself).
      expect(frozen.stragglers).toEqual([expect.objectContaining({ instanceId: c!.id, reason: 'fenced' })]);
      const leaseUntil = Date.parse(frozen.stragglers[0]!.leaseUntil!);
      expect(Date.parse(frozen.frozenAt!)).toBeGreaterThan(leaseUntil + t.clockSkewMs);
      expect(started).toBeLessThan(leaseUntil + t.clockSkewMs);
      await waitFor(
        'the lost instance gone from status',
        async () => (await controller!.status()).instances.every((i) => i.id !== c!.id),
        { timeout: 3000 },
      );
    });

    it('an instance killed during frozen is dropped and named by the controller once its lease expired', {
      timeout: 30_000,
    }, async () => {
      const [a, b, c] = (await setup(3)).handles;
      const window = await controller!.begin({ reason: 'migration', message: 'Back soon' });
      const frozen = await controller!.waitForPhase('frozen', { timeoutMs: 5000 });
      expect(frozen.stragglers).toEqual([]);
      // The CLI-like controller holds no lease: it handed the window to a live instance.
      const driver = frozen.checklist?.controller;
      expect([a, b, c].map((h) => h!.id)).toContain(driver);
      const victim = [a, b, c].find((h) => h!.id !== driver)!;
      await victim.kill();
      const killedAt = Date.now();
      await waitFor(
        'the killed instance named as lost',
        async () => (controller!.window?.stragglers ?? []).some((s) => s.instanceId === victim.id),
        { timeout: t.leaseTtlMs + 10_000 },
      );
      const named = controller!.window!.stragglers.find((s) => s.instanceId === victim.id)!;
      expect(named).toMatchObject({ reason: 'lost' });
      // Named only once its lease (renewed before the kill) had expired, plus the skew margin.
      expect(Date.parse(named.leaseUntil!)).toBeLessThanOrEqual(killedAt + t.leaseTtlMs);
      expect(controller!.window!.id).toBe(window.id);
      await waitFor(
        'the lost instance gone from status',
        async () => (await controller!.status()).instances.every((i) => i.id !== victim.id),
        { timeout: 5000 },
      );
    });

    it('a partitioned instance (fallback keep) fences itself: no write reaches the database from frozen to thaw; closed only once every instance writes again', {
      timeout: 60_000,
    }, async () => {
      backend = await createBackend();
      const { db, schema } = scratchSchema('qfence', closers);
      const table = `"${schema}".writes`;
      // Every write that reaches the database is stamped by a trigger with the database's clock.
      await db.query(`CREATE SCHEMA "${schema}";
        CREATE TABLE ${table} (id bigserial PRIMARY KEY, instance text NOT NULL, at timestamptz);
        CREATE FUNCTION "${schema}".stamp() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN NEW.at := clock_timestamp(); RETURN NEW; END $$;
        CREATE TRIGGER stamp BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION "${schema}".stamp();`);
      const proxy = await backend.proxy();
      closers.push(() => proxy.close());
      const a = await backend.spawn('steady-a', t);
      const b = await backend.spawn('steady-b', t);
      const cutOff = await backend.spawn(
        'cut-off',
        { ...t, storeFallback: 'keep', stalenessMs: 30_000 },
        proxy.port,
      );
      handles = [a, b, cutOff];
      controller = await startController(3);
      for (const h of handles) await h.call('startWriting', { connectionString: POSTGRES_URL, table });
      const written = async (id: string, from?: string, to?: string) =>
        Number(
          (
            await db.query(
              `SELECT count(*)::int AS n FROM ${table} WHERE instance = $1 AND ($2::timestamptz IS NULL OR at >= $2) AND ($3::timestamptz IS NULL OR at < $3)`,
              [id, from ?? null, to ?? null],
            )
          ).rows[0].n,
        );
      await waitFor(
        'every instance writing',
        async () => {
          for (const h of handles) if ((await written(h.id)) === 0) return false;
          return true;
        },
        { timeout: 10_000 },
      );

      // Cut the instance off its store: open connections hang (half-open), new ones are refused.
      proxy.cut();
      proxy.freeze();
      const window = await controller.begin({ reason: 'migration', message: 'Back soon' });
      const fenced = await cutOff.waitForReport(
        (r) => r.event === 'fenced',
        t.leaseTtlMs + 10_000,
        'self-fencing',
      );
      expect(fenced.refusing).toBe(true);
      const frozen = await controller.waitForPhase('frozen', { timeoutMs: t.leaseTtlMs + 10_000 });
      expect(frozen.id).toBe(window.id);
      expect(frozen.stragglers).toEqual([
        expect.objectContaining({ instanceId: cutOff.id, reason: 'fenced' }),
      ]);
      expect(frozen.checklist?.freeze?.fenced.map((f) => f.instanceId)).toEqual([cutOff.id]);
      expect(frozen.checklist?.freeze?.confirmedIds).toEqual(expect.arrayContaining([a.id, b.id]));
      // The instance fenced itself before the controller counted it as stopped.
      expect(fenced.at).toBeLessThan(Date.parse(frozen.frozenAt!));

      proxy.restore();
      await cutOff.waitForReport((r) => r.event === 'unfenced', 20_000, 'the lease renewed');
      expect(await cutOff.call('decide')).toBe('refuse'); // the window holds it now
      await controller.end({ actor: 'ops' });
      const closed = await controller.waitForPhase('closed', { timeoutMs: 20_000 });
      const thawedAt = closed.endedAt!;
      // Not one write reached the database from any instance between frozen and thaw.
      for (const h of handles) expect(await written(h.id, frozen.frozenAt!, thawedAt), h.id).toBe(0);
      // … and the check could fail: each of them wrote before, and writes again after.
      for (const h of handles)
        expect(await written(h.id, undefined, window.startsAt), h.id).toBeGreaterThan(0);
      // `closed` only after the thaw was confirmed by every instance.
      expect(closed.checklist?.thaw).toMatchObject({ confirmed: 3, fenced: [], unconfirmed: [] });
      expect(Date.parse(closed.checklist!.thaw!.at)).toBeLessThanOrEqual(Date.parse(closed.closedAt!));
      await waitFor(
        'every instance writes again',
        async () => {
          for (const h of handles) if ((await written(h.id, closed.closedAt!)) === 0) return false;
          return true;
        },
        { timeout: 10_000 },
      );
      for (const h of handles) await h.call('stopWriting');
    });

    it('store outage: keeps the last state, applies the fallback past the staleness bound, recovers by itself', {
      timeout: 30_000,
    }, async () => {
      backend = await createBackend();
      const proxy = await backend.proxy();
      closers.push(() => proxy.close());
      const steady = await backend.spawn('steady', t);
      const cutOff = await backend.spawn('cut-off', { ...t, storeFallback: 'read-only' }, proxy.port);
      handles = [steady, cutOff];
      controller = await startController(0);

      proxy.cut();
      const terminated = await backend.terminate(proxy.upstreamPorts());
      expect(terminated).toBeGreaterThanOrEqual(1);
      // Within the staleness bound the last known state (read-write) holds.
      expect(await cutOff.call('decide')).toBe('proceed');
      const fellBack = await cutOff.waitForReport(
        (r) => r.fallback === 'read-only',
        t.stalenessMs + 5000,
        'the fallback',
      );
      expect(fellBack.refusing).toBe(true);
      const status = await cutOff.call<EngineStatus>('status');
      expect(status.store).toMatchObject({ healthy: false, fallback: 'read-only' });
      expect(status.store.lastError).toBeTruthy();
      expect(await steady.call('decide')).toBe('proceed');

      proxy.restore();
      const recovered = await cutOff.waitForReport((r) => r.event === 'store-recovered', 10_000, 'recovery');
      expect(recovered.refusing).toBe(false);
      // And it hears the next window again.
      const window = await controller.begin({ reason: 'after outage', message: 'Back soon' });
      await Promise.all([steady, cutOff].map((h) => refusingAt(h, window.freezeVersion!)));
      await controller.waitForPhase('frozen', { timeoutMs: 5000 });
    });
  });
}

/** Where the controller is killed in a crash trial. */
export type CrashPoint = 'freezing' | 'soak' | 'notice' | 'backfill';
const CRASH_POINTS: CrashPoint[] = ['freezing', 'soak', 'notice', 'backfill'];

/**
 * Crash trials: the instance driving a window (its controller) is killed with SIGKILL at a random
 * point of freezing, soak, closure notice or backfill; the survivor takes the window over once the
 * controller's lease expired. Every window reaches `closed`, every acknowledged intent (a shared
 * pg-boss queue on PostgreSQL) is applied exactly once in effect, the closure notice goes out once.
 * Trials: `QUIESCE_CRASH_TRIALS` (default 4, one per crash point; CI should run ≥ 20 per store).
 */
export function runCrashTrials(
  name: string,
  createBackend: () => InstanceScenarioBackend | Promise<InstanceScenarioBackend>,
): void {
  const trials = Math.max(1, Number(process.env.QUIESCE_CRASH_TRIALS ?? 4) || 4);
  const t = { ...SCENARIO_TIMINGS, soakMs: 400, replay: { ratePerSecond: 300, concurrency: 2 } };
  describe(`crash trials: ${name}`, () => {
    const cleanups: Array<() => Promise<unknown>> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
    });

    for (let trial = 0; trial < trials; trial++) {
      const point = CRASH_POINTS[trial % CRASH_POINTS.length]!;
      it(`trial ${trial + 1}/${trials}: controller killed during ${point}`, { timeout: 60_000 }, async () => {
        const backend = await createBackend();
        cleanups.push(async () => backend.dispose?.());
        const { db, schema } = scratchSchema('qcrash', cleanups);
        const effects = `"${schema}".effects`;
        await db.query(`CREATE SCHEMA "${schema}";
          CREATE TABLE ${effects} (key text PRIMARY KEY, value int NOT NULL);
          CREATE TABLE ${effects}_attempts (key text NOT NULL, instance text NOT NULL);`);
        const extra = {
          effects: { connectionString: POSTGRES_URL, table: effects },
          queue: { connectionString: POSTGRES_URL, schema: `${schema}_boss`, leaseMs: 1500 },
          notices: true,
        };
        cleanups.push(() => db.query(`DROP SCHEMA IF EXISTS "${schema}_boss" CASCADE`));
        const [a, b] = await Promise.all([
          backend.spawn(`ctl-${trial}`, t, undefined, extra),
          backend.spawn(`survivor-${trial}`, t, undefined, extra),
        ]);
        cleanups.push(async () => {
          await a!.close();
          await b!.close();
        });
        const keys: string[] = [];
        const enqueue = async (h: InstanceHandle, n: number) => {
          for (let i = 0; i < n; i++) {
            const key = `${h.id}-${keys.length}`;
            const r = await h.call<{ created: boolean }>('enqueue', { key, value: keys.length });
            expect(r.created).toBe(true);
            keys.push(key);
          }
        };
        const rnd = (max: number) => Math.floor(Math.random() * max);
        const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

        if (point === 'freezing') {
          // The survivor holds the freeze with a write in flight; the controller dies while freezing.
          await b!.call('track', { name: 'POST /slow' });
          const w = await a!.call<MaintenanceWindow>('begin', {
            reason: 'crash trial',
            message: 'Back soon',
          });
          await pause(rnd(100));
          await a!.kill();
          await b!.waitForReport((r) => r.controller === b!.id, t.leaseTtlMs + 10_000, 'the takeover');
          await b!.call('finish', { name: 'POST /slow' });
          await b!.waitForReport((r) => r.windowId === w.id && r.phase === 'frozen', 10_000, 'frozen');
          await enqueue(b!, 20);
          await b!.call('end', { actor: 'ops' });
        } else {
          const w = await a!.call<MaintenanceWindow>('begin', {
            reason: 'crash trial',
            message: 'Back soon',
          });
          await a!.waitForReport((r) => r.windowId === w.id && r.phase === 'frozen', 10_000, 'frozen');
          await enqueue(a!, 30);
          await enqueue(b!, 30);
          await a!.call('end', { actor: 'ops' });
          if (point === 'soak') await pause(rnd(t.soakMs));
          else if (point === 'notice')
            await a!.waitForReport(
              (r) => r.closureNotice?.by === a!.id,
              10_000,
              'the closure notice claimed',
            );
          else {
            await a!.waitForReport((r) => r.phase === 'backfilling', 10_000, 'backfilling');
            await pause(rnd(150));
          }
          await a!.kill();
        }
        const closed = await b!.waitForReport(
          (r) => r.phase === 'closed',
          t.leaseTtlMs * 3 + 30_000,
          'the window closed by the survivor',
        );
        expect(closed.controller).toBe(b!.id);
        // Exactly once in effect: one row per acknowledged intent, none missing, none extra.
        const rows = await db.query(`SELECT key FROM ${effects} ORDER BY key`);
        expect(rows.rows.map((r: { key: string }) => r.key)).toEqual([...keys].sort());
        const all = () =>
          [...(a!.notices ?? []), ...(b!.notices ?? [])].filter((n) => n.windowId === closed.windowId);
        // The closed notice follows the closed state (notifiers run after the state is committed).
        await waitFor('the closed notice', async () => all().some((n) => n.kind === 'closed'), {
          timeout: 10_000,
        });
        const notices = all();
        const ended = notices.filter((n) => n.kind === 'ended').length;
        // A controller killed between sending the notice and recording it sent leaves a claim the
        // survivor cannot tell from an unsent one: only then may the notice go out twice.
        if (point === 'notice') expect(ended).toBeGreaterThanOrEqual(1);
        else expect(ended).toBe(1);
        expect(ended).toBeLessThanOrEqual(2);
        expect(notices.filter((n) => n.kind === 'closed')).toHaveLength(1);
      });
    }
  });
}

/** One backend for the multi-process suites: fresh data, and how a child instance reaches the server. */
export interface InstanceSuiteBackend {
  /** The package's `spawnInstance` (`createInstanceSpawner` on its child script, which calls `serveStoreInstance`). */
  spawnInstance(config: Record<string, unknown> & { id: string }): Promise<InstanceHandle>;
  /** The server's URL (`postgres://…`, `redis://…`); an instance the test cuts off reaches it through a TCP proxy. */
  url: string;
  /** The port when the URL names none. */
  defaultPort: number;
  /** The child's store config (`connectionString` and `schema`, `url` and `prefix`…) for the server at `url`, the real one or the proxy. */
  config(url: string, id: string): Record<string, unknown>;
  /** The controller's store handle, in the test process (like the CLI's). */
  openStore(): StateStore;
  /** Terminate the server-side connections whose client port is in `ports`; returns how many. */
  terminate(ports: number[]): Promise<number>;
  /** Drop the backend's data. */
  dispose(): Promise<unknown>;
}

/**
 * The instance scenarios and the crash trials on one store package: `createBackend` is called once
 * per test and must return a fresh backend.
 */
export function runInstanceSuite(
  name: string,
  createBackend: () => InstanceSuiteBackend | Promise<InstanceSuiteBackend>,
): void {
  const backend = async (): Promise<InstanceScenarioBackend> => {
    const b = await createBackend();
    return {
      spawn: (id, engine, proxyPort, extra) =>
        b.spawnInstance({
          ...extra,
          ...b.config(proxyPort ? viaProxy(b.url, proxyPort) : b.url, id),
          id,
          engine,
        }),
      openStore: () => b.openStore(),
      proxy: () => proxyTo(b.url, b.defaultPort),
      terminate: (ports) => b.terminate(ports),
      dispose: () => b.dispose(),
    };
  };
  runInstanceScenarios(`${name} (child processes)`, backend);
  runCrashTrials(name, backend);
}
