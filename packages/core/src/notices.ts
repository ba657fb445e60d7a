import type { EngineContext } from './context.js';
import { errorMessage, iso } from './events.js';
import type { NotifierEventKind } from './notifier.js';
import type { MaintenanceWindow, NoticeRecord } from './window.js';

export interface NoticeDeps {
  /** The window as this instance last applied it. */
  currentWindow(): MaintenanceWindow | null;
  /** Patch a window's record (silent if it moved on). */
  updateWindow(windowId: string, patch: (w: MaintenanceWindow) => MaintenanceWindow): Promise<void>;
}

/** Tells the configured notifiers of a window's events, in order per notifier, and keeps each outcome in the window. */
export class Notices {
  readonly #chains = new Map<string, Promise<void>>();
  readonly #abort = new AbortController();

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: NoticeDeps,
  ) {}

  /** Resolves when every notifier has answered (or given up); callers that need not wait ignore it. */
  notify(kind: NotifierEventKind, window: MaintenanceWindow): Promise<void> {
    const { clock, log, metrics, events } = this.ctx;
    const runs: Promise<void>[] = [];
    for (const n of this.ctx.options.notifiers) {
      const prev = this.#chains.get(n.name) ?? Promise.resolve();
      // Per-notifier order is kept (scheduled before started), and nothing waits on it.
      const run = prev.then(async () => {
        const latest = this.deps.currentWindow();
        const current = latest?.id === window.id ? latest : window;
        const record = current.notices[n.name];
        try {
          const data = await n.notify(
            { kind, window: current, phase: current.phase, at: iso(clock.now()) },
            { record, signal: this.#abort.signal, log },
          );
          await this.#record(window.id, n.name, kind, (before) => ({
            status: 'ok',
            ...(before?.data || data ? { data: { ...before?.data, ...(data ?? {}) } } : {}),
          }));
        } catch (err) {
          const error = errorMessage(err);
          metrics.notifierFailed(n.name);
          log.error('quiesce: notifier failed', { notifier: n.name, event: kind, error });
          events.emit('notifier-failed', { notifier: n.name, event: kind, error });
          await this.#record(window.id, n.name, kind, (before) => ({
            ...before,
            status: 'failed',
            lastError: error,
          }));
        }
      });
      const settled = run.catch(() => {});
      this.#chains.set(n.name, settled);
      runs.push(settled);
    }
    return Promise.all(runs).then(() => {});
  }

  /** Stop retries (a notifier retrying against a dead endpoint must not hold the shutdown), then wait. */
  async close(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled([...this.#chains.values()]);
  }

  /** Keep a notifier's outcome in the window's record (`window.notices[name]`). */
  #record(
    windowId: string,
    name: string,
    kind: NotifierEventKind,
    outcome: (before: NoticeRecord | undefined) => Pick<NoticeRecord, 'status'> & Partial<NoticeRecord>,
  ): Promise<void> {
    return this.deps.updateWindow(windowId, (w) => {
      const before = w.notices[name];
      const notice: NoticeRecord = {
        ...outcome(before),
        attempts: (before?.attempts ?? 0) + 1,
        lastEvent: kind,
        updatedAt: iso(this.ctx.clock.now()),
      };
      return { ...w, notices: { ...w.notices, [name]: notice } };
    });
  }
}
