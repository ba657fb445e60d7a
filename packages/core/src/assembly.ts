import { createMemoryAuditLog } from './audit.js';
import { Backfill } from './backfill.js';
import { createBypassCheck } from './bypass.js';
import { type Classifier, createClassifier } from './classifier.js';
import { systemClock } from './clock.js';
import { ClosingChecklist } from './closingChecklist.js';
import { background, canBackfill, type EngineContext } from './context.js';
import type { DeciderSettings } from './decider.js';
import { Drain } from './drain.js';
import { EscalationPolicy } from './escalation.js';
import { EngineEmitter } from './events.js';
import { Heartbeat } from './heartbeat.js';
import { InFlightTracker } from './inflight.js';
import { Intents } from './intents.js';
import { createMemoryIntentQueue } from './memoryIntentQueue.js';
import { createMemoryStore } from './memoryStore.js';
import { QuiesceMetrics } from './metrics.js';
import { Notices } from './notices.js';
import { silentLogger } from './notifier.js';
import { resolveOptions } from './options.js';
import { PhaseHooks } from './phaseHooks.js';
import { ReadHealthWatcher } from './readHealth.js';
import { DecisionRecorder } from './recorder.js';
import { StateReplica } from './replica.js';
import { resolveRetryAfterOptions } from './retryAfter.js';
import { Supervision } from './supervision.js';
import { Transitions } from './transition.js';
import type { QuiesceEngine, QuiesceOptions } from './types.js';
import { WindowController } from './windowController.js';
import { WindowTimer } from './windowTimer.js';

/** The engine's modules, wired to one another; the facade (engine.ts) delegates to them. */
export interface EngineParts {
  ctx: EngineContext;
  ownsStore: boolean;
  ownsQueue: boolean;
  classify: Classifier;
  decider: DeciderSettings;
  recorder: DecisionRecorder;
  health: ReadHealthWatcher;
  escalation: EscalationPolicy | null;
  replica: StateReplica;
  transitions: Transitions;
  notices: Notices;
  intents: Intents;
  hooks: PhaseHooks;
  drain: Drain;
  checklist: ClosingChecklist;
  backfill: Backfill;
  supervision: Supervision;
  controller: WindowController;
  windowTimer: WindowTimer;
  heartbeat: Heartbeat;
}

/**
 * Build the modules for `engine` from its options (defaults applied once, in options.ts). Modules
 * that call each other in a cycle (the replica drives the controller's work, which writes states
 * the replica applies) get arrow functions, resolved when first called.
 */
