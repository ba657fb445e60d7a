import { hostname } from 'node:os';
import { type AuditEntry, type AuditLog, createMemoryAuditLog } from './audit.js';
import { Backfill } from './backfill.js';
import { createBypassCheck } from './bypass.js';
import { type Classifier, type ClassifyResult, createClassifier } from './classifier.js';
import { type Clock, systemClock } from './clock.js';
import { ClosingChecklist } from './closingChecklist.js';
import { recordReadHealth } from './closingRecord.js';
import type { EngineContext } from './context.js';
import {
  type DeciderSettings,
  type DecisionNote,
  decide,
  LEASE_LAPSED,
  type RefusalTemplate,
} from './decider.js';
import { Drain } from './drain.js';
import { EscalationPolicy } from './escalation.js'; // #18
import { EngineEmitter, errorMessage, iso } from './events.js';
import { guardJob, guardTool, type JobGuardHost } from './guards.js';
import { InFlightTracker } from './inflight.js';
import type { IntentHandler, IntentQueue, IntentStats, IntentStatus, ReplayReport } from './intentQueue.js';
import { Intents } from './intents.js';
import { Inventory, type InventoryEntry } from './inventory.js';
import { expired } from './lease.js';
import { createMemoryIntentQueue } from './memoryIntentQueue.js';
import { createMemoryStore } from './memoryStore.js';
import { QuiesceMetrics } from './metrics.js';
import { Notices } from './notices.js';
import { type Logger, type Notifier, silentLogger } from './notifier.js';
import type { Decision, Operation } from './operation.js';
import { resolveOptions, type Timing } from './options.js';
import { PhaseHooks } from './phaseHooks.js';
import { ReadHealthWatcher } from './readHealth.js';
import { DecisionRecorder } from './recorder.js';
import { resolveRetryAfterOptions } from './retryAfter.js';
import type { InstanceRecord, StateStore } from './store.js';
import { Supervision } from './supervision.js';
import { Transitions } from './transition.js';
import type {
  EngineEvents,
  EngineSettings,
  EngineStatus,
  GuardJobOptions,
  GuardToolOptions,
  InFlightHandle,
  InstanceStatus,
  QuiesceEngine,
  QuiesceOptions,
  ReadOutcome,
  StoreFallback,
  ToolRefusal,
} from './types.js';
import {
  type BeginInput,
  type EndInput,
  type ExtendInput,
  INITIAL_STATE,
  type MaintenanceWindow,
  type Phase,
  type QuiesceState,
  type ScheduleInput,
} from './window.js';
import { WindowController } from './windowController.js';
import { MAX_TIMER_MS, WindowTimer } from './windowTimer.js';

export function createQuiesce(options: QuiesceOptions = {}): QuiesceEngine {
  const engine = new Engine(options);
  // record (#13): each instance adds its read-health summary at the thaw, and each state change
  // (who/when/why) to the window's closing record.
  const recordError = (err: Error) =>
    options.logger?.warn?.('quiesce: closing record', { error: err.message });
  recordReadHealth(engine, recordError);
  return engine;
}

class Engine implements QuiesceEngine {
  readonly instanceId: string;
  readonly options: EngineSettings;

