import type { Operation } from './operation.js';

/**
 * One write in flight, and its own handle: a single object per write (no closure, no id), so
 * tracking a request costs one allocation.
 */
class Tracked {
  #tracker: InFlightTracker | null;

  constructor(
    readonly name: string,
    readonly since: number,
    tracker: InFlightTracker,
  ) {
    this.#tracker = tracker;
  }

  /** Idempotent: the second call does nothing. */
  done(): void {
    const t = this.#tracker;
    if (t === null) return;
    this.#tracker = null;
    t.finish(this);
  }
}

/** Counts writes in flight so a window reaches `frozen` only once they finish. */
export class InFlightTracker {
  /** Insertion order: the first entry is the oldest write. */
  readonly #entries = new Set<Tracked>();
  /** Called after each write finishes, e.g. to report a drained instance. */
  onDone: (() => void) | undefined = undefined;

  constructor(private readonly now: () => number) {}

  get count(): number {
    return this.#entries.size;
  }

  track(op: Operation): { done(): void } {
    const t = new Tracked(op.name, this.now(), this);
    this.#entries.add(t);
    return t;
  }

  /** @internal Called once per write, by its handle. */
  finish(t: Tracked): void {
    this.#entries.delete(t);
    this.onDone?.();
  }

  /** The oldest in-flight write (a Set keeps insertion order). */
  oldest(): { readonly name: string; readonly since: number } | null {
    for (const e of this.#entries) return e;
    return null;
  }
}
