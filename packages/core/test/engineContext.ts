// Test helper: the context the engine's modules share, built from options as the engine builds it,
// for tests that drive one module directly (controller, replica, drain).
import { createMemoryAuditLog } from '../src/audit.js';
import { createManualClock, type ManualClock } from '../src/clock.js';
import type { EngineContext } from '../src/context.js';
import { EngineEmitter } from '../src/events.js';
import { InFlightTracker } from '../src/inflight.js';
import { createMemoryIntentQueue } from '../src/memoryIntentQueue.js';
import { createMemoryStore } from '../src/memoryStore.js';
import { QuiesceMetrics } from '../src/metrics.js';
import { silentLogger } from '../src/notifier.js';
import { resolveOptions } from '../src/options.js';
import type { QuiesceOptions } from '../src/types.js';
import type { MaintenanceWindow, Phase } from '../src/window.js';

export function engineContext(
  options: Omit<QuiesceOptions, 'clock'> & { instanceId: string; clock?: ManualClock },
): EngineContext & { clock: ManualClock } {
  const clock = options.clock ?? createManualClock();
  const resolved = resolveOptions(options);
  return {
    instanceId: resolved.instanceId,
    options: resolved,
    timing: resolved.timing,
    store: options.store ?? createMemoryStore(),
    queue: options.intentQueue ?? createMemoryIntentQueue({ clock }),
    clock,
    log: options.logger ?? silentLogger,
    auditLog: options.auditLog ?? createMemoryAuditLog(),
    metrics: new QuiesceMetrics({
      phase: () => null,
      readOnly: () => false,
      inFlight: () => 0,
      queueDepth: () => null,
      queueOldestAgeMs: () => null,
      stale: () => false,
    }),
    events: new EngineEmitter(silentLogger),
    inflight: new InFlightTracker(() => clock.now()),
    handlers: new Map(),
    life: { started: true, closed: false, work: new Set(), wake: new Set() },
  };
}

/** A window in `phase` with every field at its plain default; `extra` overrides any of them. */
export function testWindow(phase: Phase, extra: Partial<MaintenanceWindow> = {}): MaintenanceWindow {
  return {
    id: 'w',
    reason: 'r',
    message: 'm',
    startsAt: new Date(0).toISOString(),
    endsAt: null,
    phase,
    autoEnd: false,
    freezeVersion: null,
    frozenAt: null,
    endedAt: null,
    closedAt: null,
    stragglers: [],
    notices: {},
    report: {},
    ...extra,
  };
}
