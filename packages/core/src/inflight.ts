import type { Operation } from './operation.js';

interface Entry {
  name: string;
  since: number;
}

/** Counts writes in flight so a window reaches `frozen` only once they finish. */
export class InFlightTracker {
  readonly #entries = new Map<number, Entry>();
  #seq = 0;
  #waiters: Array<() => void> = [];

  constructor(private readonly now: () => number) {}

  get count(): number {
    return this.#entries.size;
  }

  track(op: Operation): { done(): void } {
    const id = ++this.#seq;
    this.#entries.set(id, { name: op.name, since: this.now() });
    let finished = false;
    return {
      done: () => {
        if (finished) return;
        finished = true;
        this.#entries.delete(id);
        if (this.#entries.size === 0 && this.#waiters.length > 0) {
          const w = this.#waiters;
          this.#waiters = [];
          for (const fn of w) fn();
        }
      },
    };
  }

  /** The oldest in-flight write (Map keeps insertion order). */
  oldest(): Entry | null {
    for (const e of this.#entries.values()) return e;
    return null;
  }

  /** Resolves when nothing is in flight. */
  idle(): Promise<void> {
    if (this.#entries.size === 0) return Promise.resolve();
    return new Promise((r) => this.#waiters.push(r));
  }
}
