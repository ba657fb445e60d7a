import type { AuditEntry } from './audit.js';
import { withTrail } from './closingTrail.js';
import { background, type EngineContext } from './context.js';
import { QuiesceError } from './errors.js';
import { errorMessage, iso } from './events.js';
import { advance } from './phases.js';
import type { StateStore } from './store.js';
import type { MaintenanceWindow, QuiesceState } from './window.js';

export interface TransitionOptions {
  action: AuditEntry['action'];
  /** Who asked; this instance when absent. */
  actor?: string | undefined;
  reason?: string | undefined;
  /** Keep who/when/why in the window's trail and append an audit entry. @default true */
  audit?: boolean;
  /**
   * Resolve once this instance applied the new state. False for patches made from inside a phase
   * hook, which must not wait on the apply chain that runs the hook. @default true
   */
  awaitApply?: boolean;
}

/** A change a transition declines to make: the window it was meant for moved on (nothing is written). */
export type Mutation<R extends QuiesceState | null> = (s: QuiesceState) => R;

export interface TransitionDeps {
  /** Apply a committed state locally (the replica's apply chain). */
  apply(state: QuiesceState): Promise<void>;
  /** The store answered: the replica's last sync is now. */
  synced(): void;
}

const MAX_ATTEMPTS = 20;

/** Compare-and-set changes of the shared state, audited: the only way the engine writes the state. */
export class Transitions {
  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: TransitionDeps,
  ) {}

  /**
   * Re-read, apply `mutate`, write if the version did not move; on a conflict retry with the fresh
   * state. Applies the result locally and audits it. Null when `mutate` declined (returned null).
   */
  transition(options: TransitionOptions, mutate: Mutation<QuiesceState>): Promise<QuiesceState>;
  transition(options: TransitionOptions, mutate: Mutation<QuiesceState | null>): Promise<QuiesceState | null>;
  async transition(
    { action, actor, reason, audit = true, awaitApply = true }: TransitionOptions,
    mutate: Mutation<QuiesceState | null>,
  ): Promise<QuiesceState | null> {
    const { store, clock, instanceId } = this.ctx;
    if (!store.writable) {
      throw new QuiesceError(
        'STORE_READ_ONLY',
        `the ${store.kind} store cannot be written; change it at its source`,
      );
    }
    let current: QuiesceState;
    try {
      current = await store.read();
    } catch (err) {
      throw new QuiesceError('STORE_UNAVAILABLE', `state store unavailable: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const changed = mutate(current);
      if (changed === null) return null;
      // record (#13): an audited change of a window keeps its who/when/why in the window itself.
      const next = audit
        ? withTrail(changed, action, actor ?? instanceId, reason, iso(clock.now()))
        : changed;
      let r: Awaited<ReturnType<StateStore['compareAndSet']>>;
      try {
        r = await store.compareAndSet(current.version, next);
      } catch (err) {
        if (err instanceof QuiesceError) throw err;
        throw new QuiesceError('STORE_UNAVAILABLE', `state store unavailable: ${errorMessage(err)}`, {
          cause: err,
        });
      }
      if (r.ok) {
        this.deps.synced();
        // Audit first, so the trail is complete by the time anyone sees the new phase.
        if (audit) await this.#audit(current, r.state, action, actor ?? instanceId, reason);
        if (awaitApply) await this.deps.apply(r.state);
        else background(this.ctx, () => this.deps.apply(r.state));
        return r.state;
      }
      current = r.current;
    }
    throw new QuiesceError(
      'VERSION_CONFLICT',
      `state kept changing concurrently; gave up after ${MAX_ATTEMPTS} attempts`,
    );
  }

  /** Patch the window `windowId` (notices, report, checklist) without changing its phase; silent if it moved on. */
  async updateWindow(windowId: string, patch: (w: MaintenanceWindow) => MaintenanceWindow): Promise<void> {
    try {
      await this.transition({ action: 'notice', audit: false, awaitApply: false }, (s) =>
        s.window?.id === windowId
          ? advance(s, this.ctx.clock.now(), () => ({ window: patch(s.window!) }))
          : null,
      );
    } catch (err) {
      this.ctx.log.warn('quiesce: could not update the window record', {
        windowId,
        error: errorMessage(err),
      });
    }
  }

  /** An audit entry for a change this instance made of itself (lease, fallback), or of another (lost). */
  async #audit(
    from: QuiesceState,
    to: QuiesceState,
    action: AuditEntry['action'],
    actor: string,
    reason: string | undefined,
  ): Promise<void> {
    const entry: AuditEntry = {
      at: iso(this.ctx.clock.now()),
      actor,
      action,
      ...(reason ? { reason } : {}),
      windowId: to.window?.id ?? from.window?.id ?? null,
      from: { mode: from.mode, phase: from.window?.phase ?? null },
      to: { mode: to.mode, phase: to.window?.phase ?? null },
      version: to.version,
    };
    await this.ctx.auditLog
      .append(entry)
      .catch((err) => this.ctx.log.error('quiesce: audit append failed', { error: errorMessage(err) }));
    this.ctx.events.emit('audit', entry);
  }
}