export function assemble(options: QuiesceOptions, engine: QuiesceEngine): EngineParts {
  const resolved = resolveOptions(options);
  const clock = options.clock ?? systemClock;
  const log = options.logger ?? silentLogger;
  const store = options.store ?? createMemoryStore();
  const queue = options.intentQueue ?? createMemoryIntentQueue({ clock });
  const inflight = new InFlightTracker(() => clock.now());
  // Modules built below; the closures that name them run only after assemble() returns.
  const p = {} as EngineParts;
  const metrics = new QuiesceMetrics({
    phase: () => p.replica.state.window?.phase ?? null,
    readOnly: () => p.replica.view.readOnly,
    inFlight: () => inflight.count,
    queueDepth: () => p.heartbeat.queueStats?.depth ?? null,
    queueOldestAgeMs: () => p.heartbeat.queueStats?.oldestAgeMs ?? null,
    stale: () => p.replica.fallback !== null,
  });
  const events = new EngineEmitter(log);
  const ctx: EngineContext = {
    instanceId: resolved.instanceId,
    options: resolved,
    timing: resolved.timing,
    store,
    queue,
    clock,
    log,
    auditLog: options.auditLog ?? createMemoryAuditLog(),
    metrics,
    events,
    inflight,
    handlers: new Map(),
    life: { started: false, closed: false, work: new Set(), wake: new Set() },
  };
  const state = () => p.replica.state;
  const notify: Notices['notify'] = (kind, w) => p.notices.notify(kind, w);
  const drive = () => p.supervision.drive();
  // Tell the controller at once when the last write of a freezing instance finishes.
  inflight.onDone = () => {
    if (inflight.count === 0 && state().window?.phase === 'freezing')
      background(ctx, () => p.heartbeat.beat(false, true));
  };
  Object.assign(p, {
    ctx,
    ownsStore: !options.store,
    ownsQueue: !options.intentQueue,
    classify: createClassifier(options.rules),
    decider: {
      bypass: createBypassCheck(options.bypass),
      retry: resolveRetryAfterOptions(options.retryAfter),
      refusalStatus: resolved.settings.refusalStatus,
      dryRun: resolved.settings.dryRun,
    },
    recorder: new DecisionRecorder(metrics, log, events),
  });
  p.replica = new StateReplica(ctx, {
    runPhaseHooks: (phase, w) => p.hooks.runPhase(phase, w),
    readsInWindow: (inWindow) => p.health.setWindow(inWindow),
    writesStopped: () => p.backfill.stop(),
    applied: (next, prevPhase) => {
      p.supervision.applied(next);
      const phase = next.window?.phase ?? null;
      if (phase === 'backfilling' && phase !== prevPhase && canBackfill(ctx) && ctx.life.started)
        background(ctx, () => p.backfill.share(next.window!.id));
      p.windowTimer.arm();
      // Acknowledge at once only while a controller waits for it (a freeze or a thaw being confirmed);
      // any other version rides on the next heartbeat. Nobody else hears of it.
      if (ctx.life.started && (phase === 'freezing' || phase === 'thawing'))
        background(ctx, () => p.heartbeat.beat(false, true));
      drive();
    },
  });
  const transitions = new Transitions(ctx, {
    apply: (s) => p.replica.apply(s),
    synced: () => p.replica.synced(),
  });
  p.transitions = transitions;
  p.notices = new Notices(ctx, {
    currentWindow: () => state().window,
    updateWindow: (id, patch) => transitions.updateWindow(id, patch),
  });
  p.intents = new Intents(ctx, {
    currentWindow: () => state().window,
    fenced: () => p.replica.fenced,
    backfillDue: () => p.backfill.due(),
  });
  p.hooks = new PhaseHooks({
    clock,
    log,
    currentWindow: () => state().window,
    on: (event, listener) => events.on(event, listener),
  });
  const drain = new Drain(ctx, { state, ackedVersion: () => p.replica.ackedVersion, transitions });
  p.drain = drain;
  const readHealth = () => p.health.report();
  const checklist = new ClosingChecklist(ctx, { state, transitions, drain, notify, readHealth });
  p.checklist = checklist;
  p.backfill = new Backfill(ctx, {
    state,
    readOnly: () => p.replica.view.readOnly,
    track: (op) => inflight.track(op),
    announce: () => p.heartbeat.beat(false, true),
    drive,
    drain,
    checklist,
  });
  p.controller = new WindowController(ctx, {
    start: () => engine.start(),
    state,
    transitions,
    drain,
    notify,
    drive,
    beforeThaw: (w) => p.hooks.runBeforeThaw(w),
  });
  p.supervision = new Supervision(ctx, {
    state,
    readOnly: () => p.replica.view.readOnly,
    announcing: () => p.controller.announcing,
    transitions,
    drain,
    checklist,
    backfill: p.backfill,
  });
  p.windowTimer = new WindowTimer({
    clock,
    log,
    window: () => state().window,
    start: (id) => p.controller.startScheduled(id),
    end: () => p.controller.end({ actor: 'schedule', reason: 'window reached its end time' }),
  });
  p.heartbeat = new Heartbeat(ctx, {
    replica: p.replica,
    tick: () => p.supervision.tick(),
    backfillShare: () => p.backfill.mine,
    stopBackfill: () => p.backfill.stop(),
  });
  // ---- escalation policy (#18): the policy lives in escalation.ts; the engine lends it a compare-and-set.
  p.escalation = options.escalation
    ? new EscalationPolicy(options.escalation, {
        engine,
        clock,
        log,
        transition: (reason, mutate) =>
          transitions.transition(
            { action: 'notice', actor: 'escalation', reason, audit: reason !== undefined },
            mutate,
          ),
      })
    : null;
  const readHealthOptions = options.escalation ? { repeat: true, ...options.readHealth } : options.readHealth;
  // ---- end escalation policy
  p.health = new ReadHealthWatcher(readHealthOptions, (report) => {
    log.warn('quiesce: reads degraded during the window', { reasons: report.reasons });
    events.emit('escalate', report);
    void p.escalation?.onEscalate(report); // #18
  });
  return p;
}
