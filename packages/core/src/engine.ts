import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { agentRefusal } from './agentRefusal.js';
import { type AuditEntry, createMemoryAuditLog } from './audit.js';
import { type BypassCheck, createBypassCheck, redactOperation } from './bypass.js';
import { type Classifier, type ClassifyResult, createClassifier } from './classifier.js';
import { type Clock, systemClock } from './clock.js';
import { recordReadHealth, withTrail } from './closingRecord.js';
import { isQuiesceError, QuiesceError } from './errors.js';
import { EscalationPolicy } from './escalation.js'; // #18
import { createInProgressKeys } from './idempotencyKey.js';
import { InFlightTracker } from './inflight.js';
import {
  deriveIdempotencyKey,
  type IntentHandler,
  type IntentQueue,
  type IntentStats,
  type IntentStatus,
  type ReplayProgress,
  type ReplayReport,
} from './intentQueue.js';
import { Inventory, type InventoryEntry } from './inventory.js';
import { createMemoryIntentQueue } from './memoryIntentQueue.js';
import { createMemoryStore } from './memoryStore.js';
import { type CounterName, QuiesceMetrics } from './metrics.js';
import { type Logger, type Notifier, type NotifierEventKind, silentLogger } from './notifier.js';
import type {
  Decision,
  DiscardDecision,
  EnqueueDecision,
  Operation,
  Policy,
  ProceedDecision,
  ProceedReason,
  RefuseDecision,
  Surface,
} from './operation.js';
import { ReadHealthWatcher } from './readHealth.js';
import { computeRetryAfter, type ResolvedRetryAfter, resolveRetryAfterOptions } from './retryAfter.js';
import type { InstanceRecord, StateStore } from './store.js';
import { assertStorableText } from './text.js';
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
  type NoticeRecord,
  PHASES,
  type Phase,
  parseOrThrow,
  type QuiesceState,
  type ScheduleInput,
  type Straggler,
  scheduleInputSchema,
} from './window.js';

export const PROBLEM_TYPE = 'https://quiesce.dev/problems/read-only-mode';
const PROBLEM_TITLE = 'Service is in read-only mode';

/** Proceed decisions are preallocated: the proceed path allocates nothing. */
type ProceedTable = Record<ProceedReason, Record<'read' | 'write', Record<Policy, ProceedDecision>>>;
const REASONS: ProceedReason[] = ['no-window', 'read', 'allow', 'bypass', 'dry-run'];
const POLICIES: Policy[] = ['block', 'queue', 'drop', 'allow'];
function table(wouldBe?: ProceedDecision['wouldBe']): ProceedTable {
  const t = {} as ProceedTable;
  for (const reason of REASONS) {
    t[reason] = { read: {} as Record<Policy, ProceedDecision>, write: {} as Record<Policy, ProceedDecision> };
    for (const c of ['read', 'write'] as const) {
      for (const p of POLICIES) {
        t[reason][c][p] = Object.freeze({
          outcome: 'proceed',
          classification: c,
          policy: p,
          reason,
          ...(wouldBe ? { wouldBe } : {}),
        }) as ProceedDecision;
      }
    }
  }
  return t;
}
const PROCEED = table();
const DRY_RUN = { refuse: table('refuse'), enqueue: table('enqueue'), discard: table('discard') };

interface RefusalTemplate {
  windowId: string;
  endsAt: string | null;
  endsAtMs: number | null;
  message: string;
  scope: ReadonlySet<string> | null;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
const PHASE_INDEX = new Map<Phase, number>(PHASES.map((p, i) => [p, i]));
const iso = (ms: number) => new Date(ms).toISOString();
const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

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
  readonly #inProgress = createInProgressKeys();
  readonly #ownsQueue: boolean;
  readonly #clock: Clock;
  readonly #classify: Classifier;
  readonly #retry: ResolvedRetryAfter;
  readonly #bypass: BypassCheck | null;
  readonly #log: Logger;
  readonly #auditLog;
  readonly #notifiers: Notifier[];
  readonly #metrics: QuiesceMetrics;
  readonly #health: ReadHealthWatcher;
  readonly #escalation: EscalationPolicy | null; // #18
  readonly #inventory = new Inventory();
  readonly #inflight: InFlightTracker;
  readonly #handlers = new Map<string, IntentHandler>();
  readonly #listeners = new Map<string, Set<(...args: any[]) => void>>();
  readonly #phaseHooks = new Map<Phase, Set<(w: MaintenanceWindow) => unknown>>();
  readonly #writableListeners = new Set<() => void>();
  readonly #beforeThaw = new Set<(w: MaintenanceWindow) => unknown>();
  readonly #participant: boolean;
  readonly #o: Required<
    Pick<
      QuiesceOptions,
      'drainDeadlineMs' | 'soakMs' | 'heartbeatMs' | 'instanceTimeoutMs' | 'stalenessMs' | 'storeFallback'
    >
  >;
  readonly #statusUrl: (id: string) => string;
  readonly #generateId: () => string;
  readonly #startedAt: string;
  readonly #replayOptions: NonNullable<QuiesceOptions['replay']>;

  #state: QuiesceState = INITIAL_STATE;
  #readOnly = false;
  #tpl: RefusalTemplate | null = null;
  #fallback: StoreFallback | null = null;
  #lastSync: number;
  #storeError: string | null = null;
  #ackedVersion = 0;
  #applyChain: Promise<void> = Promise.resolve();
  #started: Promise<void> | null = null;
  #closed = false;
  #unsubscribe: (() => void) | null = null;
  #heartbeatTimer: unknown = null;
  #windowTimer: unknown = null;
  #windowTimerKey = '';
  #replayAbort: AbortController | null = null;
  #backfill: ReplayProgress | null = null;
  #queueStats: IntentStats | null = null;
  #confirming = new Set<string>();
  #backfilling = new Set<string>();
  #notifyChains = new Map<string, Promise<void>>();
  readonly #notifyAbort = new AbortController();
  #lostInstances: Record<string, Straggler[]> = {};

