import { assemble, type EngineParts } from './assembly.js';
import type { AuditEntry } from './audit.js';
import type { Classifier, ClassifyResult } from './classifier.js';
import type { Clock } from './clock.js';
import { recordReadHealth } from './closingTrail.js';
import { settled } from './context.js';
import { type DeciderSettings, type DecisionNote, decide, LEASE_LAPSED } from './decider.js';
import { guardJob, guardTool } from './guards.js';
import type { IntentHandler, IntentStatus, ReplayReport, WriteIntent } from './intentQueue.js';
import { Inventory, type InventoryEntry } from './inventory.js';
import type { Decision, Operation } from './operation.js';
import type { DecisionRecorder } from './recorder.js';
import type { ReplicaView } from './replica.js';
import { engineStatus } from './status.js';
import type {
  EngineEvents,
  EngineSettings,
  EngineStatus,
  GuardJobOptions,
  GuardToolOptions,
  InFlightHandle,
  QuiesceEngine,
  QuiesceOptions,
  ReadOutcome,
  ToolRefusal,
} from './types.js';
import type {
  BeginInput,
  EndInput,
  ExtendInput,
  MaintenanceWindow,
  Phase,
  QuiesceState,
  ScheduleInput,
} from './window.js';

export function createQuiesce(options: QuiesceOptions = {}): QuiesceEngine {
  const engine = new Engine(options);
  // record (#13): each instance adds its read-health summary at the thaw, and each state change
  // (who/when/why) to the window's closing record.
  const recordError = (err: Error) =>
    options.logger?.warn?.('quiesce: closing record', { error: err.message });
  recordReadHealth(engine, recordError);
  return engine;
}

/**
 * The engine an app holds: a facade over modules named for what they own — the decider and its
 * recorder (the hot path), the state replica, the window controller and its timer, drain, the
 * closing checklist, backfill, supervision, the heartbeat, notices, intents and guards. They are
 * built and wired in assembly.ts.
 */
class Engine implements QuiesceEngine {
  readonly instanceId: string;
  readonly options: EngineSettings;
  readonly #p: EngineParts;
  // The hot path reads these directly.
  readonly #view: ReplicaView;
  readonly #clock: Clock;
  readonly #note: DecisionNote = { bypass: null };
  readonly #classify: Classifier;
  readonly #decider: DeciderSettings;
  readonly #recorder: DecisionRecorder;
  readonly #inventory = new Inventory();
  #started: Promise<void> | null = null;

