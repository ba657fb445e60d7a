// Words: a *backfill* runs queued write intents through their handlers once writes are back on —
// the window's `backfilling` phase (each instance with handlers runs its *share*), the sweep of
// stranded intents, and `engine.backfill()`. Internal names say backfill. "Replay" stays where it is
// already observable and means the same thing: the intent queue's API (`queue.replay`,
// `ReplayReport`, `options.replay`), the registry's `replays` flag, the `replayed` metric, and the
// wording of log lines and stored reasons, which operators and tests already match on.
import type { ClosingChecklist, ShareTotals } from './closingChecklist.js';
import { background, canBackfill, type EngineContext, pause } from './context.js';
import type { Drain } from './drain.js';
import { QuiesceError } from './errors.js';
import { errorMessage, iso } from './events.js';
import type { IntentHandler, ReplayProgress, ReplayReport } from './intentQueue.js';
import { expired } from './lease.js';
import type { Operation } from './operation.js';
import { OPEN_PHASES } from './phases.js';
import type { InstanceBackfill, InstanceRecord } from './store.js';
import type { InFlightHandle } from './types.js';
import type { QuiesceState } from './window.js';

/** The driver writes backfill progress into the state at most this often (every write reaches every instance). */
const PROGRESS_EVERY_MS = 1000;

export interface BackfillDeps {
  state(): QuiesceState;
  /** Writes are refused on this instance. */
  readOnly(): boolean;
  track(op: Operation): InFlightHandle;
  /** Tell a waiting controller at once (this instance finished its share). */
  announce(): Promise<void>;
  /** Run whatever the window needs from its controller. */
  drive(): void;
  drain: Drain;
  checklist: ClosingChecklist;
}