  readonly #store: StateStore;
  readonly #ownsStore: boolean;
  readonly #queue: IntentQueue;
  /** conform (#15): keys whose first enqueue is still being stored (a second one meanwhile is 409). */
  readonly #ownsQueue: boolean;
  readonly #clock: Clock;
  readonly #classify: Classifier;
  readonly #decider: DeciderSettings;
  readonly #note: DecisionNote = { bypass: null };
  readonly #recorder: DecisionRecorder;
  readonly #ctx: EngineContext;
  readonly #tx: Transitions;
  readonly #notices: Notices;
  readonly #intents: Intents;
  readonly #hooks: PhaseHooks;
  readonly #drain: Drain;
  readonly #checklist: ClosingChecklist;
  readonly #backfills: Backfill;
  readonly #supervision: Supervision;
  readonly #controller: WindowController;
  readonly #windowTimer: WindowTimer;
  readonly #log: Logger;
  readonly #auditLog: AuditLog;
  readonly #notifiers: readonly Notifier[];
  readonly #metrics: QuiesceMetrics;
  readonly #health: ReadHealthWatcher;
  readonly #escalation: EscalationPolicy | null; // #18
  readonly #inventory = new Inventory();
  readonly #inflight: InFlightTracker;
  readonly #handlers = new Map<string, IntentHandler>();
  readonly #events: EngineEmitter;
  readonly #writableListeners = new Set<() => void>();
  readonly #participant: boolean;
  readonly #o: Readonly<Timing>;
  /** True when this engine holds a lease: a participant on a registry it may share with others. */
  readonly #leased: boolean;
  readonly #statusUrl: (id: string) => string;
  readonly #generateId: () => string;
  readonly #startedAt: string;