  constructor(options: QuiesceOptions) {
    this.#p = assemble(options, this);
    this.instanceId = this.#p.ctx.instanceId;
    this.options = this.#p.ctx.options.settings;
    this.#view = this.#p.replica.view;
    this.#clock = this.#p.ctx.clock;
    this.#classify = this.#p.classify;
    this.#decider = this.#p.decider;
    this.#recorder = this.#p.recorder;
    // Start at once so decisions reflect the store as soon as possible; `await start()` to wait.
    void this.start().catch((err) =>
      this.#p.ctx.log.error('quiesce: start failed', {
        error: err instanceof Error ? err.message : String(err),
      }),
    );
  }

  get state(): QuiesceState {
    return this.#p.replica.state;
  }
  get window(): MaintenanceWindow | null {
    return this.#p.replica.state.window;
  }
  get phase(): Phase | null {
    return this.#p.replica.state.window?.phase ?? null;
  }
  get clock(): Clock {
    return this.#clock;
  }
  get readOnly(): boolean {
    return this.#view.readOnly;
  }

  // ---------------------------------------------------------------- lifecycle

  start(): Promise<void> {
    const { ctx, replica, heartbeat } = this.#p;
    ctx.life.started = true;
    this.#started ??= (async () => {
      await replica.follow();
      await heartbeat.beat();
      heartbeat.schedule();
    })();
    return this.#started;
  }

  async close(): Promise<void> {
    const p = this.#p;
    const { ctx } = p;
    if (ctx.life.closed) return;
    ctx.life.closed = true;
    p.heartbeat.close();
    p.windowTimer.close();
    p.backfill.close();
    p.escalation?.close(); // #18
    // Notifiers stop retrying at once (a dead endpoint must not hold the shutdown for its whole budget).
    const noticesClosed = p.notices.close();
    p.replica.stop();
    for (const wake of [...ctx.life.wake]) wake();
    // Work already running (a heartbeat, a confirmation, a backfill handler) finishes; none starts.
    await settled(ctx);
    if (ctx.options.participant && ctx.store.registry)
      await ctx.store.registry.remove(this.instanceId).catch(() => {});
    ctx.events.emit('close');
    await noticesClosed;
    if (p.ownsQueue) await ctx.queue.close();
    if (p.ownsStore) await ctx.store.close();
    ctx.events.clear();
  }

  // ---------------------------------------------------------------- the hot path

  decide(op: Operation): Decision {
    const c = this.#classify(op);
    let d = decide(c, op, this.#view, this.#clock, this.#decider, this.#note);
    if (d === LEASE_LAPSED) {
      this.#p.heartbeat.fence();
      d = decide(c, op, this.#view, this.#clock, this.#decider, this.#note) as Decision;
    }
    // The recorder keeps stopped writes, bypasses and dry runs; a plain proceed costs no call.
    if (d.outcome !== 'proceed' || d.reason === 'bypass' || d.reason === 'dry-run')
      this.#recorder.record(d, op, this.#note);
    return d;
  }

  classify(op: Operation): ClassifyResult {
    return this.#classify(op);
  }

  track(op: Operation): InFlightHandle {
    return this.#p.ctx.inflight.track(op);
  }

  reportRead(outcome: ReadOutcome): void {
    const { health, ctx } = this.#p;
    const readOnly = this.#view.readOnly;
    health.record(outcome.durationMs, outcome.error, outcome.signals); // signals: #18
    ctx.metrics.read(outcome.surface, outcome.durationMs, outcome.error, readOnly);
    if (outcome.signals !== undefined) ctx.metrics.readSignals(outcome.signals, readOnly); // #18
  }

  // ---------------------------------------------------------------- windows

  begin(input: BeginInput): Promise<MaintenanceWindow> {
    return this.#p.controller.begin(input);
  }

  schedule(input: ScheduleInput): Promise<MaintenanceWindow> {
    return this.#p.controller.schedule(input);
  }

  extend(input: ExtendInput): Promise<MaintenanceWindow> {
    return this.#p.controller.extend(input);
  }

  end(input?: EndInput): Promise<MaintenanceWindow> {
    return this.#p.controller.end(input);
  }

  addToReport(key: string, value: unknown): Promise<void> {
    return this.#p.controller.addToReport(key, value);
  }

  waitForPhase(phase: Phase, options?: { timeoutMs?: number }): Promise<MaintenanceWindow> {
    return this.#p.hooks.waitForPhase(phase, options);
  }

  onPhase(phase: Phase, hook: (window: MaintenanceWindow) => unknown): () => void {
    return this.#p.hooks.onPhase(phase, hook);
  }

  beforeThaw(hook: (window: MaintenanceWindow) => unknown): () => void {
    return this.#p.hooks.beforeThaw(hook);
  }

  // ---------------------------------------------------------------- intents and backfill

  enqueue(
    op: Operation,
    payload: unknown,
    options?: { name?: string },
  ): Promise<{ intent: WriteIntent; created: boolean; statusUrl: string }> {
    return this.#p.intents.enqueue(op, payload, options);
  }

  getIntent(id: string): Promise<WriteIntent | null> {
    return this.#p.intents.get(id);
  }

  listIntents(options?: { status?: IntentStatus; limit?: number }): Promise<WriteIntent[]> {
    return this.#p.intents.list(options);
  }

  handle(name: string, handler: IntentHandler): void {
    this.#p.intents.handle(name, handler);
  }

  backfill(): Promise<ReplayReport> {
    return this.#p.backfill.run(() => {});
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
    const { ctx, replica } = this.#p;
    return guardJob(this, { log: ctx.log, onWritable: (l) => replica.onWritable(l) }, name, fn, options);
  }

  // ---------------------------------------------------------------- status, audit, events

  async status(): Promise<EngineStatus> {
    await this.start();
    const p = this.#p;
    return engineStatus(p.ctx, { ...p, readHealth: () => p.health.report() });
  }

  audit(options?: { limit?: number; windowId?: string }): Promise<AuditEntry[]> {
    return this.#p.ctx.auditLog.list(options);
  }

  on<E extends keyof EngineEvents>(event: E, listener: (...args: EngineEvents[E]) => void): () => void {
    return this.#p.ctx.events.on(event, listener);
  }
}
