import type { AuditLog } from './audit.js';
import type { Clock } from './clock.js';
import type { EngineEmitter } from './events.js';
import type { InFlightTracker } from './inflight.js';
import type { IntentHandler, IntentQueue } from './intentQueue.js';
import type { QuiesceMetrics } from './metrics.js';
import type { Logger } from './notifier.js';
import type { ResolvedOptions, Timing } from './options.js';
import type { StateStore } from './store.js';

/**
 * What the engine's modules share: the collaborators an app configured (or their defaults) and the
 * few facts every module reads. Each module gets this in its constructor; anything else a module
 * needs from another comes through the narrow `…Deps` interface it declares, wired by engine.ts.
 */
export interface EngineContext {
  readonly instanceId: string;
  readonly options: ResolvedOptions;
  /** Shorthand for `options.timing`. */
  readonly timing: Readonly<Timing>;
  readonly store: StateStore;
  readonly queue: IntentQueue;
  readonly clock: Clock;
  readonly log: Logger;
  readonly auditLog: AuditLog;
  readonly metrics: QuiesceMetrics;
  readonly events: EngineEmitter;
  readonly inflight: InFlightTracker;
  /** Intent handlers by name (`engine.handle`): an instance with any takes part in the backfill. */
  readonly handlers: Map<string, IntentHandler>;
  /**
   * Lifecycle: `started` once `start()` ran, `closed` once `close()` did. `work` holds the engine's
   * own background work in progress (a heartbeat, a confirmation, a backfill share, an apply): `close()`
   * waits for it, so nothing the engine started writes to the store after `close()` resolved.
   */
  readonly life: {
    started: boolean;
    closed: boolean;
    readonly work: Set<Promise<unknown>>;
    /** Wakes every `pause()` in progress: `close()` calls each, so no loop waits out its timer. */
    readonly wake: Set<() => void>;
  };
}

/**
 * Run `task` as background work the engine owns: errors are the task's own business (each logs its
 * own), and `close()` waits for it to settle. Nothing new starts once the engine is closed.
 */
export function background(ctx: Pick<EngineContext, 'life'>, task: () => Promise<unknown>): void {
  if (ctx.life.closed) return;
  const run = task().catch(() => {});
  ctx.life.work.add(run);
  void run.finally(() => ctx.life.work.delete(run));
}

/**
 * Wait `ms` on the engine's clock, or less: the wait ends early when the engine closes (the caller
 * then sees `life.closed` and stops). Every wait inside the engine's background work goes through it.
 */
export function pause(ctx: Pick<EngineContext, 'life' | 'clock'>, ms: number): Promise<void> {
  if (ctx.life.closed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      ctx.clock.clearTimeout(timer);
      ctx.life.wake.delete(done);
      resolve();
    };
    const timer = ctx.clock.setTimeout(done, ms);
    ctx.life.wake.add(done);
  });
}

/** Wait until the background work in progress (and any it started meanwhile) has settled. */
export async function settled(ctx: Pick<EngineContext, 'life'>): Promise<void> {
  while (ctx.life.work.size > 0) await Promise.allSettled([...ctx.life.work]);
}

/** A participant with intent handlers: it can run a backfill share. */
export const canBackfill = (ctx: EngineContext) => ctx.options.participant && ctx.handlers.size > 0;
