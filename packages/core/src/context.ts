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
  /** Lifecycle: `started` once `start()` ran, `closed` once `close()` did. */
  readonly life: { started: boolean; closed: boolean };
}

/** A participant with intent handlers: it can run a backfill share. */
export const canBackfill = (ctx: EngineContext) => ctx.options.participant && ctx.handlers.size > 0;
