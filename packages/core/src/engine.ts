import { hostname } from 'node:os';
import { type AuditEntry, type AuditLog, createMemoryAuditLog } from './audit.js';
import { createBypassCheck } from './bypass.js';
import { type Checklist, emptyChecklist } from './checklist.js';
import { type Classifier, type ClassifyResult, createClassifier } from './classifier.js';
import { type Clock, systemClock } from './clock.js';
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
import { QuiesceError } from './errors.js';
import { EscalationPolicy } from './escalation.js'; // #18
import { EngineEmitter, errorMessage, iso } from './events.js';
import { guardJob, guardTool, type JobGuardHost } from './guards.js';
import { InFlightTracker } from './inflight.js';
import type {
  IntentHandler,
  IntentQueue,
  IntentStats,
  IntentStatus,
  ReplayProgress,
  ReplayReport,
} from './intentQueue.js';
import { Intents } from './intents.js';
import { Inventory, type InventoryEntry } from './inventory.js';
import { expired, leaseOf } from './lease.js';
import { createMemoryIntentQueue } from './memoryIntentQueue.js';
import { createMemoryStore } from './memoryStore.js';
import { QuiesceMetrics } from './metrics.js';
import { Notices } from './notices.js';
import { type Logger, type Notifier, silentLogger } from './notifier.js';
import type { Decision, Operation } from './operation.js';
import { resolveOptions, type Timing } from './options.js';
import { PhaseHooks } from './phaseHooks.js';
import { advance, modeOf, openWindowId, requirePhase } from './phases.js';
import { ReadHealthWatcher } from './readHealth.js';
import { DecisionRecorder } from './recorder.js';
import { resolveRetryAfterOptions } from './retryAfter.js';
import type { InstanceBackfill, InstanceRecord, StateStore } from './store.js';
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
  beginInputSchema,
  type EndInput,
  type ExtendInput,
  endInputSchema,
  extendInputSchema,
  INITIAL_STATE,
  isReadOnlyPhase,
  type MaintenanceWindow,
  type Phase,
  parseOrThrow,
  type QuiesceState,
  type ScheduleInput,
  type Straggler,
  scheduleInputSchema,
} from './window.js';

