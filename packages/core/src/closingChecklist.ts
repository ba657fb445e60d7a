import { type BackfillTotals, type Checklist, emptyChecklist } from './checklist.js';
import { canBackfill, type EngineContext, pause } from './context.js';
import type { Drain } from './drain.js';
import { errorMessage, iso } from './events.js';
import type { ReplayReport } from './intentQueue.js';
import { expired } from './lease.js';
import type { NotifierEventKind } from './notifier.js';
import { advance, requirePhase } from './phases.js';
import type { ReadHealthReport } from './readHealth.js';
import type { Transitions } from './transition.js';
import type { MaintenanceWindow, QuiesceState } from './window.js';

/** One instance's share of a backfill, as the closing record keeps it. */
export type ShareTotals = BackfillTotals['byInstance'][string];

export interface ChecklistDeps {
  state(): QuiesceState;
  transitions: Transitions;
  drain: Drain;
  notify(kind: NotifierEventKind, window: MaintenanceWindow): Promise<void>;
  readHealth(): ReadHealthReport;
}

/**
 * The end-of-window checklist, from `thawing` to `closed`: thaw confirmed → soak → closure notice →
 * (backfill, driven by backfill.ts) → the window closed with everyone's totals. Each step's progress
 * is in the store, so whoever drives the window next resumes where this one stopped.
 */
export class ClosingChecklist {
  readonly #running = new Set<string>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: ChecklistDeps,
  ) {}

  /** Patch the window's durable checklist (silent if the window moved on). */
  updateChecklist(windowId: string, patch: (c: Checklist) => Checklist): Promise<void> {
    return this.deps.transitions.updateWindow(windowId, (w) => ({
      ...w,
      checklist: patch(w.checklist ?? emptyChecklist(null)),
    }));
  }

  /** The controller's part of `thawing`, up to `backfilling`. */
  async run(windowId: string): Promise<void> {
    if (this.#running.has(windowId)) return;
    this.#running.add(windowId);
    const { clock, timing, instanceId } = this.ctx;
    const { drain } = this.deps;
    const still = () => this.#drives(windowId, 'thawing');
    try {
      let w = this.deps.state().window;
      if (!w || !still()) return;
      if (!w.checklist?.thaw) {
        const version = w.checklist?.thawVersion ?? this.deps.state().version;
        const since = Date.parse(w.endedAt ?? iso(clock.now()));
        const result = await drain.confirm('thaw', windowId, version, 'thawing', since);
        if (!result) return;
        await this.updateChecklist(windowId, (c) => ({ ...c, thaw: result.confirmation }));
        await drain.dropFenced(result.stragglers.filter((x) => x.reason === 'fenced'));
      }
      w = this.deps.state().window!;
      const soakFrom = Date.parse(w.checklist?.soakStartedAt ?? w.endedAt ?? iso(clock.now()));
      const soakMs = w.checklist?.soakMs ?? timing.soakMs;
      const remaining = soakFrom + soakMs - clock.now();
      if (remaining > 0) await this.#sleep(remaining);
      if (!still()) return;
      if (!(await this.#closureNotice(windowId))) return;
      if (!still()) return;
      // An instance that cannot backfill hands the backfill to one that can (a CLI, say).
      const heir = canBackfill(this.ctx) ? null : await drain.pickLive(true);
      const now = iso(clock.now());
      await this.deps.transitions.transition(
        { action: 'phase', actor: 'controller', reason: 'soak complete' },
        (s) => {
          const w = s.window;
          if (w?.id !== windowId || w.phase !== 'thawing') return null;
          const c = w.checklist ?? emptyChecklist(instanceId);
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
        },
      );
    } catch (err) {
      this.ctx.log.error('quiesce: end-of-window checklist failed', { windowId, error: errorMessage(err) });
    } finally {
      this.#running.delete(windowId);
    }
  }

  /** The last step: `backfilling` → `closed`, with the backfill's totals in the closing record. */
  async closeWindow(
    windowId: string,
    backfill: ReplayReport | (ReplayReport & { skipped: string }),
    remaining: number | null,
    byInstance: Record<string, ShareTotals>,
  ): Promise<void> {
    const closed = await this.deps.transitions.transition(
      { action: 'phase', actor: 'controller', reason: 'backfill complete' },
      (s) => {
        const w = s.window;
        if (w?.id !== windowId || w.phase !== 'backfilling') return null;
        const now = iso(this.ctx.clock.now());
        const c = w.checklist ?? emptyChecklist(this.ctx.instanceId);
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
    if (closed) void this.deps.notify('closed', closed.window!);
  }

  /** This instance still drives window `windowId` in `phase`. */
  #drives(windowId: string, phase: 'thawing' | 'backfilling'): boolean {
    const w = this.deps.state().window;
    return (
      !this.ctx.life.closed &&
      w?.id === windowId &&
      w.phase === phase &&
      w.checklist?.controller === this.ctx.instanceId
    );
  }

  #sleep(ms: number): Promise<void> {
    return pause(this.ctx, ms);
  }

  /**
   * Send the closure notice once: claim it in the store first, send, then mark it sent. A claim left
   * by a controller whose lease expired is taken over (the notice is then re-sent: notifiers get the
   * window's notice record to tell). False when the window moved on.
   */
  async #closureNotice(windowId: string): Promise<boolean> {
    const { clock, timing, instanceId } = this.ctx;
    for (;;) {
      const w = this.deps.state().window;
      if (!this.#drives(windowId, 'thawing') || !w) return false;
      const n = w.checklist?.closureNotice ?? null;
      if (n?.sentAt) return true;
      if (n && n.by !== instanceId) {
        const rec = await this.ctx.store.registry?.get?.(n.by).catch(() => null);
        if (rec && !expired(rec, clock.now(), timing)) {
          await this.#sleep(timing.heartbeatMs);
          continue;
        }
      }
      if (!n || n.by !== instanceId) {
        const health = this.deps.readHealth();
        const claimedAt = iso(clock.now());
        let won = false;
        await this.deps.transitions.updateWindow(windowId, (cur) => {
          const c = cur.checklist ?? emptyChecklist(null);
          const now = c.closureNotice;
          if (cur.phase !== 'thawing' || now?.sentAt || (now?.by ?? null) !== (n?.by ?? null)) return cur;
          won = true;
          return {
            ...cur,
            report: cur.report.readHealth ? cur.report : { ...cur.report, readHealth: health },
            checklist: { ...c, closureNotice: { by: instanceId, claimedAt, sentAt: null } },
          };
        });
        if (!won) {
          // Someone else claimed it meanwhile, or the update did not go through: look again.
          if ((this.deps.state().window?.checklist?.closureNotice?.by ?? null) === (n?.by ?? null))
            await this.#sleep(Math.min(timing.heartbeatMs, 250));
          continue;
        }
      }
      const current = this.deps.state().window;
      if (!current || current.id !== windowId) return false;
      await this.deps.notify('ended', current);
      await this.updateChecklist(windowId, (c) =>
        c.closureNotice?.by === instanceId
          ? { ...c, closureNotice: { ...c.closureNotice, sentAt: iso(clock.now()) } }
          : c,
      );
      return true;
    }
  }
}
