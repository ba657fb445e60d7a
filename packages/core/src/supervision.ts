import type { AuditEntry } from './audit.js';
import type { Backfill } from './backfill.js';
import { emptyChecklist } from './checklist.js';
import type { ClosingChecklist } from './closingChecklist.js';
import { background, type EngineContext } from './context.js';
import type { Drain } from './drain.js';
import { QuiesceError } from './errors.js';
import { errorMessage, iso } from './events.js';
import { expired, leaseOf } from './lease.js';
import { advance, OPEN_PHASES, openWindowId } from './phases.js';
import type { Transitions } from './transition.js';
import { isReadOnlyPhase, type QuiesceState, type Straggler } from './window.js';

export interface SupervisionDeps {
  state(): QuiesceState;
  readOnly(): boolean;
  /** begin() is announcing a window: it starts confirming it once the announcement is out. */
  announcing(): boolean;
  transitions: Transitions;
  drain: Drain;
  checklist: ClosingChecklist;
  backfill: Backfill;
}

/**
 * Who drives an open window: this instance runs the current phase's part when it is the controller,
 * names instances lost meanwhile, and takes the window over from a controller whose lease expired.
 */
export class Supervision {
  /** Per open window: since when its controller has had no registry record (a CLI, or one dropped). */
  readonly #missingSince = new Map<string, number>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: SupervisionDeps,
  ) {}

  /** Run whatever the current window needs from its controller, when that is this instance. */
  drive(): void {
    const w = this.deps.state().window;
    // begin() announces the window before it starts confirming it.
    if (this.deps.announcing() && w?.phase === 'freezing') return;
    if (!w || this.ctx.life.closed || w.checklist?.controller !== this.ctx.instanceId) return;
    if (w.phase === 'freezing') background(this.ctx, () => this.deps.drain.confirmFreeze(w.id));
    else if (w.phase === 'thawing') background(this.ctx, () => this.deps.checklist.run(w.id));
    else if (w.phase === 'backfilling') background(this.ctx, () => this.deps.backfill.drive(w.id));
  }

  /** Lease bookkeeping is per open window: drop it once that window closed or was replaced. */
  applied(state: QuiesceState): void {
    const open = openWindowId(state);
    for (const id of this.#missingSince.keys()) if (id !== open) this.#missingSince.delete(id);
  }

  /**
   * Every heartbeat: the controller names instances whose lease expired; any other participant
   * checks the controller's lease (one record) and takes the window over once it has expired.
   */
  async tick(): Promise<void> {
    const { store, clock, timing, instanceId } = this.ctx;
    if (this.ctx.life.closed) return;
    const w = this.deps.state().window;
    if (!w || !OPEN_PHASES.has(w.phase)) {
      this.deps.backfill.sweep();
      return;
    }
    if (!store.writable) return;
    const controller = w.checklist?.controller ?? null;
    if (controller === instanceId) {
      if (w.phase !== 'freezing') await this.#nameLost(w.id);
      this.drive();
      return;
    }
    const registry = store.registry;
    if (!this.ctx.options.participant || !registry || this.deps.readOnly() !== isReadOnlyPhase(w.phase))
      return;
    const now = clock.now();
    const rec = controller
      ? registry.get
        ? await registry.get(controller)
        : ((await registry.list()).find((r) => r.id === controller) ?? null)
      : null;
    if (rec && !expired(rec, now, timing)) {
      this.#missingSince.delete(w.id);
      return;
    }
    // A controller with no record holds no lease (a CLI, or one already dropped): give it one
    // lease's time from when this instance first saw it missing.
    if (!rec && !this.#missingSince.has(w.id)) this.#missingSince.set(w.id, now);
    const goneAt = rec
      ? leaseOf(rec, timing) + timing.clockSkewMs
      : this.#missingSince.get(w.id)! + timing.leaseTtlMs + timing.clockSkewMs;
    if (now <= goneAt) return;
    // Instances that can backfill get the first chance at a thaw or backfill; the others step in only if none does.
    if ((w.phase === 'thawing' || w.phase === 'backfilling') && this.ctx.handlers.size === 0) {
      if (now <= goneAt + 2 * timing.leaseTtlMs) return;
    }
    await this.#takeOver(w.id, controller);
  }

  async #takeOver(windowId: string, from: string | null): Promise<void> {
    const { instanceId, log } = this.ctx;
    const at = iso(this.ctx.clock.now());
    try {
      const s = await this.deps.transitions.transition(
        {
          action: 'takeover',
          actor: instanceId,
          reason: from ? `controller ${from} lost its lease` : 'the window had no controller holding a lease',
        },
        (cur) => {
          const w = cur.window;
          if (w?.id !== windowId || !OPEN_PHASES.has(w.phase) || (w.checklist?.controller ?? null) !== from)
            return null;
          const c = w.checklist ?? emptyChecklist(null);
          return advance(cur, at, () => ({
            window: {
              ...w,
              checklist: {
                ...c,
                controller: instanceId,
                takeovers: [...c.takeovers, { from, by: instanceId, at, phase: w.phase }],
              },
            },
          }));
        },
      );
      if (!s) return;
      const phase = s.window!.phase;
      log.warn('quiesce: took over the window from a controller whose lease expired', {
        windowId,
        from,
        phase,
      });
      this.ctx.events.emit('takeover', { windowId, from, phase });
      this.drive();
    } catch (err) {
      // Another instance took it over at the same time and kept winning the compare-and-set.
      if (err instanceof QuiesceError && err.code === 'VERSION_CONFLICT') return;
      log.warn('quiesce: takeover failed', { windowId, error: errorMessage(err) });
    }
  }

  /** The controller names and drops instances whose lease expired during the window. */
  async #nameLost(windowId: string): Promise<void> {
    const { store, clock, timing, instanceId, log, events } = this.ctx;
    const registry = store.registry;
    if (!registry) return;
    const now = clock.now();
    const lost: Straggler[] = [];
    for (const r of await registry.list()) {
      if (r.id === instanceId || !expired(r, now, timing)) continue;
      lost.push({
        instanceId: r.id,
        inFlight: r.inFlight,
        ackedVersion: r.ackedVersion,
        reason: 'lost',
        leaseUntil: iso(leaseOf(r, timing)),
        lastSeen: r.lastSeen,
        ...(r.oldestOperation ? { oldestOperation: r.oldestOperation } : {}),
      });
    }
    if (lost.length === 0) return;
    let added: Straggler[] = [];
    await this.deps.transitions.updateWindow(windowId, (w) => {
      const known = new Set(w.stragglers.map((s) => s.instanceId));
      added = lost.filter((l) => !known.has(l.instanceId));
      return { ...w, stragglers: [...w.stragglers, ...added] };
    });
    await this.deps.drain.dropFenced(lost);
    for (const l of added) {
      log.warn('quiesce: instance lost during the window (its lease expired); dropped and named', {
        instanceId: l.instanceId,
        leaseUntil: l.leaseUntil,
        windowId,
      });
      events.emit('instance-lost', l);
      const s = this.deps.state();
      const entry: AuditEntry = {
        at: iso(now),
        actor: instanceId,
        action: 'lease',
        reason: `instance ${l.instanceId} lost: its lease expired at ${l.leaseUntil}`,
        windowId,
        from: { mode: s.mode, phase: s.window?.phase ?? null },
        to: { mode: s.mode, phase: s.window?.phase ?? null },
        version: s.version,
        details: { instanceId: l.instanceId, leaseUntil: l.leaseUntil, inFlight: l.inFlight },
      };
      await this.ctx.auditLog.append(entry).catch(() => {});
      events.emit('audit', entry);
    }
  }
}
