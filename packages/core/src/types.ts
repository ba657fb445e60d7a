import type { AgentRefusal } from './agentRefusal.js';
import type { AuditEntry, AuditLog } from './audit.js';
import type { BypassOptions } from './bypass.js';
import type { ClassificationRule, ClassifyResult } from './classifier.js';
import type { Clock } from './clock.js';
import type { EscalationLimits, EscalationOptions } from './escalation.js';
import type {
  IntentHandler,
  IntentQueue,
  IntentStats,
  IntentStatus,
  ReplayProgress,
  ReplayReport,
  WriteIntent,
} from './intentQueue.js';
import type { InventoryEntry } from './inventory.js';
import type { Logger, Notifier } from './notifier.js';
import type { Decision, Operation, Policy, Surface } from './operation.js';
import type { ReadHealthOptions, ReadHealthReport } from './readHealth.js';
import type { ReadSignals } from './readSignals.js';
import type { RetryAfterOptions } from './retryAfter.js';
import type { InstanceRecord, StateStore } from './store.js';
import type {
  BeginInput,
  EndInput,
  ExtendInput,
  MaintenanceWindow,
  Phase,
  QuiesceState,
  ScheduleInput,
  Straggler,
} from './window.js';

export type StoreFallback = 'keep' | 'read-only' | 'read-write';

export interface QuiesceOptions {
  /** Where the state lives. @default createMemoryStore() */
  store?: StateStore;
  /** Durable intent queue for `queue` writes. @default createMemoryIntentQueue() */
  intentQueue?: IntentQueue;
  /** This engine's id in the instance registry. @default `${hostname}:${pid}:${random}` */
  instanceId?: string;
  /**
   * Whether this engine is an instance that serves operations (registers, heartbeats, acknowledges).
   * A CLI or controller-only process sets false. @default true
   */
  participant?: boolean;
  /** Classification rules, first match wins; an operation's own annotation beats every rule. */
  rules?: ClassificationRule[];
  /** Status of a refusal. @default 503 */
  refusalStatus?: 503 | 423;
  retryAfter?: RetryAfterOptions;
  bypass?: BypassOptions;
  /** Report-only: every decision computed, counted and logged; nothing refused. @default false */
  dryRun?: boolean;
  notifiers?: Notifier[];
  auditLog?: AuditLog;
  logger?: Logger;
  clock?: Clock;
  /** How long freezing waits for acknowledgements and in-flight writes. @default 30000 */
  drainDeadlineMs?: number;
  /** Soak after writes are back on, before the closure notice and backfill. @default 10000 */
  soakMs?: number;
  /** Heartbeat and safety-net poll period. @default 1000 */
  heartbeatMs?: number;
  /**
   * Lease TTL: each heartbeat renews this instance's lease for this long. An instance that cannot
   * renew it (store unreachable, event loop stalled) stops starting writes by itself when it lapses;
   * the controller counts an unreachable instance as stopped only once its lease expired plus
   * `clockSkewMs`. Must be at least twice `heartbeatMs`. @default max(5000, 3 × heartbeatMs)
   */
  leaseTtlMs?: number;
  /** Bound on the clock difference between two instances, added before a lease counts as expired. @default 1000 */
  clockSkewMs?: number;
  /** @deprecated the lease TTL (`leaseTtlMs`); kept as its alias. */
  instanceTimeoutMs?: number;
  /** Period of the sweep that replays intents whose window is closed (stranded intents). @default 30000 */
  sweepMs?: number;
  /** How long the last known state is trusted while the store is unreachable. @default 30000 */
  stalenessMs?: number;
  /** Applied past `stalenessMs` without the store. @default 'keep' */
  storeFallback?: StoreFallback;
  /** Status URL of a queued intent, returned with 202. @default id => `/quiesce/intents/${id}` */
  intentStatusUrl?: (id: string) => string;
  /** Replay settings for the backfill. */
  replay?: {
    concurrency?: number;
    maxAttempts?: number;
    backoffMs?: number;
    /**
     * Cap on intents started per second by this instance's backfill (each replay also yields to the
     * event loop first, so reads are served between replays). 0 = no cap. @default 200
     */
    ratePerSecond?: number;
  };
  readHealth?: ReadHealthOptions;
  /**
   * What happens on `escalate` (reads degraded during a window): extend the window and run a
   * limited rollback once. Without it, the event is all that happens.
   */
  escalation?: EscalationOptions;
  /** Window ids. @default crypto.randomUUID-based `win_…` */
  generateId?: () => string;
}

