import type { AuditEntry } from './audit.js';
import type { EngineContext } from './context.js';
import type { DecisionView, RefusalTemplate } from './decider.js';
import { errorMessage, iso } from './events.js';
import type { StoreFallback } from './types.js';
import { INITIAL_STATE, type MaintenanceWindow, type Phase, type QuiesceState } from './window.js';

/** What decide() reads, kept current here; the heartbeat moves the lease. */
export interface ReplicaView extends DecisionView {
  readOnly: boolean;
  leaseUntil: number;
  template: RefusalTemplate | null;
}

export interface ReplicaDeps {
  /** The app's hooks for `phase`, awaited before the state is acknowledged. */
  runPhaseHooks(phase: Phase, window: MaintenanceWindow): Promise<void>;
  /** Whether reads now run during a window (the read-health baseline stops). */
  readsInWindow(inWindow: boolean): void;
  /** Writes are refused again: a running backfill pauses. */
  writesStopped(): void;
  /** A newer state was applied and acknowledged (`prevPhase`: of the same window, else null). */
  applied(next: QuiesceState, prevPhase: Phase | null): void;
}

const LEASE_EXPIRED: RefusalTemplate = {
  windowId: 'lease-expired',
  endsAt: null,
  endsAtMs: null,
  message: 'Writes are paused: this instance cannot confirm the maintenance state with the others.',
  scope: null,
};
const STORE_UNAVAILABLE: RefusalTemplate = {
  windowId: 'store-unavailable',
  endsAt: null,
  endsAtMs: null,
  message: 'Writes are paused: the maintenance state could not be confirmed.',
  scope: null,
};

/**
 * This instance's replica of the shared state: the store subscription, the apply chain (one state at
 * a time, versions only grow), the read-only flag and refusal it implies, the store fallback, and
 * the version this instance acknowledged.
 */
