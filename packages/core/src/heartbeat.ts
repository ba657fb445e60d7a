import { hostname } from 'node:os';
import { background, type EngineContext } from './context.js';
import { errorMessage, iso } from './events.js';
import type { IntentStats } from './intentQueue.js';
import type { StateReplica } from './replica.js';
import type { InstanceBackfill, InstanceRecord } from './store.js';
import { MAX_TIMER_MS } from './windowTimer.js';

export interface HeartbeatDeps {
  replica: StateReplica;
  /** Window supervision, after each heartbeat. */
  tick(): Promise<void>;
  /** This instance's share of the current backfill, for its record. */
  backfillShare(): InstanceBackfill | null;
  /** The lease lapsed: a running backfill pauses. */
  stopBackfill(): void;
}

/**
 * The heartbeat: poll the store (the safety net for missed notifications), publish this instance's
 * record, renew its lease — and fence it, or apply the store fallback, when that fails.
 */
export class Heartbeat {
  /** The queue's depth and oldest intent, refreshed each heartbeat. */
  queueStats: IntentStats | null = null;
  readonly startedAt: string;
  #timer: unknown = null;
  #fenceTimer: unknown = null;

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: HeartbeatDeps,
  ) {
    this.startedAt = iso(ctx.clock.now());
  }

  schedule(): void {
    const { clock, timing, log } = this.ctx;
    if (this.ctx.life.closed) return;
    // ±10% jitter: a fleet started together does not heartbeat in lockstep.
    const delay = Math.round(timing.heartbeatMs * (0.9 + 0.2 * Math.random()));
    this.#timer = clock.setTimeout(
      () =>
        background(this.ctx, async () => {
          await this.beat();
          await this.deps
            .tick()
            .catch((err) => log.error('quiesce: window supervision failed', { error: errorMessage(err) }));
          this.schedule();
        }),
      delay,
    );
  }

  close(): void {
    this.ctx.clock.clearTimeout(this.#timer);
    this.ctx.clock.clearTimeout(this.#fenceTimer);
  }

  /**
   * The record this instance publishes (heartbeat) and shows (`status()`): its lease, acknowledged
   * version, in-flight writes, whether it can backfill, its backfill share.
   */
  record(sentAt: number): InstanceRecord {
    const { inflight, instanceId, timing } = this.ctx;
    const oldest = inflight.oldest();
    const share = this.deps.backfillShare();
    return {
      id: instanceId,
      host: hostname(),
      pid: process.pid,
      startedAt: this.startedAt,
      lastSeen: sentAt,
      leaseUntil: sentAt + timing.leaseTtlMs,
      ackedVersion: this.deps.replica.ackedVersion,
      inFlight: inflight.count,
      ...(oldest ? { oldestOperation: oldest.name, oldestSince: oldest.since } : {}),
      ...(this.ctx.handlers.size > 0 ? { replays: true } : {}),
      ...(share ? { backfill: { ...share } } : {}),
    };
  }

  /**
   * Poll the store (unless `poll` is false), then renew this instance's lease. `announce` tells a
   * controller waiting on acknowledgements (freezing, thawing, a finished backfill); a plain
   * heartbeat does not (nobody waits for it).
   */
  async beat(poll = true, announce = false): Promise<void> {
    const { store, clock, timing, queue } = this.ctx;
    const replica = this.deps.replica;
    if (this.ctx.life.closed) return;
    const sentAt = clock.now();
    let sawStore = !poll;
    const registry = store.registry;
    const participant = this.ctx.options.participant;
    // One round trip where the store offers it (a read and the renewal in one statement).
    const combined =
      poll && !announce && participant && registry && store.heartbeat ? store.heartbeat.bind(store) : null;
    if (poll) {
      try {
        const s = combined ? await combined(this.record(sentAt)) : await store.read();
        replica.synced();
        replica.storeError = null;
        sawStore = true;
        if (replica.fallback !== null) replica.recover();
        await replica.apply(s);
      } catch (err) {
        replica.storeError = errorMessage(err);
        if (replica.fallback === null && clock.now() - replica.lastSync > timing.stalenessMs)
          replica.applyFallback();
      }
      this.queueStats = await queue.stats().catch(() => this.queueStats);
    }
    if (!registry || !participant) return;
    if (!combined) {
      try {
        await registry.upsert(this.record(sentAt), { announce });
      } catch (err) {
        replica.storeError = errorMessage(err);
        return;
      }
    }
    if (!sawStore || !this.ctx.options.leased) return;
    // A lease that held until now is extended: its record was in the registry the whole time, so a
    // controller either saw this instance or saw the state it read. The lease runs from before the
    // read: whatever the store said then, this instance has applied.
    if (clock.now() <= replica.view.leaseUntil) {
      this.#renew(sentAt + timing.leaseTtlMs);
      return;
    }
    // A lapsed (or first) lease is granted only after the record is in place *and* the state was
    // read after it: a controller that listed the registry before the record landed began its window
    // before this read, so this instance sees that window and refuses.
    try {
      const s = await store.read();
      replica.synced();
      await replica.apply(s);
    } catch (err) {
      replica.storeError = errorMessage(err);
      return;
    }
    this.#renew(sentAt + timing.leaseTtlMs);
  }

  #renew(until: number): void {
    const { clock, log, events, auditLog } = this.ctx;
    const replica = this.deps.replica;
    if (this.ctx.life.closed || until <= replica.view.leaseUntil) return;
    const wasFenced = replica.fenced || replica.view.leaseUntil === Number.NEGATIVE_INFINITY;
    replica.view.leaseUntil = until;
    if (wasFenced && clock.now() <= until) {
      const announced = replica.fenced;
      replica.fenced = false;
      const wasReadOnly = replica.view.readOnly;
      replica.recompute();
      if (announced) {
        log.info('quiesce: lease renewed; this instance may start writes again');
        events.emit('unfenced', { at: iso(clock.now()) });
        void auditLog.append(replica.selfAudit('lease', 'lease renewed; writes allowed again'));
      }
      if (wasReadOnly && !replica.view.readOnly) replica.writable();
    }
    clock.clearTimeout(this.#fenceTimer);
    this.#fenceTimer = clock.setTimeout(
      () => {
        if (clock.now() > replica.view.leaseUntil) this.fence();
      },
      Math.min(MAX_TIMER_MS, Math.max(0, until - clock.now() + 1)),
    );
  }

  /** The lease lapsed: start no write (whatever the fallback says) until it is renewed. */
  fence(): void {
    const { clock, log, events, auditLog, metrics } = this.ctx;
    const replica = this.deps.replica;
    if (replica.fenced || this.ctx.life.closed) return;
    replica.fenced = true;
    replica.recompute();
    this.deps.stopBackfill();
    const leaseUntil = Number.isFinite(replica.view.leaseUntil) ? iso(replica.view.leaseUntil) : null;
    metrics.fallback('read-only');
    log.error(
      'quiesce: lease expired (the store could not be reached to renew it); this instance starts no write until it renews it',
      { leaseUntil, error: replica.storeError },
    );
    events.emit('fenced', { at: iso(clock.now()), leaseUntil });
    void auditLog.append(replica.selfAudit('lease', `lease expired at ${leaseUntil}; writes refused`));
  }
}
