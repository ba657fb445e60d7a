import type { Confirmation } from './checklist.js';
import { emptyChecklist } from './checklist.js';
import type { EngineContext } from './context.js';
import { errorMessage, iso } from './events.js';
import { expired, leaseOf } from './lease.js';
import { advance, requirePhase } from './phases.js';
import type { InstanceRecord } from './store.js';
import type { Transitions } from './transition.js';
import type { Phase, QuiesceState, Straggler } from './window.js';

/** Above this many confirmed instances a confirmation records the count only (a fleet's state stays small). */
const NAMED_CONFIRMATIONS = 50;

export interface DrainDeps {
  state(): QuiesceState;
  /** The last state version this instance applied. */
  ackedVersion(): number;
  transitions: Transitions;
}

export interface ConfirmResult {
  confirmation: Confirmation;
  stragglers: Straggler[];
}

/**
 * Drain and confirmation: where every instance stands against a state version, waiting until all
 * confirmed it or were fenced by their lease, and the freeze that ends in `frozen`.
 */
export class Drain {
  readonly #confirming = new Set<string>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: DrainDeps,
  ) {}

  /**
   * Hold one registry subscription for the length of a confirmation (the store listens to its
   * registry channel only while someone does); `wait` wakes on an announced change or after `ms`.
   */
  registryWaiter(): { wait(ms: number): Promise<void>; close(): void } {
    const { clock } = this.ctx;
    let wake: (() => void) | null = null;
    let dirty = false;
    const off = this.ctx.store.registry?.subscribe?.(() => {
      dirty = true;
      wake?.();
    });
    return {
      wait: (ms) => {
        if (this.ctx.life.closed) return Promise.resolve();
        if (dirty) {
          dirty = false;
          return Promise.resolve();
        }
        return new Promise<void>((resolve) => {
          const timer = clock.setTimeout(() => {
            wake = null;
            this.ctx.life.wake.delete(onClose);
            resolve();
          }, ms);
          wake = () => {
            clock.clearTimeout(timer);
            wake = null;
            dirty = false;
            this.ctx.life.wake.delete(onClose);
            resolve();
          };
          // The engine closing ends the wait too (its caller then sees `life.closed`).
          const onClose = () => wake?.();
          this.ctx.life.wake.add(onClose);
        });
      },
      close: () => off?.(),
    };
  }

  /**
   * Where every instance stands against `version`: confirmed (acknowledged it, and for a freeze has
   * no write in flight), fenced (unreachable and its lease expired: it stopped by itself), or
   * blocking (its lease still runs: it may still write, so it is waited for).
   */
  async assess(
    kind: 'freeze' | 'thaw',
    version: number,
  ): Promise<{ confirmed: string[]; fenced: Straggler[]; blocking: Straggler[] }> {
    const { instanceId, inflight, timing } = this.ctx;
    const confirmed: string[] = [];
    const fenced: Straggler[] = [];
    const blocking: Straggler[] = [];
    const now = this.ctx.clock.now();
    if (this.ctx.options.participant) {
      const oldest = inflight.oldest();
      if (kind === 'freeze' && inflight.count > 0) {
        blocking.push({
          instanceId,
          inFlight: inflight.count,
          ackedVersion: this.deps.ackedVersion(),
          reason: 'in-flight',
          ...(oldest ? { oldestOperation: oldest.name } : {}),
        });
      } else confirmed.push(instanceId);
    }
    const registry = this.ctx.store.registry;
    if (registry) {
      for (const r of await registry.list()) {
        if (r.id === instanceId) continue;
        const base = {
          instanceId: r.id,
          inFlight: r.inFlight,
          ackedVersion: r.ackedVersion,
          ...(r.oldestOperation ? { oldestOperation: r.oldestOperation } : {}),
        };
        if (r.ackedVersion >= version && (kind === 'thaw' || r.inFlight === 0)) confirmed.push(r.id);
        else if (expired(r, now, timing))
          fenced.push({
            ...base,
            reason: 'fenced',
            leaseUntil: iso(leaseOf(r, timing)),
            lastSeen: r.lastSeen,
          });
        else blocking.push({ ...base, reason: r.ackedVersion < version ? 'not-acknowledged' : 'in-flight' });
      }
    }
    return { confirmed, fenced, blocking };
  }

  /**
   * Wait until every instance confirmed `version` or was fenced by its own lease; past the deadline
   * (never shorter than a lease plus the skew margin, so an unreachable instance is always fenced
   * first) the rest are named. Null when the window moved on.
   */
  async confirm(
    kind: 'freeze' | 'thaw',
    windowId: string,
    version: number,
    phase: Phase,
    since: number,
  ): Promise<ConfirmResult | null> {
    const { clock, log, timing, instanceId } = this.ctx;
    const started = clock.now();
    const deadline = started + timing.drainDeadlineMs;
    // An instance that has not acknowledged may be cut off and still writing: it is waited for past
    // the drain deadline until its lease has expired (then it counts as fenced). Only one that keeps
    // renewing its lease without acknowledging (a stuck phase hook) is named after this.
    const hardDeadline = deadline + timing.leaseTtlMs + timing.clockSkewMs + timing.heartbeatMs;
    const waiter = this.registryWaiter();
    try {
      for (;;) {
        const w = this.deps.state().window;
        if (this.ctx.life.closed || w?.id !== windowId || w.phase !== phase) return null;
        // Another instance took the window over: it confirms now.
        if (w.checklist && w.checklist.controller !== instanceId) return null;
        const { confirmed, fenced, blocking } = await this.assess(kind, version);
        const now0 = clock.now();
        const timedOut = now0 >= deadline;
        const unacknowledged = blocking.some((b) => b.reason === 'not-acknowledged');
        if (blocking.length === 0 || (timedOut && !unacknowledged) || now0 >= hardDeadline) {
          const now = clock.now();
          for (const f of fenced) {
            log.warn(`quiesce: instance unreachable; counted as stopped once its lease expired (${kind})`, {
              instanceId: f.instanceId,
              leaseUntil: f.leaseUntil,
            });
          }
          if (timedOut && blocking.length > 0 && kind === 'freeze') {
            log.warn('quiesce: drain deadline passed; stragglers', { stragglers: blocking });
            this.ctx.events.emit('drain-timeout', blocking);
          } else if (timedOut && blocking.length > 0) {
            log.warn('quiesce: thaw not acknowledged by every instance before the deadline', {
              stragglers: blocking,
            });
          }
          const unconfirmed = timedOut ? blocking : [];
          return {
            confirmation: {
              version,
              at: iso(now),
              tookMs: Math.max(0, now - since),
              confirmed: confirmed.length,
              ...(confirmed.length <= NAMED_CONFIRMATIONS ? { confirmedIds: confirmed } : {}),
              fenced: fenced.map((f) => ({
                instanceId: f.instanceId,
                leaseUntil: f.leaseUntil!,
                ackedVersion: f.ackedVersion,
                inFlight: f.inFlight,
              })),
              unconfirmed: unconfirmed.map((b) => b.instanceId),
            },
            stragglers: [...fenced, ...unconfirmed],
          };
        }
        const next = clock.now() < deadline ? deadline : hardDeadline;
        await waiter.wait(Math.min(250, timing.heartbeatMs, Math.max(1, next - clock.now())));
      }
    } finally {
      waiter.close();
    }
  }

  /** The controller's part of `freezing`: confirm the freeze, then commit `frozen` with the stragglers. */
  async confirmFreeze(windowId: string): Promise<void> {
    if (this.#confirming.has(windowId)) return;
    this.#confirming.add(windowId);
    const { instanceId, clock } = this.ctx;
    try {
      const s0 = this.deps.state();
      const w = s0.window;
      if (w?.id !== windowId || w.phase !== 'freezing') return;
      const version = w.freezeVersion ?? s0.version;
      const result = await this.confirm('freeze', windowId, version, 'freezing', Date.parse(w.startsAt));
      if (!result) return;
      const { confirmation, stragglers } = result;
      // A controller that holds no lease (a CLI) hands the window to a live instance that confirmed.
      const heir = this.ctx.options.participant
        ? instanceId
        : (confirmation.confirmedIds?.find((id) => id !== instanceId) ??
          (await this.pickLive(false)) ??
          instanceId);
      const now = clock.now();
      const reason = confirmation.unconfirmed.length
        ? 'drain deadline passed'
        : confirmation.fenced.length
          ? `all instances confirmed or fenced (${confirmation.fenced.length} fenced by their lease)`
          : 'all instances confirmed';
      const frozen = await this.deps.transitions.transition(
        { action: 'phase', actor: 'controller', reason },
        (s) => {
          const w = s.window;
          if (w?.id !== windowId || w.phase !== 'freezing') return null;
          const c = w.checklist ?? emptyChecklist(instanceId);
          return advance(s, now, () => ({
            window: {
              ...w,
              phase: requirePhase(w.phase, 'confirm-frozen'),
              frozenAt: iso(now),
              stragglers,
              checklist: { ...c, controller: heir, freeze: confirmation },
            },
          }));
        },
      );
      if (frozen) await this.dropFenced(stragglers.filter((x) => x.reason === 'fenced'));
    } catch (err) {
      this.ctx.log.error('quiesce: freeze confirmation failed', { windowId, error: errorMessage(err) });
    } finally {
      this.#confirming.delete(windowId);
    }
  }

  /**
   * Fenced instances leave the registry once the confirmation that named them is committed (not
   * before: a concurrent confirmation must still see them). Back, they register again.
   */
  async dropFenced(fenced: Straggler[]): Promise<void> {
    for (const f of fenced)
      await this.ctx.store.registry
        ?.remove(f.instanceId, f.lastSeen !== undefined ? { ifLastSeen: f.lastSeen } : {})
        .catch(() => {});
  }

  /** A live instance from the registry (one with handlers when asked), other than this one; null if none. */
  async pickLive(backfills: boolean): Promise<string | null> {
    const registry = this.ctx.store.registry;
    if (!registry) return null;
    const now = this.ctx.clock.now();
    const list = await registry.list().catch(() => [] as InstanceRecord[]);
    const live = list.filter(
      (r) => r.id !== this.ctx.instanceId && !expired(r, now, this.ctx.timing) && (!backfills || r.replays),
    );
    return live[0]?.id ?? null;
  }
}
