import type { Clock } from './clock.js';
import { QuiesceError } from './errors.js';
import { errorMessage } from './events.js';
import type { Logger } from './notifier.js';
import type { EngineEvents } from './types.js';
import { type MaintenanceWindow, PHASES, type Phase } from './window.js';

const PHASE_INDEX = new Map<Phase, number>(PHASES.map((p, i) => [p, i]));

type Hook = (window: MaintenanceWindow) => unknown;

export interface PhaseWatchDeps {
  clock: Clock;
  log: Logger;
  currentWindow(): MaintenanceWindow | null;
  on<E extends keyof EngineEvents>(event: E, listener: (...args: EngineEvents[E]) => void): () => void;
}

/** What an app hangs on phases: hooks run as a phase is applied, hooks before a thaw, and waits for a phase. */
export class PhaseHooks {
  readonly #onPhase = new Map<Phase, Set<Hook>>();
  readonly #beforeThaw = new Set<Hook>();

  constructor(private readonly deps: PhaseWatchDeps) {}

  onPhase(phase: Phase, hook: Hook): () => void {
    if (!PHASE_INDEX.has(phase))
      throw new QuiesceError('INVALID_INPUT', `onPhase: unknown phase "${phase}"`, { field: 'phase' });
    const set = this.#onPhase.get(phase) ?? new Set();
    this.#onPhase.set(phase, set);
    set.add(hook);
    return () => set.delete(hook);
  }

  beforeThaw(hook: Hook): () => void {
    this.#beforeThaw.add(hook);
    return () => this.#beforeThaw.delete(hook);
  }

  /** Run the hooks of `phase` one after another; a throw is logged and the next one runs. */
  runPhase(phase: Phase, w: MaintenanceWindow): Promise<void> {
    return this.#run(this.#onPhase.get(phase), w, (error) =>
      this.deps.log.error('quiesce: phase hook failed', { phase, error }),
    );
  }

  runBeforeThaw(w: MaintenanceWindow): Promise<void> {
    return this.#run(this.#beforeThaw, w, (error) =>
      this.deps.log.error('quiesce: beforeThaw hook failed', { error }),
    );
  }

  async #run(
    hooks: Set<Hook> | undefined,
    w: MaintenanceWindow,
    failed: (error: string) => void,
  ): Promise<void> {
    if (!hooks) return;
    for (const hook of [...hooks]) {
      try {
        await hook(w);
      } catch (err) {
        failed(errorMessage(err));
      }
    }
  }

  waitForPhase(phase: Phase, options: { timeoutMs?: number } = {}): Promise<MaintenanceWindow> {
    const target = PHASE_INDEX.get(phase);
    if (target === undefined)
      return Promise.reject(
        new QuiesceError('INVALID_INPUT', `waitForPhase: unknown phase "${phase}"`, { field: 'phase' }),
      );
    const reached = () => {
      const w = this.deps.currentWindow();
      return w && PHASE_INDEX.get(w.phase)! >= target ? w : null;
    };
    const now = reached();
    if (now) return Promise.resolve(now);
    const { clock } = this.deps;
    return new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? 60_000;
      // The engine's clock, like every other timer: a manual clock decides when the wait times out.
      const timer = clock.setTimeout(() => {
        off();
        const at = this.deps.currentWindow()?.phase ?? 'no window';
        reject(
          new QuiesceError(
            'INTERNAL',
            `waitForPhase: window did not reach "${phase}" within ${timeoutMs} ms (now ${at})`,
          ),
        );
      }, timeoutMs);
      const off = this.deps.on('phase', () => {
        const w = reached();
        if (w) {
          clock.clearTimeout(timer);
          off();
          resolve(w);
        }
      });
    });
  }
}