export interface InFlightHandle {
  done(): void;
}

/** What `guardTool` returns instead of running: the agent refusal (`agentRefusal`) plus the earlier names. */
export interface ToolRefusal extends AgentRefusal {
  ok: false;
  refused: true;
  /** Same as `windowEndsAt`. */
  endsAt: string | null;
  /** Same as `retryAfterSeconds`. */
  retryAfter: number;
}

export type MissedTickPolicy = 'skip' | 'coalesce' | 'replay';

export interface GuardJobOptions {
  /** A job that only reads keeps running during a window. @default false */
  readOnly?: boolean;
  /** What happens to ticks missed during a window, at thaw. @default 'skip' */
  missed?: MissedTickPolicy;
  /** Where the job comes from, for the inventory. @default 'cron' */
  source?: string;
}

export interface GuardToolOptions {
  readOnly?: boolean;
  policy?: Policy;
}

export interface InstanceStatus extends InstanceRecord {
  /** Its lease (plus the clock-skew margin) has not expired. */
  live: boolean;
  self: boolean;
}

/** This instance's own lease: whether it may start writes. */
export interface LeaseStatus {
  /** False for an engine that holds no lease (not a participant, no registry, or a store it owns alone). */
  held: boolean;
  /** ISO time until which the lease runs, or null. */
  until: string | null;
  /** True while the lease has lapsed: this instance refuses writes whatever the window says. */
  fenced: boolean;
  ttlMs: number;
  clockSkewMs: number;
}

export interface EngineStatus {
  instanceId: string;
  state: QuiesceState;
  phase: Phase | null;
  readOnly: boolean;
  dryRun: boolean;
  store: {
    kind: string;
    healthy: boolean;
    lastSyncAt: string | null;
    fallback: StoreFallback | null;
    lastError: string | null;
  };
  inFlight: { count: number; oldest: { name: string; since: string } | null };
  lease: LeaseStatus;
  instances: InstanceStatus[];
  /** Intents this instance queued while no window was open on the store (a stale or fenced instance). */
  queuedOutsideWindow: number;
  counters: Record<'refused' | 'queued' | 'dropped' | 'bypassed' | 'dryRun', Record<string, number>>;
  queue: IntentStats | null;
  backfill: ReplayProgress | null;
  readHealth: ReadHealthReport;
}

export interface ReadOutcome {
  surface: Surface;
  durationMs: number;
  /** True for a 5xx or an exception. */
  error: boolean;
  /** Read-quality signals of this read, by name (e.g. `{ deltaS: 0.31, lambda: 0.9 }`); finite numbers. */
  signals?: ReadSignals;
}

export interface EngineEvents {
  /** Every applied state (any version change). */
  state: [state: QuiesceState, previous: QuiesceState];
  /** Every phase change of the current window. */
  phase: [phase: Phase | null, window: MaintenanceWindow | null, previous: Phase | null];
  decision: [decision: Decision, operation: Operation];
  /** Read health degraded during a window beyond the configured thresholds. */
  escalate: [report: ReadHealthReport];
  'drain-timeout': [stragglers: Straggler[]];
  'backfill-progress': [progress: ReplayProgress];
  'store-fallback': [info: { fallback: StoreFallback; since: string; error: string | null }];
  'store-recovered': [info: { at: string }];
  /** This instance's lease lapsed: it starts no write until it renews it. */
  fenced: [info: { at: string; leaseUntil: string | null }];
  /** This instance renewed its lease after it had lapsed. */
  unfenced: [info: { at: string }];
  /** Another instance's lease expired while this one drove the window: dropped and named. */
  'instance-lost': [straggler: Straggler];
  /** This instance took over the window of a controller whose lease expired. */
  takeover: [info: { windowId: string; from: string | null; phase: Phase }];
  'notifier-failed': [info: { notifier: string; event: string; error: string }];
  audit: [entry: AuditEntry];
  /** The engine is closing: end streams (SSE) that follow it. */
  close: [];
}

/** The resolved settings adapters read from an engine. */
export type EngineSettings = Readonly<{
  refusalStatus: number;
  dryRun: boolean;
  bypassHeader: string;
  bypassCookie: string;
  /** The escalation policy's limits this instance acts on; null when `escalate` is an event only. */
  escalation: Readonly<EscalationLimits> | null;
}>;