const MAX_TIMER_MS = 2 ** 31 - 1;
/** The driver writes backfill progress into the state at most this often (every write reaches every instance). */
const PROGRESS_EVERY_MS = 1000;
const OPEN_PHASES = new Set<Phase>(['freezing', 'frozen', 'thawing', 'backfilling']);

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
  readonly #replayOptions: NonNullable<QuiesceOptions['replay']>;

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
  #windowTimer: unknown = null;
  #windowTimerKey = '';
  #replayAbort: AbortController | null = null;
  #backfill: ReplayProgress | null = null;
  #queueStats: IntentStats | null = null;
  #fenced = false;
  #fenceTimer: unknown = null;
  #sweepTimer: unknown = null;
  #sweeping = false;
  #driving = new Set<string>();
  #shareRuns = new Map<string, Promise<ReplayReport | null>>();
  #myBackfill: InstanceBackfill | null = null;
  #lastProgressWrite = 0;
  #lastSweep = Number.NEGATIVE_INFINITY;

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
    this.#replayOptions = resolved.replay;
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
    this.#hooks = new PhaseHooks({
      clock: this.#clock,
      log: this.#log,
      currentWindow: () => this.#state.window,
      on: (event, listener) => this.#events.on(event, listener),
    });
    this.#intents = new Intents(this.#ctx, {
      currentWindow: () => this.#state.window,
      fenced: () => this.#fenced,
      backfillDue: () => this.#afterHandlers(),
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
    this.#clock.clearTimeout(this.#windowTimer);
    this.#clock.clearTimeout(this.#fenceTimer);
    this.#clock.clearTimeout(this.#sweepTimer);
    this.#replayAbort?.abort();
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

  async begin(input: BeginInput): Promise<MaintenanceWindow> {
    const v = parseOrThrow(beginInputSchema, input, 'begin');
    await this.start();
    const now = this.#clock.now();
    if (v.endsAt && Date.parse(v.endsAt) <= now) {
      throw new QuiesceError('INVALID_INPUT', 'begin: endsAt: must be in the future', { field: 'endsAt' });
    }
    this.#announcing++;
    const state = await this.#tx
      .transition({ action: 'begin', actor: v.actor, reason: v.reason }, (s) => {
        this.#assertNoOpenWindow(s);
        const phase = requirePhase(s.window?.phase ?? null, 'begin');
        return advance(s, now, (version) => ({
          mode: modeOf(phase),
          updatedBy: v.actor,
          window: {
            ...this.#newWindow({ ...v, startsAt: iso(now) }, phase, version),
            checklist: emptyChecklist(this.instanceId),
          },
        }));
      })
      .finally(() => this.#announcing--);
    const w = state.window!;
    void this.#notices.notify('started', w);
    this.#drive();
    return w;
  }

  async schedule(input: ScheduleInput): Promise<MaintenanceWindow> {
    const v = parseOrThrow(scheduleInputSchema, input, 'schedule');
    await this.start();
    const now = this.#clock.now();
    const startsAt = Date.parse(v.startsAt);
    if (startsAt <= now) {
      throw new QuiesceError(
        'INVALID_INPUT',
        'schedule: startsAt: must be in the future (use begin to start now)',
        { field: 'startsAt' },
      );
    }
    if (v.endsAt && Date.parse(v.endsAt) <= startsAt) {
      throw new QuiesceError('INVALID_INPUT', 'schedule: endsAt: must be after startsAt', {
        field: 'endsAt',
      });
    }
    const state = await this.#tx.transition({ action: 'schedule', actor: v.actor, reason: v.reason }, (s) => {
      this.#assertNoOpenWindow(s);
      const phase = requirePhase(s.window?.phase ?? null, 'schedule');
      return advance(s, now, () => ({
        mode: modeOf(phase),
        updatedBy: v.actor,
        window: this.#newWindow(v, phase, null),
      }));
    });
    void this.#notices.notify('scheduled', state.window!);
    return state.window!;
  }

  async extend(input: ExtendInput): Promise<MaintenanceWindow> {
    const v = parseOrThrow(extendInputSchema, input, 'extend');
    await this.start();
    const now = this.#clock.now();
    const state = await this.#tx.transition({ action: 'extend', actor: v.actor, reason: v.reason }, (s) => {
      const w = s.window;
      if (!w || !(w.phase === 'scheduled' || isReadOnlyPhase(w.phase))) {
        throw new QuiesceError('NO_ACTIVE_WINDOW', 'extend: there is no scheduled or active window');
      }
      // ---- conditional extend (#18, escalation): extend only the window the caller names.
      if (v.windowId !== undefined && w.id !== v.windowId)
        throw new QuiesceError(
          'NO_ACTIVE_WINDOW',
          `extend: window ${v.windowId} is no longer the open window`,
        );
      // ---- end conditional extend
      let endsAt = w.endsAt;
      if (v.endsAt !== undefined) endsAt = v.endsAt;
      else if (v.byMs !== undefined)
        endsAt = iso(Math.max(now, w.endsAt ? Date.parse(w.endsAt) : now) + v.byMs);
      if (endsAt !== null && endsAt !== w.endsAt) {
        if (Date.parse(endsAt) <= now)
          throw new QuiesceError('INVALID_INPUT', 'extend: endsAt: must be in the future', {
            field: 'endsAt',
          });
        if (Date.parse(endsAt) <= Date.parse(w.startsAt)) {
          throw new QuiesceError('INVALID_INPUT', 'extend: endsAt: must be after the window starts', {
            field: 'endsAt',
          });
        }
      }
      return advance(s, now, () => ({
        updatedBy: v.actor,
        window: { ...w, endsAt, message: v.message ?? w.message },
      }));
    });
    void this.#notices.notify('extended', state.window!);
    return state.window!;
  }

  async end(input: EndInput = {}): Promise<MaintenanceWindow> {
    const v = parseOrThrow(endInputSchema, input, 'end');
    await this.start();
    if (v.force) return this.#forceEnd(v);
    const current = this.#state.window;
    if (current && isReadOnlyPhase(current.phase)) {
      await this.#hooks.runBeforeThaw(current);
    }
    // The checklist is driven by an instance that can replay: this one, or a live one it hands it to.
    const heir = this.#participant && this.#handlers.size > 0 ? null : await this.#drain.pickLive(true);
    const now = this.#clock.now();
    let cancelled = false;
    const state = await this.#tx.transition({ action: 'end', actor: v.actor, reason: v.reason }, (s) => {
      const w = s.window;
      if (!w || !(w.phase === 'scheduled' || isReadOnlyPhase(w.phase))) {
        throw new QuiesceError('NO_ACTIVE_WINDOW', 'end: there is no scheduled or active window to end');
      }
      // ---- conditional end (#18, flag follower): end only the window the caller names.
      if (v.windowId !== undefined && w.id !== v.windowId)
        throw new QuiesceError('NO_ACTIVE_WINDOW', `end: window ${v.windowId} is no longer the open window`);
      // ---- end conditional end
      cancelled = w.phase === 'scheduled';
      const phase = requirePhase(w.phase, cancelled ? 'cancel' : 'end');
      const c = w.checklist ?? emptyChecklist(null);
      return advance(s, now, (version) => ({
        mode: modeOf(phase),
        updatedBy: v.actor,
        window: {
          ...w,
          phase,
          endedAt: iso(now),
          closedAt: cancelled ? iso(now) : null,
          ...(v.message ? { report: { ...w.report, closingMessage: v.message } } : {}),
          ...(cancelled
            ? {}
            : {
                checklist: {
                  ...c,
                  controller: heir ?? this.instanceId,
                  thawVersion: version,
                  soakStartedAt: iso(now),
                  soakMs: this.#o.soakMs,
                },
              }),
        },
      }));
    });
    const w = state.window!;
    if (cancelled) void this.#notices.notify('ended', w);
    else this.#drive();
    return w;
  }

  /** `end({ force: true })`: close the window at once from any phase (a stuck thaw or backfill). */
  async #forceEnd(v: { actor?: string; reason?: string; message?: string }): Promise<MaintenanceWindow> {
    const now = iso(this.#clock.now());
    let fromPhase = 'closed' as Phase;
    const state = await this.#tx.transition(
      { action: 'end', actor: v.actor, reason: v.reason ? `forced: ${v.reason}` : 'forced end' },
      (s) => {
        const w = s.window;
        if (!w || w.phase === 'closed')
          throw new QuiesceError(
            'NO_ACTIVE_WINDOW',
            'end: there is no window to end (the last one is closed)',
          );
        fromPhase = w.phase;
        const phase = requirePhase(w.phase, 'force-end');
        const c = w.checklist ?? emptyChecklist(null);
        return advance(s, now, () => ({
          mode: modeOf(phase),
          updatedBy: v.actor,
          window: {
            ...w,
            phase,
            endedAt: w.endedAt ?? now,
            closedAt: now,
            ...(v.message ? { report: { ...w.report, closingMessage: v.message } } : {}),
            checklist: { ...c, forced: { by: v.actor ?? this.instanceId, at: now, fromPhase: w.phase } },
          },
        }));
      },
    );
    this.#log.warn('quiesce: window ended by force', {
      windowId: state.window!.id,
      fromPhase,
      actor: v.actor,
    });
    void this.#notices.notify(fromPhase === 'scheduled' ? 'ended' : 'closed', state.window!);
    return state.window!;
  }

  #assertNoOpenWindow(s: QuiesceState): void {
    const w = s.window;
    if (w && (w.phase === 'scheduled' || isReadOnlyPhase(w.phase))) {
      throw new QuiesceError(
        'WINDOW_CONFLICT',
        `window ${w.id} is already ${w.phase}; extend or end it first`,
        {
          details: { windowId: w.id, phase: w.phase },
        },
      );
    }
  }

  #newWindow(
    v: {
      reason: string;
      message: string;
      startsAt: string;
      endsAt?: string;
      contact?: string;
      rollbackPlan?: string;
      scope?: string[];
      actor?: string;
      autoEnd?: boolean;
    },
    phase: Phase,
    freezeVersion: number | null,
  ): MaintenanceWindow {
    return {
      id: this.#generateId(),
      reason: v.reason,
      message: v.message,
      startsAt: v.startsAt,
      endsAt: v.endsAt ?? null,
      ...(v.contact ? { contact: v.contact } : {}),
      ...(v.rollbackPlan ? { rollbackPlan: v.rollbackPlan } : {}),
      ...(v.scope ? { scope: v.scope } : {}),
      ...(v.actor ? { openedBy: v.actor } : {}),
      phase,
      autoEnd: v.autoEnd ?? false,
      freezeVersion,
      frozenAt: null,
      endedAt: null,
      closedAt: null,
      stragglers: [],
      notices: {},
      report: {},
    };
  }

  async addToReport(key: string, value: unknown): Promise<void> {
    const w = this.#state.window;
    if (!w) throw new QuiesceError('NO_ACTIVE_WINDOW', 'addToReport: there is no window');
    await this.#tx.updateWindow(w.id, (win) => ({ ...win, report: { ...win.report, [key]: value } }));
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
    // Lease bookkeeping is per open window: drop it once that window closed or was replaced.
    const open = openWindowId(next);
    for (const id of this.#missingSince.keys()) if (id !== open) this.#missingSince.delete(id);
    this.#emit('state', next, prev);
    const prevPhase = prev.window?.id === next.window?.id ? (prev.window?.phase ?? null) : null;
    const phase = next.window?.phase ?? null;
    if (phase !== prevPhase || prev.window?.id !== next.window?.id) {
      if (next.window && phase && phase !== prevPhase) await this.#hooks.runPhase(phase, next.window);
      this.#emit('phase', phase, next.window, prevPhase);
    }
    if (this.#view.readOnly && !wasReadOnly) this.#replayAbort?.abort();
    if (
      phase === 'backfilling' &&
      phase !== prevPhase &&
      this.#participant &&
      this.#handlers.size > 0 &&
      this.#started
    ) {
      void this.#replayShare(next.window!.id);
    }
    if (!this.#view.readOnly && wasReadOnly) for (const l of this.#writableListeners) l();
    this.#armWindowTimer();
    this.#ackedVersion = next.version;
    // Acknowledge at once only while a controller waits for it (a freeze or a thaw being confirmed);
    // any other version rides on the next heartbeat. Nobody else hears of it.
    if (this.#started && (phase === 'freezing' || phase === 'thawing')) void this.#heartbeat(false, true);
    this.#drive();
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

  /** One timer per window: its scheduled start, or its automatic end. */
  #armWindowTimer(): void {
    const w = this.#state.window;
    let key = '';
    let at = 0;
    let fire: (() => void) | null = null;
    if (w?.phase === 'scheduled') {
      key = `start:${w.id}:${w.startsAt}`;
      at = Date.parse(w.startsAt);
      fire = () => void this.#startScheduled(w.id);
    } else if (w && isReadOnlyPhase(w.phase) && w.autoEnd && w.endsAt) {
      key = `end:${w.id}:${w.endsAt}`;
      at = Date.parse(w.endsAt);
      fire = () =>
        void this.end({ actor: 'schedule', reason: 'window reached its end time' }).catch((err) => {
          if (!(err instanceof QuiesceError && err.code === 'NO_ACTIVE_WINDOW'))
            this.#log.error('quiesce: automatic end failed', { error: errorMessage(err) });
        });
    }
    if (key === this.#windowTimerKey) return;
    this.#clock.clearTimeout(this.#windowTimer);
    this.#windowTimerKey = key;
    if (!fire) {
      this.#windowTimer = null;
      return;
    }
    const delay = Math.max(0, at - this.#clock.now());
    if (delay > MAX_TIMER_MS) {
      // setTimeout fires at once beyond 2^31-1 ms (~24.8 days): wake up early and re-arm.
      this.#windowTimer = this.#clock.setTimeout(() => {
        this.#windowTimerKey = '';
        this.#armWindowTimer();
      }, MAX_TIMER_MS);
      return;
    }
    this.#windowTimer = this.#clock.setTimeout(fire, delay);
  }

  async #startScheduled(windowId: string): Promise<void> {
    if (this.#ctx.life.closed) return;
    try {
      const now = this.#clock.now();
      this.#announcing++;
      const state = await this.#tx
        .transition({ action: 'begin', actor: 'schedule', reason: 'scheduled start' }, (s) => {
          if (s.window?.id !== windowId || s.window.phase !== 'scheduled')
            throw new QuiesceError('NOT_FOUND', 'already started');
          const w = s.window;
          const phase = requirePhase(w.phase, 'start');
          return advance(s, now, (version) => ({
            mode: modeOf(phase),
            updatedBy: 'schedule',
            window: {
              ...w,
              startsAt: iso(now),
              phase,
              freezeVersion: version,
              checklist: emptyChecklist(this.instanceId),
            },
          }));
        })
        .finally(() => this.#announcing--);
      void this.#notices.notify('started', state.window!);
      this.#drive();
    } catch (err) {
      // Another instance won the race, or the window was cancelled.
      if (!(err instanceof QuiesceError && err.code === 'NOT_FOUND'))
        this.#log.error('quiesce: scheduled start failed', { error: errorMessage(err) });
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((r) => this.#clock.setTimeout(r, ms));
  }

  // ---------------------------------------------------------------- driving, takeover, supervision

  /** Run whatever the current window needs from its controller, when that is this instance. */
  #drive(): void {
    const w = this.#state.window;
    // begin() announces the window before it starts confirming it.
    if (this.#announcing > 0 && w?.phase === 'freezing') return;
    if (!w || this.#ctx.life.closed || w.checklist?.controller !== this.instanceId) return;
    if (w.phase === 'freezing') void this.#drain.confirmFreeze(w.id);
    else if (w.phase === 'thawing') void this.#runChecklist(w.id);
    else if (w.phase === 'backfilling') void this.#driveBackfill(w.id);
  }

  #missingSince = new Map<string, number>();
  #announcing = 0;

  /**
   * Every heartbeat: the controller names instances whose lease expired; any other participant
   * checks the controller's lease (one record) and takes the window over once it has expired.
   */
  async #tick(): Promise<void> {
    if (this.#ctx.life.closed) return;
    const w = this.#state.window;
    if (!w || !OPEN_PHASES.has(w.phase)) {
      this.#maybeSweep();
      return;
    }
    if (!this.#store.writable) return;
    const controller = w.checklist?.controller ?? null;
    if (controller === this.instanceId) {
      if (w.phase !== 'freezing') await this.#nameLost(w.id);
      this.#drive();
      return;
    }
    const registry = this.#store.registry;
    if (!this.#participant || !registry || this.#view.readOnly !== isReadOnlyPhase(w.phase)) return;
    const now = this.#clock.now();
    const rec = controller
      ? registry.get
        ? await registry.get(controller)
        : ((await registry.list()).find((r) => r.id === controller) ?? null)
      : null;
    if (rec && !expired(rec, now, this.#o)) {
      this.#missingSince.delete(w.id);
      return;
    }
    // A controller with no record holds no lease (a CLI, or one already dropped): give it one
    // lease's time from when this instance first saw it missing.
    if (!rec && !this.#missingSince.has(w.id)) this.#missingSince.set(w.id, now);
    const goneAt = rec
      ? leaseOf(rec, this.#o) + this.#o.clockSkewMs
      : this.#missingSince.get(w.id)! + this.#o.leaseTtlMs + this.#o.clockSkewMs;
    if (now <= goneAt) return;
    // Instances that can replay get the first chance at a thaw or backfill; the others step in only if none does.
    if ((w.phase === 'thawing' || w.phase === 'backfilling') && this.#handlers.size === 0) {
      if (now <= goneAt + 2 * this.#o.leaseTtlMs) return;
    }
    await this.#takeOver(w.id, controller);
  }

  async #takeOver(windowId: string, from: string | null): Promise<void> {
    const at = iso(this.#clock.now());
    try {
      const s = await this.#tx.transition(
        {
          action: 'takeover',
          actor: this.instanceId,
          reason: from ? `controller ${from} lost its lease` : 'the window had no controller holding a lease',
        },
        (cur) => {
          const w = cur.window;
          if (w?.id !== windowId || !OPEN_PHASES.has(w.phase) || (w.checklist?.controller ?? null) !== from)
            throw new QuiesceError('NOT_FOUND', 'moved on');
          const c = w.checklist ?? emptyChecklist(null);
          return advance(cur, at, () => ({
            window: {
              ...w,
              checklist: {
                ...c,
                controller: this.instanceId,
                takeovers: [...c.takeovers, { from, by: this.instanceId, at, phase: w.phase }],
              },
            },
          }));
        },
      );
      const phase = s.window!.phase;
      this.#log.warn('quiesce: took over the window from a controller whose lease expired', {
        windowId,
        from,
        phase,
      });
      this.#emit('takeover', { windowId, from, phase });
      this.#drive();
    } catch (err) {
      if (err instanceof QuiesceError && (err.code === 'NOT_FOUND' || err.code === 'VERSION_CONFLICT'))
        return;
      this.#log.warn('quiesce: takeover failed', { windowId, error: errorMessage(err) });
    }
  }

  /** The controller names and drops instances whose lease expired during the window. */
  async #nameLost(windowId: string): Promise<void> {
    const registry = this.#store.registry;
    if (!registry) return;
    const now = this.#clock.now();
    const lost: Straggler[] = [];
    for (const r of await registry.list()) {
      if (r.id === this.instanceId || !expired(r, now, this.#o)) continue;
      lost.push({
        instanceId: r.id,
        inFlight: r.inFlight,
        ackedVersion: r.ackedVersion,
        reason: 'lost',
        leaseUntil: iso(leaseOf(r, this.#o)),
        lastSeen: r.lastSeen,
        ...(r.oldestOperation ? { oldestOperation: r.oldestOperation } : {}),
      });
    }
    if (lost.length === 0) return;
    let added: Straggler[] = [];
    await this.#tx.updateWindow(windowId, (w) => {
      const known = new Set(w.stragglers.map((s) => s.instanceId));
      added = lost.filter((l) => !known.has(l.instanceId));
      return { ...w, stragglers: [...w.stragglers, ...added] };
    });
    await this.#drain.dropFenced(lost);
    for (const l of added) {
      this.#log.warn('quiesce: instance lost during the window (its lease expired); dropped and named', {
        instanceId: l.instanceId,
        leaseUntil: l.leaseUntil,
        windowId,
      });
      this.#emit('instance-lost', l);
      const s = this.#state;
      const entry: AuditEntry = {
        at: iso(now),
        actor: this.instanceId,
        action: 'lease',
        reason: `instance ${l.instanceId} lost: its lease expired at ${l.leaseUntil}`,
        windowId,
        from: { mode: s.mode, phase: s.window?.phase ?? null },
        to: { mode: s.mode, phase: s.window?.phase ?? null },
        version: s.version,
        details: { instanceId: l.instanceId, leaseUntil: l.leaseUntil, inFlight: l.inFlight },
      };
      await this.#auditLog.append(entry).catch(() => {});
      this.#emit('audit', entry);
    }
  }

  // ---------------------------------------------------------------- end of window checklist

  /** Patch the window's durable checklist (silent if the window moved on). */
  #updateChecklist(windowId: string, patch: (c: Checklist) => Checklist): Promise<void> {
    return this.#tx.updateWindow(windowId, (w) => ({
      ...w,
      checklist: patch(w.checklist ?? emptyChecklist(null)),
    }));
  }

  /**
   * Writes are back on (thawing) → thaw confirmed → soak → closure notice → backfill → closed. Each
   * step's progress is in the store, so whoever drives the window next resumes where this stopped.
   */
  async #runChecklist(windowId: string): Promise<void> {
    const key = `${windowId}:thawing`;
    if (this.#driving.has(key)) return;
    this.#driving.add(key);
    const still = () =>
      !this.#ctx.life.closed &&
      this.#state.window?.id === windowId &&
      this.#state.window.phase === 'thawing' &&
      this.#state.window.checklist?.controller === this.instanceId;
    try {
      let w = this.#state.window;
      if (!w || !still()) return;
      if (!w.checklist?.thaw) {
        const version = w.checklist?.thawVersion ?? this.#state.version;
        const since = Date.parse(w.endedAt ?? iso(this.#clock.now()));
        const result = await this.#drain.confirm('thaw', windowId, version, 'thawing', since);
        if (!result) return;
        await this.#updateChecklist(windowId, (c) => ({ ...c, thaw: result.confirmation }));
        await this.#drain.dropFenced(result.stragglers.filter((x) => x.reason === 'fenced'));
      }
      w = this.#state.window!;
      const soakFrom = Date.parse(w.checklist?.soakStartedAt ?? w.endedAt ?? iso(this.#clock.now()));
      const soakMs = w.checklist?.soakMs ?? this.#o.soakMs;
      const remaining = soakFrom + soakMs - this.#clock.now();
      if (remaining > 0) await this.#sleep(remaining);
      if (!still()) return;
      if (!(await this.#closureNotice(windowId))) return;
      if (!still()) return;
      // An instance that cannot replay hands the backfill to one that can (a CLI, say).
      const heir = this.#handlers.size > 0 && this.#participant ? null : await this.#drain.pickLive(true);
      const now = iso(this.#clock.now());
      await this.#tx.transition({ action: 'phase', actor: 'controller', reason: 'soak complete' }, (s) => {
        if (s.window?.id !== windowId || s.window.phase !== 'thawing')
          throw new QuiesceError('NOT_FOUND', 'moved on');
        const w = s.window;
        const c = w.checklist ?? emptyChecklist(this.instanceId);
        return advance(s, now, () => ({
          window: {
            ...w,
            phase: requirePhase(w.phase, 'soak-complete'),
            checklist: {
              ...c,
              ...(heir ? { controller: heir } : {}),
              backfill: c.backfill ?? {
                startedAt: now,
                done: 0,
                total: 0,
                applied: 0,
                failed: 0,
                byInstance: {},
                updatedAt: now,
              },
            },
          },
        }));
      });
    } catch (err) {
      if (err instanceof QuiesceError && err.code === 'NOT_FOUND') return;
      this.#log.error('quiesce: end-of-window checklist failed', { windowId, error: errorMessage(err) });
    } finally {
      this.#driving.delete(key);
    }
  }

  /**
   * Send the closure notice once: claim it in the store first, send, then mark it sent. A claim left
   * by a controller whose lease expired is taken over (the notice is then re-sent: notifiers get the
   * window's notice record to tell). False when the window moved on.
   */
  async #closureNotice(windowId: string): Promise<boolean> {
    for (;;) {
      const w = this.#state.window;
      if (this.#ctx.life.closed || w?.id !== windowId || w.phase !== 'thawing') return false;
      if (w.checklist?.controller !== this.instanceId) return false;
      const n = w.checklist?.closureNotice ?? null;
      if (n?.sentAt) return true;
      if (n && n.by !== this.instanceId) {
        const rec = await this.#store.registry?.get?.(n.by).catch(() => null);
        if (rec && !expired(rec, this.#clock.now(), this.#o)) {
          await this.#sleep(this.#o.heartbeatMs);
          continue;
        }
      }
      if (!n || n.by !== this.instanceId) {
        const health = this.#health.report();
        const claimedAt = iso(this.#clock.now());
        let won = false;
        await this.#tx.updateWindow(windowId, (cur) => {
          const c = cur.checklist ?? emptyChecklist(null);
          const now = c.closureNotice;
          if (cur.phase !== 'thawing' || now?.sentAt || (now?.by ?? null) !== (n?.by ?? null)) return cur;
          won = true;
          return {
            ...cur,
            report: cur.report.readHealth ? cur.report : { ...cur.report, readHealth: health },
            checklist: { ...c, closureNotice: { by: this.instanceId, claimedAt, sentAt: null } },
          };
        });
        if (!won) {
          // Someone else claimed it meanwhile, or the update did not go through: look again.
          if ((this.#state.window?.checklist?.closureNotice?.by ?? null) === (n?.by ?? null))
            await this.#sleep(Math.min(this.#o.heartbeatMs, 250));
          continue;
        }
      }
      const current = this.#state.window;
      if (!current || current.id !== windowId) return false;
      await this.#notices.notify('ended', current);
      await this.#updateChecklist(windowId, (c) =>
        c.closureNotice?.by === this.instanceId
          ? { ...c, closureNotice: { ...c.closureNotice, sentAt: iso(this.#clock.now()) } }
          : c,
      );
      return true;
    }
  }

  /**
   * The controller's part of the backfill: replay its own share, wait until every live instance that
   * replays has finished its share (or lost its lease), then close with everyone's totals.
   */
  async #driveBackfill(windowId: string): Promise<void> {
    const key = `${windowId}:backfilling`;
    if (this.#driving.has(key)) return;
    this.#driving.add(key);
    const still = () =>
      !this.#ctx.life.closed &&
      this.#state.window?.id === windowId &&
      this.#state.window.phase === 'backfilling' &&
      this.#state.window.checklist?.controller === this.instanceId;
    const waiter = this.#drain.registryWaiter();
    try {
      const canReplay = this.#participant && this.#handlers.size > 0;
      if (canReplay) {
        const report = await this.#replayShare(windowId);
        if (!report || report.paused || !still()) return;
      }
      const registry = this.#store.registry;
      let records: InstanceRecord[] = [];
      for (;;) {
        if (!still()) return;
        const now = this.#clock.now();
        records = registry ? await registry.list() : [];
        const replayers = records.filter(
          (r) => r.id !== this.instanceId && r.replays && !expired(r, now, this.#o),
        );
        if (!canReplay && replayers.length === 0) {
          this.#log.warn('quiesce: no live instance has replay handlers; closing without a backfill', {
            windowId,
          });
          await this.#close(
            windowId,
            {
              skipped: 'no live instance has replay handlers',
              done: 0,
              total: 0,
              applied: 0,
              failed: 0,
              paused: false,
            },
            null,
            {},
          );
          return;
        }
        const pending = replayers.filter((r) => !(r.backfill?.windowId === windowId && r.backfill.finished));
        if (pending.length === 0) break;
        await waiter.wait(Math.min(250, this.#o.heartbeatMs));
      }
      // A shared queue (pg-boss) may still hold intents queued late: replay them before closing.
      let stats = await this.#queue.stats().catch(() => null);
      if (canReplay && stats && stats.depth > 0 && still()) {
        const again = await this.#replayShare(windowId);
        if (!again || again.paused || !still()) return;
        stats = await this.#queue.stats().catch(() => null);
      }
      const byInstance: Record<string, { done: number; total: number; applied: number; failed: number }> = {};
      for (const r of records) {
        if (r.id !== this.instanceId && r.backfill?.windowId === windowId) {
          const { done, total, applied, failed } = r.backfill;
          byInstance[r.id] = { done, total, applied, failed };
        }
      }
      if (this.#myBackfill?.windowId === windowId) {
        const { done, total, applied, failed } = this.#myBackfill;
        byInstance[this.instanceId] = { done, total, applied, failed };
      }
      const sum = { done: 0, total: 0, applied: 0, failed: 0 };
      for (const b of Object.values(byInstance)) {
        sum.done += b.done;
        sum.total += b.total;
        sum.applied += b.applied;
        sum.failed += b.failed;
      }
      await this.#close(windowId, { ...sum, paused: false }, stats?.depth ?? null, byInstance);
    } catch (err) {
      if (err instanceof QuiesceError && err.code === 'NOT_FOUND') return;
      this.#log.error('quiesce: backfill failed', { windowId, error: errorMessage(err) });
    } finally {
      waiter.close();
      this.#driving.delete(key);
    }
  }

  /**
   * This instance's share of a window's backfill (every instance with handlers replays its queue
   * when it applies `backfilling`); the totals go in its registry record, announced when finished.
   */
  #replayShare(windowId: string): Promise<ReplayReport | null> {
    const running = this.#shareRuns.get(windowId);
    if (running) return running;
    const run = this.#runShare(windowId).finally(() => this.#shareRuns.delete(windowId));
    this.#shareRuns.set(windowId, run);
    return run;
  }

  async #runShare(windowId: string): Promise<ReplayReport | null> {
    const driver = () => this.#state.window?.checklist?.controller === this.instanceId;
    try {
      const before = this.#myBackfill?.windowId === windowId ? this.#myBackfill : null;
      this.#myBackfill = before ?? { windowId, done: 0, total: 0, applied: 0, failed: 0, finished: false };
      this.#myBackfill.finished = false;
      const base = { ...this.#myBackfill };
      const report = await this.#replay((p) => {
        this.#myBackfill = {
          windowId,
          done: base.done + p.done,
          total: base.done + p.total,
          applied: base.applied + p.applied,
          failed: base.failed + p.failed,
          finished: false,
        };
        // The controller keeps the store's record of the backfill current (coarsely: it reaches everyone).
        const now = this.#clock.now();
        if (driver() && now - this.#lastProgressWrite >= PROGRESS_EVERY_MS) {
          this.#lastProgressWrite = now;
          const mine = { ...this.#myBackfill };
          void this.#updateChecklist(windowId, (c) => ({
            ...c,
            backfill: {
              startedAt: c.backfill?.startedAt ?? iso(now),
              byInstance: c.backfill?.byInstance ?? {},
              done: mine.done,
              total: mine.total,
              applied: mine.applied,
              failed: mine.failed,
              updatedAt: iso(now),
            },
          }));
        }
      });
      if (!report.paused && this.#myBackfill.windowId === windowId) {
        this.#myBackfill = { ...this.#myBackfill, finished: true };
        await this.#heartbeat(false, true);
      }
      return report;
    } catch (err) {
      this.#log.error('quiesce: replay failed', { windowId, error: errorMessage(err) });
      return null;
    }
  }

  async #close(
    windowId: string,
    backfill: ReplayReport | (ReplayReport & { skipped: string }),
    remaining: number | null,
    byInstance: Record<string, { done: number; total: number; applied: number; failed: number }>,
  ): Promise<void> {
    const closed = await this.#tx.transition(
      { action: 'phase', actor: 'controller', reason: 'backfill complete' },
      (s) => {
        if (s.window?.id !== windowId || s.window.phase !== 'backfilling')
          throw new QuiesceError('NOT_FOUND', 'moved on');
        const now = iso(this.#clock.now());
        const w = s.window;
        const c = w.checklist ?? emptyChecklist(this.instanceId);
        return advance(s, now, () => ({
          window: {
            ...w,
            phase: requirePhase(w.phase, 'backfill-complete'),
            closedAt: now,
            report: { ...w.report, backfill: { ...backfill, remaining } },
            checklist: {
              ...c,
              backfill: {
                startedAt: c.backfill?.startedAt ?? null,
                done: backfill.done,
                total: backfill.total,
                applied: backfill.applied,
                failed: backfill.failed,
                byInstance,
                updatedAt: now,
              },
            },
          },
        }));
      },
    );
    void this.#notices.notify('closed', closed.window!);
  }

  /** Replay stranded intents (queued while no window was open, or left by a closed one). */
  #maybeSweep(force = false): void {
    const now = this.#clock.now();
    if (this.#sweeping || this.#ctx.life.closed || !this.#participant || this.#handlers.size === 0) return;
    if (!force && now - this.#lastSweep < this.#o.sweepMs) return;
    const w = this.#state.window;
    if (w && OPEN_PHASES.has(w.phase)) return;
    if (this.#view.readOnly) return;
    this.#sweeping = true;
    this.#lastSweep = now;
    void (async () => {
      try {
        const stats = await this.#queue.stats();
        if (stats.depth === 0) return;
        const report = await this.#replay(() => {});
        if (report.total > 0)
          this.#log.warn('quiesce: replayed intents queued outside a window (stranded)', { ...report });
      } catch (err) {
        this.#log.warn('quiesce: sweep of stranded intents failed', { error: errorMessage(err) });
      } finally {
        this.#sweeping = false;
      }
    })();
  }

  /** Debounced: handlers tend to be registered in a burst; replay only once they all are. */
  #afterHandlers(): void {
    this.#clock.clearTimeout(this.#sweepTimer);
    this.#sweepTimer = this.#clock.setTimeout(() => {
      if (this.#ctx.life.closed || !this.#started) return;
      const w = this.#state.window;
      if (w?.phase === 'backfilling' && this.#participant) {
        void this.#replayShare(w.id);
        this.#drive();
      } else this.#maybeSweep(true);
    }, this.#o.heartbeatMs);
  }

  backfill(): Promise<ReplayReport> {
    return this.#replay(() => {});
  }

  async #replay(onProgress: (p: ReplayProgress) => void): Promise<ReplayReport> {
    if (this.#view.readOnly)
      throw new QuiesceError('WINDOW_CONFLICT', 'backfill: writes are still refused; end the window first');
    const ctrl = new AbortController();
    this.#replayAbort?.abort();
    this.#replayAbort = ctrl;
    const rate = this.#replayOptions.ratePerSecond ?? 200;
    const gapMs = rate > 0 ? 1000 / rate : 0;
    let nextAt = 0;
    // A replayed intent is a write: a window that begins meanwhile waits for it to finish.
    const handlers = new Map<string, IntentHandler>();
    for (const [name, handler] of this.#handlers) {
      const op: Operation = { surface: 'custom', name: `replay ${name}` };
      handlers.set(name, async (payload, ctx) => {
        // Paced: yield to the event loop (reads are served between replays), then keep to the cap.
        await new Promise<void>((r) => setImmediate(r));
        if (gapMs > 0) {
          const t = performance.now();
          nextAt = Math.max(nextAt + gapMs, t);
          if (nextAt > t) await new Promise<void>((r) => setTimeout(r, nextAt - t));
        }
        if (this.#view.readOnly) {
          ctrl.abort();
          throw new QuiesceError('WINDOW_CONFLICT', 'replay stopped: writes are refused again');
        }
        const h = this.track(op);
        try {
          return await handler(payload, ctx);
        } finally {
          h.done();
        }
      });
    }
    const { ratePerSecond: _rate, ...replayOptions } = this.#replayOptions;
    const report = await this.#queue.replay({
      ...replayOptions,
      handlers,
      signal: ctrl.signal,
      onProgress: (p) => {
        this.#backfill = p;
        this.#emit('backfill-progress', p);
        onProgress(p);
      },
    });
    if (this.#replayAbort === ctrl) this.#replayAbort = null;
    this.#metrics.replayed('applied', report.applied);
    this.#metrics.replayed('failed', report.failed);
    if (report.paused)
      this.#log.info('quiesce: backfill paused (a new window, or this instance was fenced)', { ...report });
    return report;
  }

  // ---------------------------------------------------------------- heartbeat, poll, fallback

  #scheduleHeartbeat(): void {
    if (this.#ctx.life.closed) return;
    // ±10% jitter: a fleet started together does not heartbeat in lockstep.
    const delay = Math.round(this.#o.heartbeatMs * (0.9 + 0.2 * Math.random()));
    this.#heartbeatTimer = this.#clock.setTimeout(async () => {
      await this.#heartbeat();
      await this.#tick().catch((err) =>
        this.#log.error('quiesce: window supervision failed', { error: errorMessage(err) }),
      );
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
      ...(this.#myBackfill ? { backfill: { ...this.#myBackfill } } : {}),
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
    this.#replayAbort?.abort();
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
      backfill: this.#backfill,
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