  constructor(options: QuiesceOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#store = options.store ?? createMemoryStore();
    this.#ownsStore = !options.store;
    this.#queue = options.intentQueue ?? createMemoryIntentQueue();
    this.#ownsQueue = !options.intentQueue;
    this.#classify = createClassifier(options.rules);
    this.#retry = resolveRetryAfterOptions(options.retryAfter);
    this.#bypass = createBypassCheck(options.bypass);
    this.#log = options.logger ?? silentLogger;
    this.#auditLog = options.auditLog ?? createMemoryAuditLog();
    this.#notifiers = options.notifiers ?? [];
    const names = new Set<string>();
    for (const n of this.#notifiers) {
      if (names.has(n.name))
        throw new QuiesceError('INVALID_INPUT', `notifiers: two notifiers are named "${n.name}"`, {
          field: 'notifiers',
        });
      names.add(n.name);
    }
    if (
      options.refusalStatus !== undefined &&
      options.refusalStatus !== 503 &&
      options.refusalStatus !== 423
    ) {
      throw new QuiesceError(
        'INVALID_INPUT',
        `refusalStatus must be 503 or 423, got ${options.refusalStatus}`,
        { field: 'refusalStatus' },
      );
    }
    this.options = Object.freeze({
      refusalStatus: options.refusalStatus ?? 503,
      dryRun: options.dryRun ?? false,
      bypassHeader: (options.bypass?.header ?? 'x-quiesce-bypass').toLowerCase(),
      bypassCookie: options.bypass?.cookie ?? 'quiesce_bypass',
    });
    this.#participant = options.participant ?? true;
    this.#replayOptions = options.replay ?? {};
    this.#o = {
      drainDeadlineMs: options.drainDeadlineMs ?? 30_000,
      soakMs: options.soakMs ?? 10_000,
      heartbeatMs: options.heartbeatMs ?? 1000,
      instanceTimeoutMs: options.instanceTimeoutMs ?? 5000,
      stalenessMs: options.stalenessMs ?? 30_000,
      storeFallback: options.storeFallback ?? 'keep',
    };
    for (const [k, v] of Object.entries(this.#o)) {
      if (typeof v === 'number' && (!Number.isFinite(v) || v < 0)) {
        throw new QuiesceError('INVALID_INPUT', `${k} must be a non-negative number, got ${v}`, { field: k });
      }
    }
    if (!['keep', 'read-only', 'read-write'].includes(this.#o.storeFallback)) {
      throw new QuiesceError(
        'INVALID_INPUT',
        `storeFallback must be keep, read-only or read-write, got ${this.#o.storeFallback}`,
        { field: 'storeFallback' },
      );
    }
    this.#statusUrl = options.intentStatusUrl ?? ((id) => `/quiesce/intents/${encodeURIComponent(id)}`);
    this.#generateId = options.generateId ?? (() => `win_${randomUUID().replaceAll('-', '').slice(0, 20)}`);
    this.instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.#inflight = new InFlightTracker(() => this.#clock.now());
    this.#lastSync = this.#clock.now();
    this.#startedAt = iso(this.#clock.now());
    this.#metrics = new QuiesceMetrics({
      phase: () => this.phase,
      readOnly: () => this.#readOnly,
      inFlight: () => this.#inflight.count,
      queueDepth: () => this.#queueStats?.depth ?? null,
      queueOldestAgeMs: () => this.#queueStats?.oldestAgeMs ?? null,
      stale: () => this.#fallback !== null,
    });
    // ---- escalation policy (#18): the policy lives in escalation.ts; the engine lends it a compare-and-set.
    this.#escalation = options.escalation
      ? new EscalationPolicy(options.escalation, {
          engine: this,
          clock: this.#clock,
          log: this.#log,
          transition: (reason, mutate) =>
            this.#transition('notice', 'escalation', reason, mutate, reason !== undefined),
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
    return this.#readOnly;
  }

  // ---------------------------------------------------------------- lifecycle

  start(): Promise<void> {
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
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.clearTimeout(this.#heartbeatTimer);
    this.#clock.clearTimeout(this.#windowTimer);
    this.#replayAbort?.abort();
    this.#escalation?.close(); // #18
    // Notifiers retrying against a dead endpoint must not hold the shutdown for their whole budget.
    this.#notifyAbort.abort();
    this.#unsubscribe?.();
    if (this.#participant && this.#store.registry)
      await this.#store.registry.remove(this.instanceId).catch(() => {});
    this.#emit('close');
    await Promise.allSettled([...this.#notifyChains.values()]);
    if (this.#ownsQueue) await this.#queue.close();
    if (this.#ownsStore) await this.#store.close();
    this.#listeners.clear();
  }

  // ---------------------------------------------------------------- the hot path

  decide(op: Operation): Decision {
    const c = this.#classify(op);
    if (!this.#readOnly) return PROCEED['no-window'][c.classification][c.policy];
    if (c.classification === 'read') return PROCEED.read.read[c.policy];
    if (c.policy === 'allow') return PROCEED.allow.write.allow;
    const tpl = this.#tpl!;
    if (tpl.scope !== null && !tpl.scope.has(op.surface)) return PROCEED['no-window'].write[c.policy];
    const now = this.#clock.now();
    if (this.#bypass !== null) {
      const why = this.#bypass(op, now);
      if (why !== null) {
        this.#metrics.count('bypassed', op.surface);
        this.#log.info('quiesce: write bypassed the window', {
          operation: op.name,
          surface: op.surface,
          bypass: why,
        });
        const d = PROCEED.bypass.write[c.policy];
        this.#emit('decision', d, op);
        return d;
      }
    }
    let d: Decision;
    let counter: CounterName;
    if (c.policy === 'queue') {
      d = {
        outcome: 'enqueue',
        classification: 'write',
        policy: 'queue',
        windowId: tpl.windowId,
        endsAt: tpl.endsAt,
        retryAfter: this.#retryAfter(now),
      } satisfies EnqueueDecision;
      counter = 'queued';
    } else if (c.policy === 'drop') {
      d = {
        outcome: 'discard',
        classification: 'write',
        policy: 'drop',
        windowId: tpl.windowId,
        endsAt: tpl.endsAt,
      } satisfies DiscardDecision;
      counter = 'dropped';
    } else {
      d = this.#refusal(now);
      counter = 'refused';
    }
    if (this.options.dryRun) {
      this.#metrics.count('dryRun', op.surface);
      this.#log.info('quiesce: dry-run: write would be stopped', {
        operation: op.name,
        surface: op.surface,
        wouldBe: d.outcome,
      });
      const p = DRY_RUN[d.outcome as 'refuse' | 'enqueue' | 'discard']['dry-run'].write[c.policy];
      this.#emit('decision', p, op);
      return p;
    }
    this.#metrics.count(counter, op.surface);
    this.#log.debug('quiesce: write stopped', {
      operation: op.name,
      surface: op.surface,
      outcome: d.outcome,
    });
    this.#emit('decision', d, op);
    return d;
  }

  #retryAfter(now: number): number {
    return computeRetryAfter(this.#tpl?.endsAtMs ?? null, now, this.#retry, Math.random());
  }

  #refusal(now: number): RefuseDecision {
    const tpl = this.#tpl!;
    const retryAfter = this.#retryAfter(now);
    const status = this.options.refusalStatus;
    return {
      outcome: 'refuse',
      classification: 'write',
      policy: 'block',
      status,
      retryAfter,
      windowId: tpl.windowId,
      endsAt: tpl.endsAt,
      problem: {
        type: PROBLEM_TYPE,
        title: PROBLEM_TITLE,
        status,
        detail: tpl.message,
        code: 'READ_ONLY_MODE',
        windowId: tpl.windowId,
        endsAt: tpl.endsAt,
        retryAfter,
      },
    };
  }

  classify(op: Operation): ClassifyResult {
    return this.#classify(op);
  }

  track(op: Operation): InFlightHandle {
    // One shared hook, set on the first write, instead of a wrapping handle and closure per write:
    // tell the controller at once when the last write of a freezing instance finishes.
    this.#inflight.onDone ??= () => {
      if (this.#inflight.count === 0 && this.phase === 'freezing') void this.#heartbeat();
    };
    return this.#inflight.track(op);
  }

  reportRead(outcome: ReadOutcome): void {
    this.#health.record(outcome.durationMs, outcome.error, outcome.signals); // signals: #18
    this.#metrics.read(outcome.surface, outcome.durationMs, outcome.error, this.#readOnly);
    if (outcome.signals !== undefined) this.#metrics.readSignals(outcome.signals, this.#readOnly); // #18
  }

  // ---------------------------------------------------------------- windows

  async begin(input: BeginInput): Promise<MaintenanceWindow> {
    const v = parseOrThrow(beginInputSchema, input, 'begin');
    await this.start();
    const now = this.#clock.now();
    if (v.endsAt && Date.parse(v.endsAt) <= now) {
      throw new QuiesceError('INVALID_INPUT', 'begin: endsAt: must be in the future', { field: 'endsAt' });
    }
    const state = await this.#transition('begin', v.actor, v.reason, (s) => {
      this.#assertNoOpenWindow(s);
      const version = s.version + 1;
      return {
        mode: 'read-only',
        version,
        updatedAt: iso(now),
        updatedBy: v.actor,
        window: this.#newWindow({ ...v, startsAt: iso(now) }, 'freezing', version),
      };
    });
    const w = state.window!;
    this.#notify('started', w);
    void this.#confirmFreeze(w.id);
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
    const state = await this.#transition('schedule', v.actor, v.reason, (s) => {
      this.#assertNoOpenWindow(s);
      return {
        mode: 'read-write',
        version: s.version + 1,
        updatedAt: iso(now),
        updatedBy: v.actor,
        window: this.#newWindow(v, 'scheduled', null),
      };
    });
    this.#notify('scheduled', state.window!);
    return state.window!;
  }

  async extend(input: ExtendInput): Promise<MaintenanceWindow> {
    const v = parseOrThrow(extendInputSchema, input, 'extend');
    await this.start();
    const now = this.#clock.now();
    const state = await this.#transition('extend', v.actor, v.reason, (s) => {
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
      return {
        ...s,
        version: s.version + 1,
        updatedAt: iso(now),
        updatedBy: v.actor,
        window: { ...w, endsAt, message: v.message ?? w.message },
      };
    });
    this.#notify('extended', state.window!);
    return state.window!;
  }

  async end(input: EndInput = {}): Promise<MaintenanceWindow> {
    const v = parseOrThrow(endInputSchema, input, 'end');
    await this.start();
    const current = this.#state.window;
    if (current && isReadOnlyPhase(current.phase)) {
      for (const hook of [...this.#beforeThaw]) {
        try {
          await hook(current);
        } catch (err) {
          this.#log.error('quiesce: beforeThaw hook failed', { error: errorMessage(err) });
        }
      }
    }
    const now = this.#clock.now();
    let cancelled = false;
    const state = await this.#transition('end', v.actor, v.reason, (s) => {
      const w = s.window;
      if (!w || !(w.phase === 'scheduled' || isReadOnlyPhase(w.phase))) {
        throw new QuiesceError('NO_ACTIVE_WINDOW', 'end: there is no scheduled or active window to end');
      }
      // ---- conditional end (#18, flag follower): end only the window the caller names.
      if (v.windowId !== undefined && w.id !== v.windowId)
        throw new QuiesceError('NO_ACTIVE_WINDOW', `end: window ${v.windowId} is no longer the open window`);
      // ---- end conditional end
      cancelled = w.phase === 'scheduled';
      return {
        mode: 'read-write',
        version: s.version + 1,
        updatedAt: iso(now),
        updatedBy: v.actor,
        window: {
          ...w,
          phase: cancelled ? 'closed' : 'thawing',
          endedAt: iso(now),
          closedAt: cancelled ? iso(now) : null,
          ...(v.message ? { report: { ...w.report, closingMessage: v.message } } : {}),
        },
      };
    });
    const w = state.window!;
    if (cancelled) this.#notify('ended', w);
    else void this.#runChecklist(w.id);
    return w;
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

  /**
   * Compare-and-set loop: re-read, apply `mutate`, write if the version did not move; on a
   * conflict retry with the fresh state. Applies the result locally and audits it.
   */
  async #transition(
    action: AuditEntry['action'],
    actor: string | undefined,
    reason: string | undefined,
    mutate: (s: QuiesceState) => QuiesceState,
    audit = true,
    awaitApply = true,
  ): Promise<QuiesceState> {
    if (!this.#store.writable) {
      throw new QuiesceError(
        'STORE_READ_ONLY',
        `the ${this.#store.kind} store cannot be written; change it at its source`,
      );
    }
    let current: QuiesceState;
    try {
      current = await this.#store.read();
    } catch (err) {
      throw new QuiesceError('STORE_UNAVAILABLE', `state store unavailable: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    for (let attempt = 0; attempt < 20; attempt++) {
      // record (#13): an audited change of a window keeps its who/when/why in the window itself.
      const next = audit
        ? withTrail(mutate(current), action, actor ?? this.instanceId, reason, iso(this.#clock.now()))
        : mutate(current);
      let r: Awaited<ReturnType<StateStore['compareAndSet']>>;
      try {
        r = await this.#store.compareAndSet(current.version, next);
      } catch (err) {
        if (err instanceof QuiesceError) throw err;
        throw new QuiesceError('STORE_UNAVAILABLE', `state store unavailable: ${errorMessage(err)}`, {
          cause: err,
        });
      }
      if (r.ok) {
        this.#lastSync = this.#clock.now();
        // Audit first, so the trail is complete by the time anyone sees the new phase.
        if (audit) {
          const entry: AuditEntry = {
            at: iso(this.#clock.now()),
            actor: actor ?? this.instanceId,
            action,
            ...(reason ? { reason } : {}),
            windowId: r.state.window?.id ?? current.window?.id ?? null,
            from: { mode: current.mode, phase: current.window?.phase ?? null },
            to: { mode: r.state.mode, phase: r.state.window?.phase ?? null },
            version: r.state.version,
          };
          await this.#auditLog
            .append(entry)
            .catch((err) => this.#log.error('quiesce: audit append failed', { error: errorMessage(err) }));
          this.#emit('audit', entry);
        }
        // Record patches made from inside a phase hook must not wait on the apply chain that runs the hook.
        if (awaitApply) await this.#enqueueApply(r.state);
        else void this.#enqueueApply(r.state);
        return r.state;
      }
      current = r.current;
    }
    throw new QuiesceError('VERSION_CONFLICT', 'state kept changing concurrently; gave up after 20 attempts');
  }

  /** Patch the current window (notices, report) without changing its phase; silent if it moved on. */
  async #updateWindow(windowId: string, patch: (w: MaintenanceWindow) => MaintenanceWindow): Promise<void> {
    try {
      await this.#transition(
        'notice',
        undefined,
        undefined,
        (s) => {
          if (s.window?.id !== windowId) throw new QuiesceError('NOT_FOUND', 'window moved on');
          return { ...s, version: s.version + 1, updatedAt: iso(this.#clock.now()), window: patch(s.window) };
        },
        false,
        false,
      );
    } catch (err) {
      if (!(err instanceof QuiesceError && err.code === 'NOT_FOUND')) {
        this.#log.warn('quiesce: could not update the window record', { windowId, error: errorMessage(err) });
      }
    }
  }

  async addToReport(key: string, value: unknown): Promise<void> {
    const w = this.#state.window;
    if (!w) throw new QuiesceError('NO_ACTIVE_WINDOW', 'addToReport: there is no window');
    await this.#updateWindow(w.id, (win) => ({ ...win, report: { ...win.report, [key]: value } }));
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
    const wasReadOnly = this.#readOnly;
    this.#recompute();
    this.#emit('state', next, prev);
    const prevPhase = prev.window?.id === next.window?.id ? (prev.window?.phase ?? null) : null;
    const phase = next.window?.phase ?? null;
    if (phase !== prevPhase || prev.window?.id !== next.window?.id) {
      if (next.window && phase && phase !== prevPhase) await this.#runPhaseHooks(phase, next.window);
      this.#emit('phase', phase, next.window, prevPhase);
    }
    if (this.#readOnly && !wasReadOnly) this.#replayAbort?.abort();
    if (
      phase === 'backfilling' &&
      phase !== prevPhase &&
      this.#participant &&
      this.#handlers.size > 0 &&
      this.#started
    ) {
      void this.#backfillAndClose(next.window!.id);
    }
    if (!this.#readOnly && wasReadOnly) for (const l of this.#writableListeners) l();
    this.#armWindowTimer();
    this.#ackedVersion = next.version;
    if (this.#started) void this.#heartbeat(false);
  }

  #recompute(): void {
    const w = this.#state.window;
    let readOnly = this.#state.mode === 'read-only';
    if (this.#fallback === 'read-only') readOnly = true;
    else if (this.#fallback === 'read-write') readOnly = false;
    this.#readOnly = readOnly;
    if (!readOnly) {
      this.#tpl = null;
      this.#health.setWindow(false);
      return;
    }
    this.#health.setWindow(true);
    this.#tpl =
      w && this.#state.mode === 'read-only'
        ? {
            windowId: w.id,
            endsAt: w.endsAt,
            endsAtMs: w.endsAt ? Date.parse(w.endsAt) : null,
            message: w.message,
            scope: w.scope && w.scope.length > 0 ? new Set(w.scope) : null,
          }
        : {
            windowId: 'store-unavailable',
            endsAt: null,
            endsAtMs: null,
            message: 'Writes are paused: the maintenance state could not be confirmed.',
            scope: null,
          };
  }

  async #runPhaseHooks(phase: Phase, w: MaintenanceWindow): Promise<void> {
    const hooks = this.#phaseHooks.get(phase);
    if (!hooks) return;
    for (const hook of [...hooks]) {
      try {
        await hook(w);
      } catch (err) {
        this.#log.error('quiesce: phase hook failed', { phase, error: errorMessage(err) });
      }
    }
  }

  onPhase(phase: Phase, hook: (window: MaintenanceWindow) => unknown): () => void {
    if (!PHASE_INDEX.has(phase))
      throw new QuiesceError('INVALID_INPUT', `onPhase: unknown phase "${phase}"`, { field: 'phase' });
    const set = this.#phaseHooks.get(phase) ?? new Set();
    this.#phaseHooks.set(phase, set);
    set.add(hook);
    return () => set.delete(hook);
  }

  beforeThaw(hook: (window: MaintenanceWindow) => unknown): () => void {
    this.#beforeThaw.add(hook);
    return () => this.#beforeThaw.delete(hook);
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
    if (this.#closed) return;
    try {
      const now = this.#clock.now();
      const state = await this.#transition('begin', 'schedule', 'scheduled start', (s) => {
        if (s.window?.id !== windowId || s.window.phase !== 'scheduled')
          throw new QuiesceError('NOT_FOUND', 'already started');
        const version = s.version + 1;
        return {
          mode: 'read-only',
          version,
          updatedAt: iso(now),
          updatedBy: 'schedule',
          window: { ...s.window, startsAt: iso(now), phase: 'freezing', freezeVersion: version },
        };
      });
      this.#notify('started', state.window!);
      void this.#confirmFreeze(windowId);
    } catch (err) {
      // Another instance won the race, or the window was cancelled.
      if (!(err instanceof QuiesceError && err.code === 'NOT_FOUND'))
        this.#log.error('quiesce: scheduled start failed', { error: errorMessage(err) });
    }
  }

  // ---------------------------------------------------------------- drain and confirmation

  async #stragglers(freezeVersion: number): Promise<{ blocking: Straggler[]; lost: Straggler[] }> {
    const blocking: Straggler[] = [];
    const lost: Straggler[] = [];
    const now = this.#clock.now();
    if (this.#participant) {
      const oldest = this.#inflight.oldest();
      if (this.#inflight.count > 0) {
        blocking.push({
          instanceId: this.instanceId,
          inFlight: this.#inflight.count,
          ackedVersion: this.#ackedVersion,
          reason: 'in-flight',
          ...(oldest ? { oldestOperation: oldest.name } : {}),
        });
      }
    }
    const registry = this.#store.registry;
    if (registry) {
      for (const r of await registry.list()) {
        if (r.id === this.instanceId) continue;
        const base = {
          instanceId: r.id,
          inFlight: r.inFlight,
          ackedVersion: r.ackedVersion,
          ...(r.oldestOperation ? { oldestOperation: r.oldestOperation } : {}),
        };
        if (now - r.lastSeen > this.#o.instanceTimeoutMs) lost.push({ ...base, reason: 'lost' });
        else if (r.ackedVersion < freezeVersion) blocking.push({ ...base, reason: 'not-acknowledged' });
        else if (r.inFlight > 0) blocking.push({ ...base, reason: 'in-flight' });
      }
    }
    return { blocking, lost };
  }

  async #confirmFreeze(windowId: string): Promise<void> {
    if (this.#confirming.has(windowId)) return;
    this.#confirming.add(windowId);
    try {
      const deadline = this.#clock.now() + this.#o.drainDeadlineMs;
      for (;;) {
        const w = this.#state.window;
        if (this.#closed || w?.id !== windowId || w.phase !== 'freezing') return;
        const { blocking, lost } = await this.#stragglers(w.freezeVersion ?? this.#state.version);
        for (const l of lost) {
          this.#log.warn('quiesce: instance stopped heartbeating; dropped from acknowledgements', {
            instanceId: l.instanceId,
          });
          await this.#store.registry?.remove(l.instanceId).catch(() => {});
        }
        this.#lostInstances[windowId] = [
          ...(this.#lostInstances[windowId] ?? []).filter((s) => s.reason === 'lost'),
          ...lost,
        ];
        const timedOut = this.#clock.now() >= deadline;
        if (blocking.length === 0 || timedOut) {
          const named = [...this.#lostInstances[windowId]!, ...(timedOut ? blocking : [])];
          if (timedOut && blocking.length > 0) {
            this.#log.warn('quiesce: drain deadline passed; stragglers', { stragglers: blocking });
            this.#emit('drain-timeout', blocking);
          }
          const now = this.#clock.now();
          await this.#transition(
            'phase',
            'controller',
            timedOut && blocking.length ? 'drain deadline passed' : 'all instances confirmed',
            (s) => {
              if (s.window?.id !== windowId || s.window.phase !== 'freezing')
                throw new QuiesceError('NOT_FOUND', 'moved on');
              return {
                ...s,
                version: s.version + 1,
                updatedAt: iso(now),
                window: { ...s.window, phase: 'frozen', frozenAt: iso(now), stragglers: named },
              };
            },
          ).catch((err) => {
            if (!(err instanceof QuiesceError && err.code === 'NOT_FOUND')) throw err;
          });
          return;
        }
        await this.#waitForChange(Math.min(50, Math.max(1, deadline - this.#clock.now())));
      }
    } catch (err) {
      this.#log.error('quiesce: freeze confirmation failed', { windowId, error: errorMessage(err) });
    } finally {
      this.#confirming.delete(windowId);
    }
  }

  /** Sleep, but wake early when the registry reports a change (an acknowledgement, a drained instance). */
  #waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let off: (() => void) | undefined;
      const timer = this.#clock.setTimeout(() => {
        off?.();
        resolve();
      }, ms);
      off = this.#store.registry?.subscribe?.(() => {
        this.#clock.clearTimeout(timer);
        off?.();
        resolve();
      });
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((r) => this.#clock.setTimeout(r, ms));
  }

  // ---------------------------------------------------------------- end of window checklist

  /** Writes are back on (thawing) → soak → closure notice → backfill → closed. */
  async #runChecklist(windowId: string): Promise<void> {
    const still = (phase: Phase) =>
      !this.#closed && this.#state.window?.id === windowId && this.#state.window.phase === phase;
    try {
      await this.#sleep(this.#o.soakMs);
      if (!still('thawing')) return;
      const health = this.#health.report();
      await this.#updateWindow(windowId, (w) => ({ ...w, report: { ...w.report, readHealth: health } }));
      this.#notify('ended', this.#state.window!);
      await this.#transition('phase', 'controller', 'soak complete', (s) => {
        if (s.window?.id !== windowId || s.window.phase !== 'thawing')
          throw new QuiesceError('NOT_FOUND', 'moved on');
        return {
          ...s,
          version: s.version + 1,
          updatedAt: iso(this.#clock.now()),
          window: { ...s.window, phase: 'backfilling' },
        };
      });
      // An engine that cannot replay (a CLI or controller without handlers) leaves the backfill to
      // the participant instances: each replays when it applies `backfilling` and the last to find
      // the queue empty closes the window.
      if (this.#handlers.size === 0 && !this.#participant) {
        const now = this.#clock.now();
        const replayers = (await this.#store.registry?.list().catch(() => []))?.filter(
          (r) => r.replays && now - r.lastSeen <= this.#o.instanceTimeoutMs,
        );
        if (replayers && replayers.length > 0) return;
        // Nobody can replay: close rather than sit in `backfilling`, and say so in the record.
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
        );
        return;
      }
      await this.#backfillAndClose(windowId);
    } catch (err) {
      if (err instanceof QuiesceError && err.code === 'NOT_FOUND') return;
      this.#log.error('quiesce: end-of-window checklist failed', { windowId, error: errorMessage(err) });
    }
  }

  /** Replay, then close the window if the (possibly shared) queue is empty. Safe on every instance. */
  async #backfillAndClose(windowId: string): Promise<void> {
    if (this.#backfilling.has(windowId)) return;
    this.#backfilling.add(windowId);
    try {
      const still = () =>
        !this.#closed && this.#state.window?.id === windowId && this.#state.window.phase === 'backfilling';
      const report = await this.backfill();
      if (report.paused || !still()) return;
      const stats = await this.#queue.stats().catch(() => null);
      // Another instance may still be replaying intents of a shared queue: it closes when done.
      if (stats && stats.depth > 0) return;
      await this.#close(windowId, report, stats?.depth ?? null);
    } catch (err) {
      if (err instanceof QuiesceError && err.code === 'NOT_FOUND') return;
      this.#log.error('quiesce: backfill failed', { windowId, error: errorMessage(err) });
    } finally {
      this.#backfilling.delete(windowId);
    }
  }

  async #close(
    windowId: string,
    backfill: ReplayReport | (ReplayReport & { skipped: string }),
    remaining: number | null,
  ): Promise<void> {
    const closed = await this.#transition('phase', 'controller', 'backfill complete', (s) => {
      if (s.window?.id !== windowId || s.window.phase !== 'backfilling')
        throw new QuiesceError('NOT_FOUND', 'moved on');
      const now = iso(this.#clock.now());
      return {
        ...s,
        version: s.version + 1,
        updatedAt: now,
        window: {
          ...s.window,
          phase: 'closed',
          closedAt: now,
          report: { ...s.window.report, backfill: { ...backfill, remaining } },
        },
      };
    });
    this.#notify('closed', closed.window!);
  }

  async backfill(): Promise<ReplayReport> {
    if (this.#readOnly)
      throw new QuiesceError('WINDOW_CONFLICT', 'backfill: writes are still refused; end the window first');
    const ctrl = new AbortController();
    this.#replayAbort?.abort();
    this.#replayAbort = ctrl;
    // A replayed intent is a write: a window that begins meanwhile waits for it to finish.
    const handlers = new Map<string, IntentHandler>();
    for (const [name, handler] of this.#handlers) {
      const op: Operation = { surface: 'custom', name: `replay ${name}` };
      handlers.set(name, async (payload, ctx) => {
        const h = this.track(op);
        try {
          return await handler(payload, ctx);
        } finally {
          h.done();
        }
      });
    }
    const report = await this.#queue.replay({
      ...this.#replayOptions,
      handlers,
      signal: ctrl.signal,
      onProgress: (p) => {
        this.#backfill = p;
        this.#emit('backfill-progress', p);
      },
    });
    if (this.#replayAbort === ctrl) this.#replayAbort = null;
    this.#metrics.replayed('applied', report.applied);
    this.#metrics.replayed('failed', report.failed);
    if (report.paused) this.#log.info('quiesce: backfill paused by a new window', { ...report });
    return report;
  }

  // ---------------------------------------------------------------- notifiers

  #notify(kind: NotifierEventKind, window: MaintenanceWindow): void {
    for (const n of this.#notifiers) {
      const prev = this.#notifyChains.get(n.name) ?? Promise.resolve();
      // Per-notifier order is kept (scheduled before started), and nothing waits on it.
      const run = prev.then(async () => {
        const current = this.#state.window?.id === window.id ? this.#state.window : window;
        const record = current.notices[n.name];
        try {
          const data = await n.notify(
            { kind, window: current, phase: current.phase, at: iso(this.#clock.now()) },
            { record, signal: this.#notifyAbort.signal, log: this.#log },
          );
          await this.#recordNotice(window.id, n.name, kind, (before) => ({
            status: 'ok',
            ...(before?.data || data ? { data: { ...before?.data, ...(data ?? {}) } } : {}),
          }));
        } catch (err) {
          const error = errorMessage(err);
          this.#metrics.notifierFailed(n.name);
          this.#log.error('quiesce: notifier failed', { notifier: n.name, event: kind, error });
          this.#emit('notifier-failed', { notifier: n.name, event: kind, error });
          await this.#recordNotice(window.id, n.name, kind, (before) => ({
            ...before,
            status: 'failed',
            lastError: error,
          }));
        }
      });
      this.#notifyChains.set(
        n.name,
        run.catch(() => {}),
      );
    }
  }

  /** Keep a notifier's outcome in the window's record (`window.notices[name]`). */
  #recordNotice(
    windowId: string,
    name: string,
    kind: NotifierEventKind,
    outcome: (before: NoticeRecord | undefined) => Pick<NoticeRecord, 'status'> & Partial<NoticeRecord>,
  ): Promise<void> {
    return this.#updateWindow(windowId, (w) => {
      const before = w.notices[name];
      const notice: NoticeRecord = {
        ...outcome(before),
        attempts: (before?.attempts ?? 0) + 1,
        lastEvent: kind,
        updatedAt: iso(this.#clock.now()),
      };
      return { ...w, notices: { ...w.notices, [name]: notice } };
    });
  }

  // ---------------------------------------------------------------- heartbeat, poll, fallback

  #scheduleHeartbeat(): void {
    if (this.#closed) return;
    this.#heartbeatTimer = this.#clock.setTimeout(async () => {
      await this.#heartbeat();
      this.#scheduleHeartbeat();
    }, this.#o.heartbeatMs);
  }

  /** Poll the store (the safety net for missed notifications), then report this instance. */
  async #heartbeat(poll = true): Promise<void> {
    if (this.#closed) return;
    if (poll) {
      try {
        const s = await this.#store.read();
        this.#lastSync = this.#clock.now();
        this.#storeError = null;
        if (this.#fallback !== null) this.#recover();
        await this.#enqueueApply(s);
      } catch (err) {
        this.#storeError = errorMessage(err);
        if (this.#fallback === null && this.#clock.now() - this.#lastSync > this.#o.stalenessMs)
          this.#applyFallback();
      }
      this.#queueStats = await this.#queue.stats().catch(() => this.#queueStats);
    }
    const registry = this.#store.registry;
    if (!registry || !this.#participant) return;
    const oldest = this.#inflight.oldest();
    const record: InstanceRecord = {
      id: this.instanceId,
      host: hostname(),
      pid: process.pid,
      startedAt: this.#startedAt,
      lastSeen: this.#clock.now(),
      ackedVersion: this.#ackedVersion,
      inFlight: this.#inflight.count,
      ...(oldest ? { oldestOperation: oldest.name, oldestSince: oldest.since } : {}),
      ...(this.#handlers.size > 0 ? { replays: true } : {}),
    };
    await registry.upsert(record).catch((err) => {
      this.#storeError = errorMessage(err);
    });
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
      to: { mode: this.#readOnly ? 'read-only' : 'read-write', phase },
      version: s.version,
    };
  }

  // ---------------------------------------------------------------- waiting

  waitForPhase(phase: Phase, options: { timeoutMs?: number } = {}): Promise<MaintenanceWindow> {
    const target = PHASE_INDEX.get(phase);
    if (target === undefined)
      return Promise.reject(
        new QuiesceError('INVALID_INPUT', `waitForPhase: unknown phase "${phase}"`, { field: 'phase' }),
      );
    const reached = () => {
      const w = this.#state.window;
      return w && PHASE_INDEX.get(w.phase)! >= target ? w : null;
    };
    const now = reached();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? 60_000;
      const timer = setTimeout(() => {
        off();
        reject(
          new QuiesceError(
            'INTERNAL',
            `waitForPhase: window did not reach "${phase}" within ${timeoutMs} ms (now ${this.phase ?? 'no window'})`,
          ),
        );
      }, timeoutMs);
      const off = this.on('phase', () => {
        const w = reached();
        if (w) {
          clearTimeout(timer);
          off();
          resolve(w);
        }
      });
    });
  }

  // ---------------------------------------------------------------- intents

  async enqueue(op: Operation, payload: unknown, options: { name?: string } = {}) {
    const name = options.name ?? op.name;
    const idempotencyKey = op.idempotencyKey ?? deriveIdempotencyKey(name, payload, op.principal);
    // conform (#15) begin: text every store can hold (400 naming the field, the same on every queue);
    // one request per key at a time (409); a queue that cannot store the intent is a 503, never a 500.
    assertStorableText(payload, 'payload', 'intent');
    assertStorableText({ name, idempotencyKey, principal: op.principal ?? null }, 'intent', 'intent');
    const release = this.#inProgress.begin(name, idempotencyKey);
    let r: Awaited<ReturnType<IntentQueue['enqueue']>>;
    try {
      r = await this.#queue.enqueue({
        name,
        idempotencyKey,
        payload,
        principal: op.principal ?? null,
        surface: op.surface,
        windowId: this.#state.window?.id ?? null,
      });
    } catch (err) {
      if (isQuiesceError(err)) throw err;
      throw new QuiesceError(
        'QUEUE_UNAVAILABLE',
        'intent: the queue could not store this write; retry later',
        {
          cause: err,
        },
      );
    } finally {
      release();
    }
    // conform (#15) end
    return { ...r, statusUrl: this.#statusUrl(r.intent.id) };
  }

  getIntent(id: string) {
    return this.#queue.get(id);
  }

  listIntents(options: { status?: IntentStatus; limit?: number } = {}) {
    return this.#queue.list(options);
  }

  handle(name: string, handler: IntentHandler): void {
    if (!name) throw new QuiesceError('INVALID_INPUT', 'handle: name is required', { field: 'name' });
    if (typeof handler !== 'function')
      throw new QuiesceError('INVALID_INPUT', `handle(${name}): handler must be a function`, {
        field: 'handler',
      });
    this.#handlers.set(name, handler);
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
    options: GuardToolOptions = {},
  ) {
    const op = this.#guardedOperation('tool', name, options.readOnly, options.policy);
    this.register({
      surface: 'tool',
      name: op.name,
      classification: options.readOnly ? 'read' : 'write',
      policy: options.readOnly ? 'allow' : (options.policy ?? 'block'),
      explicit: options.readOnly !== undefined || options.policy !== undefined,
      source: 'tool',
    });
    return async (...args: A): Promise<R | ToolRefusal> => {
      const d = this.decide(op);
      if (d.outcome !== 'proceed') {
        // [agent refusal: what an agent is told comes from core/agentRefusal.ts (owner: mcp helper, #19)]
        const r = agentRefusal({
          decision: d,
          message: this.#tpl?.message,
          contact: this.#state.window?.contact,
          tool: name,
          now: this.#clock.now(),
        });
        return { ok: false, refused: true, ...r, endsAt: r.windowEndsAt, retryAfter: r.retryAfterSeconds };
        // [/agent refusal]
      }
      const h = d.classification === 'write' ? this.track(op) : null;
      try {
        return await fn(...args);
      } finally {
        h?.done();
      }
    };
  }

  guardJob<A extends unknown[]>(name: string, fn: (...args: A) => unknown, options: GuardJobOptions = {}) {
    const missed = options.missed ?? 'skip';
    if (!['skip', 'coalesce', 'replay'].includes(missed)) {
      throw new QuiesceError(
        'INVALID_INPUT',
        `guardJob(${name}): missed must be skip, coalesce or replay, got "${missed}"`,
        { field: 'missed' },
      );
    }
    const op = this.#guardedOperation('cron', name, options.readOnly, undefined);
    this.register({
      surface: 'cron',
      name: op.name,
      classification: options.readOnly ? 'read' : 'write',
      policy: options.readOnly ? 'allow' : 'block',
      explicit: options.readOnly !== undefined || options.missed !== undefined,
      source: options.source ?? 'cron',
      details: { missed },
    });
    const pending: A[] = [];
    const run = async (args: A) => {
      const h = this.track(op);
      try {
        await fn(...args);
      } finally {
        h.done();
      }
    };
    this.#writableListeners.add(() => {
      const ticks = pending.splice(0);
      if (ticks.length === 0 || missed === 'skip') return;
      const toRun = missed === 'coalesce' ? [ticks[ticks.length - 1]!] : ticks;
      this.#log.info(`quiesce: running ${toRun.length} missed tick(s) of ${name}`, {
        missed: ticks.length,
        policy: missed,
      });
      void (async () => {
        for (const args of toRun)
          await run(args).catch((err) =>
            this.#log.error(`quiesce: missed tick of ${name} failed`, { error: errorMessage(err) }),
          );
      })();
    });
    return async (...args: A): Promise<void> => {
      const d = this.decide(op);
      if (d.outcome !== 'proceed') {
        if (missed !== 'skip') pending.push(args);
        this.#log.info(`quiesce: tick of ${name} skipped during the window`, { missed });
        return;
      }
      await run(args);
    };
  }

  #guardedOperation(
    surface: Surface,
    name: string,
    readOnly: boolean | undefined,
    policy: Policy | undefined,
  ): Operation {
    if (!name) throw new QuiesceError('INVALID_INPUT', `guard: name is required`, { field: 'name' });
    return {
      surface,
      name: `${surface} ${name}`,
      ...(readOnly
        ? { annotation: { classification: 'read' as const } }
        : policy
          ? { annotation: { classification: 'write' as const, policy } }
          : {}),
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
          instances.push({
            ...r,
            live: now - r.lastSeen <= this.#o.instanceTimeoutMs,
            self: r.id === this.instanceId,
          });
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
      readOnly: this.#readOnly,
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
      instances,
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
    const set = this.#listeners.get(event) ?? new Set();
    this.#listeners.set(event, set);
    set.add(listener as (...args: any[]) => void);
    return () => set.delete(listener as (...args: any[]) => void);
  }

  #emit<E extends keyof EngineEvents>(event: E, ...args: EngineEvents[E]): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    // conform (#15): a bypass token never reaches a listener (logs, metrics, apps' own audit).
    if (event === 'decision') args = [args[0], redactOperation(args[1] as Operation)] as EngineEvents[E];
    for (const l of set) {
      try {
        l(...args);
      } catch (err) {
        this.#log.error(`quiesce: "${event}" listener threw`, { error: errorMessage(err) });
      }
    }
  }
}
