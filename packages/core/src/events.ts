import { redactOperation } from './bypass.js';
import type { Logger } from './notifier.js';
import type { Operation } from './operation.js';
import type { EngineEvents } from './types.js';

type Listener = (...args: any[]) => void;

/** The engine's events (`engine.on`): a listener that throws is logged, never breaks the emitter. */
export class EngineEmitter {
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  on<E extends keyof EngineEvents>(event: E, listener: (...args: EngineEvents[E]) => void): () => void {
    const set = this.#listeners.get(event) ?? new Set();
    this.#listeners.set(event, set);
    set.add(listener as Listener);
    return () => set.delete(listener as Listener);
  }

  emit<E extends keyof EngineEvents>(event: E, ...args: EngineEvents[E]): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    // conform (#15): a bypass token never reaches a listener (logs, metrics, apps' own audit).
    if (event === 'decision') args = [args[0], redactOperation(args[1] as Operation)] as EngineEvents[E];
    for (const l of set) {
      try {
        l(...args);
      } catch (err) {
        this.#log.error(`quiesce: "${event}" listener threw`, { error: errorMessage(err) });
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}

export const iso = (ms: number) => new Date(ms).toISOString();
export const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));