  #state: QuiesceState = INITIAL_STATE;
  /** What decide() reads: read-only flag, lease (its own clock; Infinity when it holds none), refusal. */
  readonly #view: { readOnly: boolean; leaseUntil: number; template: RefusalTemplate | null } = {
    readOnly: false,
    leaseUntil: Number.POSITIVE_INFINITY,
    template: null,
  };
  #fallback: StoreFallback | null = null;
  #lastSync: number;
  #storeError: string | null = null;
  #ackedVersion = 0;
  #applyChain: Promise<void> = Promise.resolve();
  #started: Promise<void> | null = null;
  #unsubscribe: (() => void) | null = null;
  #heartbeatTimer: unknown = null;
  #queueStats: IntentStats | null = null;
  #fenced = false;
  #fenceTimer: unknown = null;

  constructor(options: QuiesceOptions) {
    const resolved = resolveOptions(options);
    this.#clock = options.clock ?? systemClock;
    this.#store = options.store ?? createMemoryStore();
    this.#ownsStore = !options.store;
    this.#queue = options.intentQueue ?? createMemoryIntentQueue();
    this.#ownsQueue = !options.intentQueue;
    this.#classify = createClassifier(options.rules);
    this.#log = options.logger ?? silentLogger;
    this.#events = new EngineEmitter(this.#log);
    this.#auditLog = options.auditLog ?? createMemoryAuditLog();
    this.#notifiers = resolved.notifiers;
    this.options = resolved.settings;
    this.#decider = {
      bypass: createBypassCheck(options.bypass),
      retry: resolveRetryAfterOptions(options.retryAfter),
      refusalStatus: resolved.settings.refusalStatus,
      dryRun: resolved.settings.dryRun,
    };
    this.#participant = resolved.participant;
    this.#leased = resolved.leased;
    // Fail closed: a leased instance starts writes only once it has seen the store and renewed its lease.
    if (this.#leased) this.#view.leaseUntil = Number.NEGATIVE_INFINITY;
    this.#o = resolved.timing;
    this.#statusUrl = resolved.statusUrl;
    this.#generateId = resolved.generateId;
    this.instanceId = resolved.instanceId;
    this.#inflight = new InFlightTracker(() => this.#clock.now());
    this.#lastSync = this.#clock.now();
    this.#startedAt = iso(this.#clock.now());
    this.#metrics = new QuiesceMetrics({
      phase: () => this.phase,
      readOnly: () => this.#view.readOnly,
      inFlight: () => this.#inflight.count,
      queueDepth: () => this.#queueStats?.depth ?? null,
      queueOldestAgeMs: () => this.#queueStats?.oldestAgeMs ?? null,
      stale: () => this.#fallback !== null,
    });
    this.#recorder = new DecisionRecorder(this.#metrics, this.#log, this.#events);
    this.#ctx = {
      instanceId: this.instanceId,
      options: resolved,
      timing: resolved.timing,
      store: this.#store,
      queue: this.#queue,
      clock: this.#clock,
      log: this.#log,
      auditLog: this.#auditLog,
      metrics: this.#metrics,
      events: this.#events,
      inflight: this.#inflight,
      handlers: this.#handlers,
      life: { started: false, closed: false },
    };
    this.#tx = new Transitions(this.#ctx, {
      apply: (s) => this.#enqueueApply(s),
      synced: () => {
        this.#lastSync = this.#clock.now();
      },
    });
    this.#notices = new Notices(this.#ctx, {
      currentWindow: () => this.#state.window,
      updateWindow: (id, patch) => this.#tx.updateWindow(id, patch),
    });
    this.#drain = new Drain(this.#ctx, {
      state: () => this.#state,
      ackedVersion: () => this.#ackedVersion,
      transitions: this.#tx,
    });
    this.#checklist = new ClosingChecklist(this.#ctx, {
      state: () => this.#state,
      transitions: this.#tx,
      drain: this.#drain,
      notify: (kind, w) => this.#notices.notify(kind, w),
      readHealth: () => this.#health.report(),
    });
    this.#backfills = new Backfill(this.#ctx, {
      state: () => this.#state,
      readOnly: () => this.#view.readOnly,
      track: (op) => this.track(op),
      announce: () => this.#heartbeat(false, true),
      drive: () => this.#supervision.drive(),
      drain: this.#drain,
      checklist: this.#checklist,
    });
    this.#supervision = new Supervision(this.#ctx, {
      state: () => this.#state,
      readOnly: () => this.#view.readOnly,
      announcing: () => this.#controller.announcing,
      transitions: this.#tx,
      drain: this.#drain,
      checklist: this.#checklist,
      backfill: this.#backfills,
    });
    this.#controller = new WindowController(this.#ctx, {
      start: () => this.start(),
      state: () => this.#state,
      transitions: this.#tx,
      drain: this.#drain,
      notify: (kind, w) => this.#notices.notify(kind, w),
      drive: () => this.#supervision.drive(),
      beforeThaw: (w) => this.#hooks.runBeforeThaw(w),
    });
    this.#windowTimer = new WindowTimer({
      clock: this.#clock,
      log: this.#log,
      window: () => this.#state.window,
      start: (id) => this.#controller.startScheduled(id),
      end: () => this.#controller.end({ actor: 'schedule', reason: 'window reached its end time' }),
    });
    this.#hooks = new PhaseHooks({
      clock: this.#clock,
      log: this.#log,
      currentWindow: () => this.#state.window,
      on: (event, listener) => this.#events.on(event, listener),
    });
    this.#intents = new Intents(this.#ctx, {
      currentWindow: () => this.#state.window,
      fenced: () => this.#fenced,
      backfillDue: () => this.#backfills.due(),
    });
    // ---- escalation policy (#18): the policy lives in escalation.ts; the engine lends it a compare-and-set.
    this.#escalation = options.escalation
      ? new EscalationPolicy(options.escalation, {
          engine: this,
          clock: this.#clock,
          log: this.#log,
          transition: (reason, mutate) =>
            this.#tx.transition(
              { action: 'notice', actor: 'escalation', reason, audit: reason !== undefined },
              mutate,
            ),
        })
      : null;
    const readHealth = options.escalation ? { repeat: true, ...options.readHealth } : options.readHealth;
    // ---- end escalation policy
    this.#health = new ReadHealthWatcher(readHealth, (report) => {
      this.#log.warn('quiesce: reads degraded during the window', { reasons: report.reasons });
      this.#emit('escalate', report);
      void this.#escalation?.onEscalate(report); // #18
    });
    // Start at once so decisions reflect the store as soon as possible; `await start()` to wait.
    void this.start().catch((err) => this.#log.error('quiesce: start failed', { error: errorMessage(err) }));
  }

  // ---------------------------------------------------------------- accessors

  get state(): QuiesceState {
    return this.#state;
  }
  get window(): MaintenanceWindow | null {
    return this.#state.window;
  }
  get phase(): Phase | null {
    return this.#state.window?.phase ?? null;
  }
  get clock(): Clock {
    return this.#clock;
  }
  get readOnly(): boolean {
    return this.#view.readOnly;
  }

  // ---------------------------------------------------------------- lifecycle

  start(): Promise<void> {
    this.#ctx.life.started = true;
    this.#started ??= (async () => {
      try {
        const s = await this.#store.read();
        this.#lastSync = this.#clock.now();
        await this.#enqueueApply(s);
      } catch (err) {
        this.#storeError = errorMessage(err);
        this.#log.error('quiesce: could not read the state store at start; keeping the last known state', {
          error: this.#storeError,
        });
      }
      this.#unsubscribe = this.#store.subscribe(
        (s) => {
          this.#lastSync = this.#clock.now();
          void this.#enqueueApply(s);
        },
        (err) => {
          this.#storeError = err.message;
          this.#log.warn('quiesce: store feed error', { error: err.message });
        },
      );
      await this.#heartbeat();
      this.#scheduleHeartbeat();
    })();
    return this.#started;
  }

  async close(): Promise<void> {
    if (this.#ctx.life.closed) return;
    this.#ctx.life.closed = true;
    this.#clock.clearTimeout(this.#heartbeatTimer);
    this.#windowTimer.close();
    this.#clock.clearTimeout(this.#fenceTimer);
    this.#backfills.close();
    this.#escalation?.close(); // #18
    // Notifiers stop retrying at once (a dead endpoint must not hold the shutdown for its whole budget).
    const noticesClosed = this.#notices.close();
    this.#unsubscribe?.();
    if (this.#participant && this.#store.registry)
      await this.#store.registry.remove(this.instanceId).catch(() => {});
    this.#emit('close');
    await noticesClosed;
    if (this.#ownsQueue) await this.#queue.close();
    if (this.#ownsStore) await this.#store.close();
    this.#events.clear();
  }

  // ---------------------------------------------------------------- the hot path

  decide(op: Operation): Decision {
    const c = this.#classify(op);
    let d = decide(c, op, this.#view, this.#clock, this.#decider, this.#note);
    if (d === LEASE_LAPSED) {
      this.#fence();
      d = decide(c, op, this.#view, this.#clock, this.#decider, this.#note) as Decision;
    }
    if (DecisionRecorder.records(d)) this.#recorder.record(d, op, this.#note);
    return d;
  }

  classify(op: Operation): ClassifyResult {
    return this.#classify(op);
  }

  track(op: Operation): InFlightHandle {
    // One shared hook, set on the first write, instead of a wrapping handle and closure per write:
    // tell the controller at once when the last write of a freezing instance finishes.
    this.#inflight.onDone ??= () => {
      if (this.#inflight.count === 0 && this.phase === 'freezing') void this.#heartbeat(false, true);
    };
    return this.#inflight.track(op);
  }

  reportRead(outcome: ReadOutcome): void {
    this.#health.record(outcome.durationMs, outcome.error, outcome.signals); // signals: #18
    this.#metrics.read(outcome.surface, outcome.durationMs, outcome.error, this.#view.readOnly);
    if (outcome.signals !== undefined) this.#metrics.readSignals(outcome.signals, this.#view.readOnly); // #18
  }

  // ---------------------------------------------------------------- windows

  begin(input: BeginInput): Promise<MaintenanceWindow> {
    return this.#controller.begin(input);
  }

  schedule(input: ScheduleInput): Promise<MaintenanceWindow> {
    return this.#controller.schedule(input);
  }

  extend(input: ExtendInput): Promise<MaintenanceWindow> {
    return this.#controller.extend(input);
  }

  end(input?: EndInput): Promise<MaintenanceWindow> {
    return this.#controller.end(input);
  }

  addToReport(key: string, value: unknown): Promise<void> {
    return this.#controller.addToReport(key, value);
  }

  // ---------------------------------------------------------------- applying state

  #enqueueApply(s: QuiesceState): Promise<void> {
    const run = this.#applyChain.then(() => this.#apply(s));
    this.#applyChain = run.catch((err) =>
      this.#log.error('quiesce: applying state failed', { error: errorMessage(err) }),
    );
    return this.#applyChain;
  }

  async #apply(next: QuiesceState): Promise<void> {
    const prev = this.#state;
    // Versions only grow; anything not newer was applied already (initial state excepted).
    if (next.version <= prev.version && prev !== INITIAL_STATE) return;
    this.#state = next;
    const wasReadOnly = this.#view.readOnly;
    this.#recompute();
    this.#supervision.applied(next);
    this.#emit('state', next, prev);
    const prevPhase = prev.window?.id === next.window?.id ? (prev.window?.phase ?? null) : null;
    const phase = next.window?.phase ?? null;
    if (phase !== prevPhase || prev.window?.id !== next.window?.id) {
      if (next.window && phase && phase !== prevPhase) await this.#hooks.runPhase(phase, next.window);
      this.#emit('phase', phase, next.window, prevPhase);
    }
    if (this.#view.readOnly && !wasReadOnly) this.#backfills.stop();
    if (
      phase === 'backfilling' &&
      phase !== prevPhase &&
      this.#participant &&
      this.#handlers.size > 0 &&
      this.#started
    ) {
      void this.#backfills.share(next.window!.id);
    }
    if (!this.#view.readOnly && wasReadOnly) for (const l of this.#writableListeners) l();
    this.#windowTimer.arm();
    this.#ackedVersion = next.version;
    // Acknowledge at once only while a controller waits for it (a freeze or a thaw being confirmed);
    // any other version rides on the next heartbeat. Nobody else hears of it.
    if (this.#started && (phase === 'freezing' || phase === 'thawing')) void this.#heartbeat(false, true);
    this.#supervision.drive();
  }

  #recompute(): void {
    const w = this.#state.window;
    let readOnly = this.#state.mode === 'read-only';
    if (this.#fallback === 'read-only') readOnly = true;
    else if (this.#fallback === 'read-write') readOnly = false;
    // Whatever the fallback says: without a lease this instance starts no write.
    const fenced = this.#fenced || this.#view.leaseUntil === Number.NEGATIVE_INFINITY;
    if (fenced) readOnly = true;
    this.#view.readOnly = readOnly;
    if (!readOnly) {
      this.#view.template = null;
      this.#health.setWindow(false);
      return;
    }
    this.#health.setWindow(true);
    this.#view.template =
      w && this.#state.mode === 'read-only'
        ? {
            windowId: w.id,
            endsAt: w.endsAt,
            endsAtMs: w.endsAt ? Date.parse(w.endsAt) : null,
            message: w.message,
            // A fenced instance refuses every surface: it cannot know the window is still scoped so.
            scope: !fenced && w.scope && w.scope.length > 0 ? new Set(w.scope) : null,
          }
        : fenced
          ? {
              windowId: 'lease-expired',
              endsAt: null,
              endsAtMs: null,
              message:
                'Writes are paused: this instance cannot confirm the maintenance state with the others.',
              scope: null,
            }
          : {
              windowId: 'store-unavailable',
              endsAt: null,
              endsAtMs: null,
              message: 'Writes are paused: the maintenance state could not be confirmed.',
              scope: null,
            };
  }

  onPhase(phase: Phase, hook: (window: MaintenanceWindow) => unknown): () => void {
    return this.#hooks.onPhase(phase, hook);
  }

  beforeThaw(hook: (window: MaintenanceWindow) => unknown): () => void {
    return this.#hooks.beforeThaw(hook);
  }

  backfill(): Promise<ReplayReport> {
    return this.#backfills.run(() => {});
  }

  // ---------------------------------------------------------------- heartbeat, poll, fallback

  #scheduleHeartbeat(): void {
    if (this.#ctx.life.closed) return;
    // ±10% jitter: a fleet started together does not heartbeat in lockstep.
    const delay = Math.round(this.#o.heartbeatMs * (0.9 + 0.2 * Math.random()));
    this.#heartbeatTimer = this.#clock.setTimeout(async () => {
      await this.#heartbeat();
      await this.#supervision
        .tick()
        .catch((err) => this.#log.error('quiesce: window supervision failed', { error: errorMessage(err) }));
      this.#scheduleHeartbeat();
    }, delay);
  }

  /** The record this instance publishes: its lease, acknowledged version, in-flight writes, backfill share. */
  #record(sentAt: number): InstanceRecord {
    const oldest = this.#inflight.oldest();
    return {
      id: this.instanceId,
      host: hostname(),
      pid: process.pid,
      startedAt: this.#startedAt,
      lastSeen: sentAt,
      leaseUntil: sentAt + this.#o.leaseTtlMs,
      ackedVersion: this.#ackedVersion,
      inFlight: this.#inflight.count,
      ...(oldest ? { oldestOperation: oldest.name, oldestSince: oldest.since } : {}),
      ...(this.#handlers.size > 0 ? { replays: true } : {}),
      ...(this.#backfills.mine ? { backfill: { ...this.#backfills.mine } } : {}),
    };
  }

  /**
   * Poll the store (the safety net for missed notifications), then renew this instance's lease.
   * `announce` tells a controller waiting on acknowledgements (freezing, thawing, a finished
   * backfill); a plain heartbeat does not (nobody waits for it).
   */
  async #heartbeat(poll = true, announce = false): Promise<void> {
    if (this.#ctx.life.closed) return;
    const sentAt = this.#clock.now();
    let sawStore = !poll;
    const registry = this.#store.registry;
    // One round trip where the store offers it (a read and the renewal in one statement).
    const combined =
      poll && !announce && this.#participant && registry && this.#store.heartbeat
        ? this.#store.heartbeat.bind(this.#store)
        : null;
    if (poll) {
      try {
        const s = combined ? await combined(this.#record(sentAt)) : await this.#store.read();
        this.#lastSync = this.#clock.now();
        this.#storeError = null;
        sawStore = true;
        if (this.#fallback !== null) this.#recover();
        await this.#enqueueApply(s);
      } catch (err) {
        this.#storeError = errorMessage(err);
        if (this.#fallback === null && this.#clock.now() - this.#lastSync > this.#o.stalenessMs)
          this.#applyFallback();
      }
      this.#queueStats = await this.#queue.stats().catch(() => this.#queueStats);
    }
    if (!registry || !this.#participant) return;
    if (!combined) {
      try {
        await registry.upsert(this.#record(sentAt), { announce });
      } catch (err) {
        this.#storeError = errorMessage(err);
        return;
      }
    }
    if (!sawStore || !this.#leased) return;
    // A lease that held until now is extended: its record was in the registry the whole time, so a
    // controller either saw this instance or saw the state it read. The lease runs from before the
    // read: whatever the store said then, this instance has applied.
    if (this.#clock.now() <= this.#view.leaseUntil) {
      this.#renewLease(sentAt + this.#o.leaseTtlMs);
      return;
    }
    // A lapsed (or first) lease is granted only after the record is in place *and* the state was
    // read after it: a controller that listed the registry before the record landed began its window
    // before this read, so this instance sees that window and refuses.
    try {
      const s = await this.#store.read();
      this.#lastSync = this.#clock.now();
      await this.#enqueueApply(s);
    } catch (err) {
      this.#storeError = errorMessage(err);
      return;
    }
    this.#renewLease(sentAt + this.#o.leaseTtlMs);
  }

  #renewLease(until: number): void {
    if (this.#ctx.life.closed || until <= this.#view.leaseUntil) return;
    const wasFenced = this.#fenced || this.#view.leaseUntil === Number.NEGATIVE_INFINITY;
    this.#view.leaseUntil = until;
    if (wasFenced && this.#clock.now() <= until) {
      const announced = this.#fenced;
      this.#fenced = false;
      const wasReadOnly = this.#view.readOnly;
      this.#recompute();
      if (announced) {
        this.#log.info('quiesce: lease renewed; this instance may start writes again');
        this.#emit('unfenced', { at: iso(this.#clock.now()) });
        void this.#auditLog.append(this.#selfAudit('lease', 'lease renewed; writes allowed again'));
      }
      if (wasReadOnly && !this.#view.readOnly) for (const l of this.#writableListeners) l();
    }
    this.#clock.clearTimeout(this.#fenceTimer);
    this.#fenceTimer = this.#clock.setTimeout(
      () => {
        if (this.#clock.now() > this.#view.leaseUntil) this.#fence();
      },
      Math.min(MAX_TIMER_MS, Math.max(0, until - this.#clock.now() + 1)),
    );
  }

  /** The lease lapsed: start no write (whatever the fallback says) until it is renewed. */
  #fence(): void {
    if (this.#fenced || this.#ctx.life.closed) return;
    this.#fenced = true;
    this.#recompute();
    this.#backfills.stop();
    const leaseUntil = Number.isFinite(this.#view.leaseUntil) ? iso(this.#view.leaseUntil) : null;
    this.#metrics.fallback('read-only');
    this.#log.error(
      'quiesce: lease expired (the store could not be reached to renew it); this instance starts no write until it renews it',
      { leaseUntil, error: this.#storeError },
    );
    this.#emit('fenced', { at: iso(this.#clock.now()), leaseUntil });
    void this.#auditLog.append(this.#selfAudit('lease', `lease expired at ${leaseUntil}; writes refused`));
  }

  #applyFallback(): void {
    const fallback = this.#o.storeFallback;
    this.#fallback = fallback;
    this.#metrics.fallback(fallback);
    const since = iso(this.#lastSync);
    this.#log.error(
      `quiesce: state store unreachable for over ${this.#o.stalenessMs} ms; applying fallback "${fallback}"`,
      { error: this.#storeError, since },
    );
    this.#recompute();
    this.#emit('store-fallback', { fallback, since, error: this.#storeError });
    void this.#auditLog.append(this.#selfAudit('fallback', `store unreachable; fallback ${fallback}`));
  }

  #recover(): void {
    this.#fallback = null;
    this.#recompute();
    this.#log.info('quiesce: state store reachable again; fallback lifted');
    this.#emit('store-recovered', { at: iso(this.#clock.now()) });
    void this.#auditLog.append(this.#selfAudit('recover', 'store reachable again'));
  }

  #selfAudit(action: AuditEntry['action'], reason: string): AuditEntry {
    const s = this.#state;
    const phase = s.window?.phase ?? null;
    return {
      at: iso(this.#clock.now()),
      actor: this.instanceId,
      action,
      reason,
      windowId: s.window?.id ?? null,
      from: { mode: s.mode, phase },
      to: { mode: this.#view.readOnly ? 'read-only' : 'read-write', phase },
      version: s.version,
    };
  }

  // ---------------------------------------------------------------- waiting

  waitForPhase(phase: Phase, options?: { timeoutMs?: number }): Promise<MaintenanceWindow> {
    return this.#hooks.waitForPhase(phase, options);
  }

  // ---------------------------------------------------------------- intents

  enqueue(op: Operation, payload: unknown, options?: { name?: string }) {
    return this.#intents.enqueue(op, payload, options);
  }

  getIntent(id: string) {
    return this.#intents.get(id);
  }

  listIntents(options?: { status?: IntentStatus; limit?: number }) {
    return this.#intents.list(options);
  }

  handle(name: string, handler: IntentHandler): void {
    this.#intents.handle(name, handler);
  }

  // ---------------------------------------------------------------- inventory and guards

  register(entry: InventoryEntry): void {
    this.#inventory.register(entry);
  }

  inventory(): InventoryEntry[] {
    return this.#inventory.list();
  }

  guardTool<A extends unknown[], R>(
    name: string,
    fn: (...args: A) => R | Promise<R>,
    options?: GuardToolOptions,
  ): (...args: A) => Promise<R | ToolRefusal> {
    return guardTool(this, name, fn, options);
  }

  guardJob<A extends unknown[]>(
    name: string,
    fn: (...args: A) => unknown,
    options?: GuardJobOptions,
  ): (...args: A) => Promise<void> {
    return guardJob(this, this.#jobHost, name, fn, options);
  }

  get #jobHost(): JobGuardHost {
    return {
      log: this.#log,
      onWritable: (l) => {
        this.#writableListeners.add(l);
        return () => this.#writableListeners.delete(l);
      },
    };
  }

  // ---------------------------------------------------------------- status, audit, events

  async status(): Promise<EngineStatus> {
    await this.start();
    const now = this.#clock.now();
    const instances: InstanceStatus[] = [];
    const registry = this.#store.registry;
    if (registry) {
      try {
        for (const r of await registry.list()) {
          instances.push({ ...r, live: !expired(r, now, this.#o), self: r.id === this.instanceId });
        }
      } catch (err) {
        this.#storeError = errorMessage(err);
      }
    }
    if (this.#participant && !instances.some((i) => i.self)) {
      const oldest = this.#inflight.oldest();
      instances.push({
        id: this.instanceId,
        host: hostname(),
        pid: process.pid,
        startedAt: this.#startedAt,
        lastSeen: now,
        ackedVersion: this.#ackedVersion,
        inFlight: this.#inflight.count,
        ...(oldest ? { oldestOperation: oldest.name, oldestSince: oldest.since } : {}),
        live: true,
        self: true,
      });
    }
    const oldest = this.#inflight.oldest();
    this.#queueStats = await this.#queue.stats().catch(() => this.#queueStats);
    return {
      instanceId: this.instanceId,
      state: this.#state,
      phase: this.phase,
      readOnly: this.#view.readOnly,
      dryRun: this.options.dryRun,
      store: {
        kind: this.#store.kind,
        healthy: this.#storeError === null,
        lastSyncAt: iso(this.#lastSync),
        fallback: this.#fallback,
        lastError: this.#storeError,
      },
      inFlight: {
        count: this.#inflight.count,
        oldest: oldest ? { name: oldest.name, since: iso(oldest.since) } : null,
      },
      lease: {
        held: this.#leased,
        until: Number.isFinite(this.#view.leaseUntil) ? iso(this.#view.leaseUntil) : null,
        fenced: this.#leased && (this.#fenced || this.#view.leaseUntil === Number.NEGATIVE_INFINITY),
        ttlMs: this.#o.leaseTtlMs,
        clockSkewMs: this.#o.clockSkewMs,
      },
      instances,
      queuedOutsideWindow: this.#intents.queuedOutsideWindow,
      counters: structuredClone(this.#metrics.counts),
      queue: this.#queueStats,
      backfill: this.#backfills.progress,
      readHealth: this.#health.report(),
    };
  }

  audit(options?: { limit?: number; windowId?: string }): Promise<AuditEntry[]> {
    return this.#auditLog.list(options);
  }

  on<E extends keyof EngineEvents>(event: E, listener: (...args: EngineEvents[E]) => void): () => void {
    return this.#events.on(event, listener);
  }

  #emit<E extends keyof EngineEvents>(event: E, ...args: EngineEvents[E]): void {
    this.#events.emit(event, ...args);
  }
}
