import type { Backfill } from './backfill.js';
import type { EngineContext } from './context.js';
import { errorMessage, iso } from './events.js';
import type { Heartbeat } from './heartbeat.js';
import type { Intents } from './intents.js';
import { expired } from './lease.js';
import type { ReadHealthReport } from './readHealth.js';
import type { StateReplica } from './replica.js';
import type { EngineStatus, InstanceStatus } from './types.js';

export interface StatusSources {
  replica: StateReplica;
  heartbeat: Heartbeat;
  backfill: Backfill;
  intents: Intents;
  readHealth(): ReadHealthReport;
}

/** Everything an operator asks about this instance and the fleet it sees (`engine.status()`). */
export async function engineStatus(ctx: EngineContext, src: StatusSources): Promise<EngineStatus> {
  const { clock, store, instanceId, inflight, timing, options } = ctx;
  const { replica, heartbeat } = src;
  const now = clock.now();
  const instances: InstanceStatus[] = [];
  const registry = store.registry;
  if (registry) {
    try {
      for (const r of await registry.list()) {
        instances.push({ ...r, live: !expired(r, now, timing), self: r.id === instanceId });
      }
    } catch (err) {
      replica.storeError = errorMessage(err);
    }
  }
  // Not (yet) in a registry: the record its heartbeat would publish.
  if (options.participant && !instances.some((i) => i.self))
    instances.push({ ...heartbeat.record(now), live: true, self: true });
  const oldest = inflight.oldest();
  heartbeat.queueStats = await ctx.queue.stats().catch(() => heartbeat.queueStats);
  const { view } = replica;
  return {
    instanceId,
    state: replica.state,
    phase: replica.state.window?.phase ?? null,
    readOnly: view.readOnly,
    dryRun: options.settings.dryRun,
    store: {
      kind: store.kind,
      healthy: replica.storeError === null,
      lastSyncAt: iso(replica.lastSync),
      fallback: replica.fallback,
      lastError: replica.storeError,
    },
    inFlight: {
      count: inflight.count,
      oldest: oldest ? { name: oldest.name, since: iso(oldest.since) } : null,
    },
    lease: {
      held: options.leased,
      until: Number.isFinite(view.leaseUntil) ? iso(view.leaseUntil) : null,
      fenced: options.leased && (replica.fenced || view.leaseUntil === Number.NEGATIVE_INFINITY),
      ttlMs: timing.leaseTtlMs,
      clockSkewMs: timing.clockSkewMs,
    },
    instances,
    queuedOutsideWindow: src.intents.queuedOutsideWindow,
    counters: structuredClone(ctx.metrics.counts),
    queue: heartbeat.queueStats,
    backfill: src.backfill.progress,
    readHealth: src.readHealth(),
  };
}