/** Backfills: this instance's share of a window's, the controller's drive to `closed`, and the sweep. */
export class Backfill {
  /** The last progress report of a backfill run here (`status().backfill`). */
  progress: ReplayProgress | null = null;
  /** This instance's share of the current window's backfill, published in its registry record. */
  mine: InstanceBackfill | null = null;
  readonly #driving = new Set<string>();
  readonly #shares = new Map<string, Promise<ReplayReport | null>>();
  /**
   * The run in progress over this instance's queue. There is at most one: a second `run()` (the
   * window's share and an app's `engine.backfill()` at once) joins it rather than replaying the same
   * intents beside it; one that was paused is let finish, then a fresh run starts.
   */
  #current: {
    ctrl: AbortController;
    done: Promise<ReplayReport>;
    listeners: Set<(p: ReplayProgress) => void>;
  } | null = null;
  #lastProgressWrite = 0;
  #sweeping = false;
  #lastSweep = Number.NEGATIVE_INFINITY;
  #dueTimer: unknown = null;

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: BackfillDeps,
  ) {}

  /** Writes are refused again (or the engine closes): a running backfill pauses. */
  stop(): void {
    this.#current?.ctrl.abort();
  }

  close(): void {
    this.ctx.clock.clearTimeout(this.#dueTimer);
    this.stop();
  }

  /**
   * The controller's part of the backfill: run its own share, wait until every live instance with
   * handlers has finished its share (or lost its lease), then close with everyone's totals.
   */
  async drive(windowId: string): Promise<void> {
    if (this.#driving.has(windowId)) return;
    this.#driving.add(windowId);
    const { clock, timing, instanceId, queue, log } = this.ctx;
    const still = () => {
      const w = this.deps.state().window;
      return (
        !this.ctx.life.closed &&
        w?.id === windowId &&
        w.phase === 'backfilling' &&
        w.checklist?.controller === instanceId
      );
    };
    const waiter = this.deps.drain.registryWaiter();
    try {
      const mayRun = canBackfill(this.ctx);
      if (mayRun) {
        const report = await this.share(windowId);
        if (!report || report.paused || !still()) return;
      }
      const registry = this.ctx.store.registry;
      let records: InstanceRecord[] = [];
      for (;;) {
        if (!still()) return;
        const now = clock.now();
        records = registry ? await registry.list() : [];
        const others = records.filter((r) => r.id !== instanceId && r.replays && !expired(r, now, timing));
        if (!mayRun && others.length === 0) {
          log.warn('quiesce: no live instance has replay handlers; closing without a backfill', { windowId });
          const none = { done: 0, total: 0, applied: 0, failed: 0, paused: false };
          await this.deps.checklist.closeWindow(
            windowId,
            { skipped: 'no live instance has replay handlers', ...none },
            null,
            {},
          );
          return;
        }
        const pending = others.filter((r) => !(r.backfill?.windowId === windowId && r.backfill.finished));
        if (pending.length === 0) break;
        await waiter.wait(Math.min(250, timing.heartbeatMs));
      }
      // A shared queue (pg-boss) may still hold intents queued late: backfill them before closing.
      let stats = await queue.stats().catch(() => null);
      if (mayRun && stats && stats.depth > 0 && still()) {
        const again = await this.share(windowId);
        if (!again || again.paused || !still()) return;
        stats = await queue.stats().catch(() => null);
      }
      const byInstance: Record<string, ShareTotals> = {};
      for (const r of records) {
        if (r.id !== instanceId && r.backfill?.windowId === windowId) byInstance[r.id] = totals(r.backfill);
      }
      if (this.mine?.windowId === windowId) byInstance[instanceId] = totals(this.mine);
      const sum = { done: 0, total: 0, applied: 0, failed: 0 };
      for (const b of Object.values(byInstance)) {
        sum.done += b.done;
        sum.total += b.total;
        sum.applied += b.applied;
        sum.failed += b.failed;
      }
      await this.deps.checklist.closeWindow(
        windowId,
        { ...sum, paused: false },
        stats?.depth ?? null,
        byInstance,
      );
    } catch (err) {
      log.error('quiesce: backfill failed', { windowId, error: errorMessage(err) });
    } finally {
      waiter.close();
      this.#driving.delete(windowId);
    }
  }

  /**
   * This instance's share of a window's backfill (every instance with handlers runs its queue when it
   * applies `backfilling`); the totals go in its registry record, announced when finished.
   */
  share(windowId: string): Promise<ReplayReport | null> {
    const running = this.#shares.get(windowId);
    if (running) return running;
    const run = this.#runShare(windowId).finally(() => this.#shares.delete(windowId));
    this.#shares.set(windowId, run);
    return run;
  }

  async #runShare(windowId: string): Promise<ReplayReport | null> {
    const { clock, instanceId } = this.ctx;
    const driver = () => this.deps.state().window?.checklist?.controller === instanceId;
    try {
      const before = this.mine?.windowId === windowId ? this.mine : null;
      this.mine = before ?? { windowId, done: 0, total: 0, applied: 0, failed: 0, finished: false };
      this.mine.finished = false;
      const base = { ...this.mine };
      const report = await this.run((p) => {
        this.mine = {
          windowId,
          done: base.done + p.done,
          total: base.done + p.total,
          applied: base.applied + p.applied,
          failed: base.failed + p.failed,
          finished: false,
        };
        // The controller keeps the store's record of the backfill current (coarsely: it reaches everyone).
        const now = clock.now();
        if (driver() && now - this.#lastProgressWrite >= PROGRESS_EVERY_MS) {
          this.#lastProgressWrite = now;
          const mine = { ...this.mine };
          background(this.ctx, () =>
            this.deps.checklist.updateChecklist(windowId, (c) => ({
              ...c,
              backfill: {
                startedAt: c.backfill?.startedAt ?? iso(now),
                byInstance: c.backfill?.byInstance ?? {},
                ...totals(mine),
                updatedAt: iso(now),
              },
            })),
          );
        }
      });
      if (!report.paused && this.mine.windowId === windowId) {
        this.mine = { ...this.mine, finished: true };
        await this.deps.announce();
      }
      return report;
    } catch (err) {
      this.ctx.log.error('quiesce: replay failed', { windowId, error: errorMessage(err) });
      return null;
    }
  }

  /** Backfill stranded intents (queued while no window was open, or left by a closed one). */
  sweep(force = false): void {
    const now = this.ctx.clock.now();
    if (this.#sweeping || this.ctx.life.closed || !canBackfill(this.ctx)) return;
    if (!force && now - this.#lastSweep < this.ctx.timing.sweepMs) return;
    const w = this.deps.state().window;
    if (w && OPEN_PHASES.has(w.phase)) return;
    if (this.deps.readOnly()) return;
    this.#sweeping = true;
    this.#lastSweep = now;
    background(this.ctx, async () => {
      try {
        const stats = await this.ctx.queue.stats();
        if (stats.depth === 0) return;
        const report = await this.run(() => {});
        if (report.total > 0)
          this.ctx.log.warn('quiesce: replayed intents queued outside a window (stranded)', { ...report });
      } catch (err) {
        this.ctx.log.warn('quiesce: sweep of stranded intents failed', { error: errorMessage(err) });
      } finally {
        this.#sweeping = false;
      }
    });
  }

  /** Debounced: handlers tend to be registered in a burst; backfill only once they all are. */
  due(): void {
    const { clock } = this.ctx;
    clock.clearTimeout(this.#dueTimer);
    this.#dueTimer = clock.setTimeout(() => {
      if (this.ctx.life.closed || !this.ctx.life.started) return;
      const w = this.deps.state().window;
      if (w?.phase === 'backfilling' && this.ctx.options.participant) {
        background(this.ctx, () => this.share(w.id));
        this.deps.drive();
      } else this.sweep(true);
    }, this.ctx.timing.heartbeatMs);
  }

  /** Run this instance's queue through its handlers, paced, paused as soon as writes are refused again. */
  async run(onProgress: (p: ReplayProgress) => void): Promise<ReplayReport> {
    if (this.deps.readOnly())
      throw new QuiesceError('WINDOW_CONFLICT', 'backfill: writes are still refused; end the window first');
    for (let cur = this.#current; cur; cur = this.#current) {
      if (!cur.ctrl.signal.aborted) {
        cur.listeners.add(onProgress);
        return cur.done;
      }
      await cur.done.catch(() => {});
    }
    const ctrl = new AbortController();
    const listeners = new Set([onProgress]);
    const done = this.#run(ctrl, listeners);
    const entry = { ctrl, done, listeners };
    this.#current = entry;
    try {
      return await done;
    } finally {
      if (this.#current === entry) this.#current = null;
    }
  }

  async #run(ctrl: AbortController, listeners: Set<(p: ReplayProgress) => void>): Promise<ReplayReport> {
    const { clock, metrics, log, events } = this.ctx;
    const rate = this.ctx.options.replay.ratePerSecond ?? 200;
    const gapMs = rate > 0 ? 1000 / rate : 0;
    let nextAt = 0;
    // A backfilled intent is a write: a window that begins meanwhile waits for it to finish.
    const handlers = new Map<string, IntentHandler>();
    for (const [name, handler] of this.ctx.handlers) {
      const op: Operation = { surface: 'custom', name: `replay ${name}` };
      handlers.set(name, async (payload, ctx) => {
        // Paced: yield to the event loop (reads are served between intents; a yield, not a timer),
        // then keep to the cap on the engine's clock.
        await new Promise<void>((r) => setImmediate(r));
        if (gapMs > 0) {
          const t = clock.now();
          nextAt = Math.max(nextAt + gapMs, t);
          if (nextAt > t) await pause(this.ctx, nextAt - t);
        }
        if (this.deps.readOnly()) {
          ctrl.abort();
          throw new QuiesceError('WINDOW_CONFLICT', 'replay stopped: writes are refused again');
        }
        // Paused (the engine is closing, or fenced) while waiting its turn: no new handler starts.
        if (ctrl.signal.aborted)
          throw new QuiesceError('WINDOW_CONFLICT', 'replay paused before this intent');
        const h = this.deps.track(op);
        try {
          return await handler(payload, ctx);
        } finally {
          h.done();
        }
      });
    }
    const { ratePerSecond: _rate, ...replayOptions } = this.ctx.options.replay;
    const report = await this.ctx.queue.replay({
      ...replayOptions,
      handlers,
      signal: ctrl.signal,
      onProgress: (p) => {
        this.progress = p;
        events.emit('backfill-progress', p);
        for (const l of listeners) l(p);
      },
    });
    metrics.replayed('applied', report.applied);
    metrics.replayed('failed', report.failed);
    if (report.paused)
      log.info('quiesce: backfill paused (a new window, or this instance was fenced)', { ...report });
    return report;
  }
}

const totals = ({ done, total, applied, failed }: ShareTotals): ShareTotals => ({
  done,
  total,
  applied,
  failed,
});