export class StateReplica {
  state: QuiesceState = INITIAL_STATE;
  readonly view: ReplicaView = { readOnly: false, leaseUntil: Number.POSITIVE_INFINITY, template: null };
  /** The lease lapsed and was not renewed since (set by the heartbeat). */
  fenced = false;
  fallback: StoreFallback | null = null;
  lastSync: number;
  storeError: string | null = null;
  ackedVersion = 0;
  readonly #writable = new Set<() => void>();
  #chain: Promise<void> = Promise.resolve();
  #unsubscribe: (() => void) | null = null;

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: ReplicaDeps,
  ) {
    this.lastSync = ctx.clock.now();
    // Fail closed: a leased instance starts writes only once it has seen the store and renewed its lease.
    if (ctx.options.leased) this.view.leaseUntil = Number.NEGATIVE_INFINITY;
  }

  /** Read the state once, then follow the store's feed. */
  async follow(): Promise<void> {
    const { store, clock, log } = this.ctx;
    try {
      const s = await store.read();
      this.synced();
      await this.apply(s);
    } catch (err) {
      this.storeError = errorMessage(err);
      log.error('quiesce: could not read the state store at start; keeping the last known state', {
        error: this.storeError,
      });
    }
    this.#unsubscribe = store.subscribe(
      (s) => {
        this.lastSync = clock.now();
        void this.apply(s);
      },
      (err) => {
        this.storeError = err.message;
        log.warn('quiesce: store feed error', { error: err.message });
      },
    );
  }

  stop(): void {
    this.#unsubscribe?.();
  }

  /** The store answered now. */
  synced(): void {
    this.lastSync = this.ctx.clock.now();
  }

  /** Each time writes come back on here (the window thawed, the lease renewed). */
  onWritable(listener: () => void): () => void {
    this.#writable.add(listener);
    return () => this.#writable.delete(listener);
  }

  writable(): void {
    for (const l of this.#writable) l();
  }

  /** Queue `s` on the apply chain; resolves once it (and everything before it) is applied. */
  apply(s: QuiesceState): Promise<void> {
    const run = this.#chain.then(() => this.#apply(s));
    this.#chain = run.catch((err) =>
      this.ctx.log.error('quiesce: applying state failed', { error: errorMessage(err) }),
    );
    return this.#chain;
  }

  async #apply(next: QuiesceState): Promise<void> {
    const prev = this.state;
    // Versions only grow; anything not newer was applied already (initial state excepted).
    if (next.version <= prev.version && prev !== INITIAL_STATE) return;
    this.state = next;
    const wasReadOnly = this.view.readOnly;
    this.recompute();
    const { events } = this.ctx;
    events.emit('state', next, prev);
    const prevPhase = prev.window?.id === next.window?.id ? (prev.window?.phase ?? null) : null;
    const phase = next.window?.phase ?? null;
    if (phase !== prevPhase || prev.window?.id !== next.window?.id) {
      if (next.window && phase && phase !== prevPhase) await this.deps.runPhaseHooks(phase, next.window);
      events.emit('phase', phase, next.window, prevPhase);
    }
    if (this.view.readOnly && !wasReadOnly) this.deps.writesStopped();
    if (!this.view.readOnly && wasReadOnly) this.writable();
    this.ackedVersion = next.version;
    this.deps.applied(next, prevPhase);
  }

  /** Derive the read-only flag and the refusal from the state, the fallback and the lease. */
  recompute(): void {
    const s = this.state;
    const w = s.window;
    let readOnly = s.mode === 'read-only';
    if (this.fallback === 'read-only') readOnly = true;
    else if (this.fallback === 'read-write') readOnly = false;
    // Whatever the fallback says: without a lease this instance starts no write.
    const fenced = this.fenced || this.view.leaseUntil === Number.NEGATIVE_INFINITY;
    if (fenced) readOnly = true;
    this.view.readOnly = readOnly;
    this.deps.readsInWindow(readOnly);
    if (!readOnly) {
      this.view.template = null;
      return;
    }
    this.view.template =
      w && s.mode === 'read-only'
        ? {
            windowId: w.id,
            endsAt: w.endsAt,
            endsAtMs: w.endsAt ? Date.parse(w.endsAt) : null,
            message: w.message,
            // A fenced instance refuses every surface: it cannot know the window is still scoped so.
            scope: !fenced && w.scope && w.scope.length > 0 ? new Set(w.scope) : null,
          }
        : fenced
          ? LEASE_EXPIRED
          : STORE_UNAVAILABLE;
  }

  /** The store stayed unreachable past the staleness bound: apply the configured fallback. */
  applyFallback(): void {
    const { timing, metrics, log, events } = this.ctx;
    const fallback = timing.storeFallback;
    this.fallback = fallback;
    metrics.fallback(fallback);
    const since = iso(this.lastSync);
    log.error(
      `quiesce: state store unreachable for over ${timing.stalenessMs} ms; applying fallback "${fallback}"`,
      { error: this.storeError, since },
    );
    this.recompute();
    events.emit('store-fallback', { fallback, since, error: this.storeError });
    void this.ctx.auditLog.append(this.selfAudit('fallback', `store unreachable; fallback ${fallback}`));
  }

  recover(): void {
    this.fallback = null;
    this.recompute();
    this.ctx.log.info('quiesce: state store reachable again; fallback lifted');
    this.ctx.events.emit('store-recovered', { at: iso(this.ctx.clock.now()) });
    void this.ctx.auditLog.append(this.selfAudit('recover', 'store reachable again'));
  }

  /** An audit entry for what this instance did of itself (fallback, lease): the state stays as it is. */
  selfAudit(action: AuditEntry['action'], reason: string): AuditEntry {
    const s = this.state;
    const phase = s.window?.phase ?? null;
    return {
      at: iso(this.ctx.clock.now()),
      actor: this.ctx.instanceId,
      action,
      reason,
      windowId: s.window?.id ?? null,
      from: { mode: s.mode, phase },
      to: { mode: this.view.readOnly ? 'read-only' : 'read-write', phase },
      version: s.version,
    };
  }
}
