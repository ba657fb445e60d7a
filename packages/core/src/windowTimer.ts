import type { Clock } from './clock.js';
import { QuiesceError } from './errors.js';
import { errorMessage } from './events.js';
import type { Logger } from './notifier.js';
import { isReadOnlyPhase, type MaintenanceWindow } from './window.js';

/** setTimeout fires at once beyond 2^31-1 ms (~24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface WindowTimerDeps {
  clock: Clock;
  log: Logger;
  /** The window as this instance last applied it. */
  window(): MaintenanceWindow | null;
  /** The window's scheduled start is due. */
  start(windowId: string): Promise<void>;
  /** The window's automatic end is due. */
  end(): Promise<unknown>;
}

/** One timer per window, on the engine's clock: its scheduled start, or its automatic end. */
export class WindowTimer {
  #timer: unknown = null;
  #key = '';

  constructor(private readonly deps: WindowTimerDeps) {}

  /** (Re-)arm for the window as applied; nothing changes when its start and end did not. */
  arm(): void {
    const { clock } = this.deps;
    const w = this.deps.window();
    let key = '';
    let at = 0;
    let fire: (() => void) | null = null;
    if (w?.phase === 'scheduled') {
      key = `start:${w.id}:${w.startsAt}`;
      at = Date.parse(w.startsAt);
      fire = () => void this.deps.start(w.id);
    } else if (w && isReadOnlyPhase(w.phase) && w.autoEnd && w.endsAt) {
      key = `end:${w.id}:${w.endsAt}`;
      at = Date.parse(w.endsAt);
      fire = () =>
        void this.deps.end().catch((err) => {
          if (!(err instanceof QuiesceError && err.code === 'NO_ACTIVE_WINDOW'))
            this.deps.log.error('quiesce: automatic end failed', { error: errorMessage(err) });
        });
    }
    if (key === this.#key) return;
    clock.clearTimeout(this.#timer);
    this.#key = key;
    if (!fire) {
      this.#timer = null;
      return;
    }
    const delay = Math.max(0, at - clock.now());
    if (delay > MAX_TIMER_MS) {
      // Wake up early and re-arm.
      this.#timer = clock.setTimeout(() => {
        this.#key = '';
        this.arm();
      }, MAX_TIMER_MS);
      return;
    }
    this.#timer = clock.setTimeout(fire, delay);
  }

  close(): void {
    this.deps.clock.clearTimeout(this.#timer);
  }
}