export interface QuiesceEngine {
  readonly instanceId: string;
  /** Last applied state. */
  readonly state: QuiesceState;
  readonly phase: Phase | null;
  readonly window: MaintenanceWindow | null;
  /** True while writes are refused on this instance (freezing/frozen, or the store fallback). */
  readonly readOnly: boolean;
  /** The clock behind every timer of this engine (adapters with timers of their own should share it). */
  readonly clock: Clock;
  readonly options: EngineSettings;

  /** Load the state from the store and start heartbeats. Idempotent; called by the first async method. */
  start(): Promise<void>;
  /**
   * Shut down: stop timers, end every wait in progress, let work already running finish (a heartbeat,
   * a backfill handler called before `close()`; no new intent starts: it stays queued), deregister,
   * close the store and queue owned by the engine. Nothing the engine started writes after it resolves.
   */
  close(): Promise<void>;

  begin(input: BeginInput): Promise<MaintenanceWindow>;
  schedule(input: ScheduleInput): Promise<MaintenanceWindow>;
  extend(input: ExtendInput): Promise<MaintenanceWindow>;
  /**
   * Writes back on; resolves once that is committed. The checklist (soak, closure, backfill) goes on.
   * `force: true` ends a window in any phase (a stuck thaw or backfill): closed at once, audited.
   */
  end(input?: EndInput): Promise<MaintenanceWindow>;
  /** Resolves when the current window reaches the phase (or later). */
  waitForPhase(phase: Phase, options?: { timeoutMs?: number }): Promise<MaintenanceWindow>;

  /** The hot path: synchronous, in memory, no I/O. */
  decide(operation: Operation): Decision;
  /** Classification alone (annotation, rules, surface default), with whether anyone decided it explicitly. */
  classify(operation: Operation): ClassifyResult;
  /** Track an in-flight write until `done()`. */
  track(operation: Operation): InFlightHandle;
  /** Report a read's outcome to the read-health watcher. */
  reportRead(outcome: ReadOutcome): void;

  /** Keep a write as a durable intent (after a decision `enqueue`). */
  enqueue(
    operation: Operation,
    payload: unknown,
    options?: { name?: string },
  ): Promise<{ intent: WriteIntent; created: boolean; statusUrl: string }>;
  getIntent(id: string): Promise<WriteIntent | null>;
  /** Intents in the queue, oldest first (newest `limit`), optionally of one status. */
  listIntents(options?: { status?: IntentStatus; limit?: number }): Promise<WriteIntent[]>;
  /** Register the handler that replays intents of this name after the window. */
  handle(name: string, handler: IntentHandler): void;
  /** Run the backfill now (normally run by the end-of-window checklist). */
  backfill(): Promise<ReplayReport>;

  register(entry: InventoryEntry): void;
  inventory(): InventoryEntry[];

  guardTool<A extends unknown[], R>(
    name: string,
    fn: (...args: A) => R | Promise<R>,
    options?: GuardToolOptions,
  ): (...args: A) => Promise<R | ToolRefusal>;
  guardJob<A extends unknown[]>(
    name: string,
    fn: (...args: A) => unknown,
    options?: GuardJobOptions,
  ): (...args: A) => Promise<void>;

  status(): Promise<EngineStatus>;
  audit(options?: { limit?: number; windowId?: string }): Promise<AuditEntry[]>;
  /** Add members to the current window's closing record (write audit, reports). */
  addToReport(key: string, value: unknown): Promise<void>;
  /**
   * Hooks run on every instance when it applies a phase, awaited before it acknowledges the state
   * (e.g. stop job workers at `freezing`, snapshot the write audit at `frozen`). Keep them short:
   * stop starting new work, do not wait for running work — tracked writes drain on their own.
   */
  onPhase(phase: Phase, hook: (window: MaintenanceWindow) => unknown | Promise<unknown>): () => void;

  /**
   * Hooks awaited on the instance that ends a window, after validation and just before writes come
   * back on (e.g. the storage write audit's closing snapshot). A throw is logged, never blocks the end.
   */
  beforeThaw(hook: (window: MaintenanceWindow) => unknown | Promise<unknown>): () => void;

  on<E extends keyof EngineEvents>(event: E, listener: (...args: EngineEvents[E]) => void): () => void;
}
