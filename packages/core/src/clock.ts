/** Every timer in quiesce goes through a Clock so tests can drive time. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending maintenance timer must never keep a process alive on its own.
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface ManualClock extends Clock {
  /** Move time forward, firing due timers in order. Awaits microtasks between timers. */
  advance(ms: number): Promise<void>;
  /** Jump to an absolute time (ms since epoch), firing due timers. */
  set(time: number): Promise<void>;
  pending(): number;
}

/** A clock that only moves when told to: for tests of schedules, soak and missed ticks. */
export function createManualClock(start = Date.UTC(2026, 0, 1)): ManualClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void; seq: number }>();
  const flush = async () => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
    await new Promise((r) => setImmediate(r));
  };
  const clock: ManualClock = {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, ms), fn, seq: id });
      return id;
    },
    clearTimeout(h) {
      timers.delete(h as number);
    },
    async advance(ms) {
      await clock.set(now + ms);
    },
    async set(target) {
      for (;;) {
        let next: { id: number; at: number; fn: () => void; seq: number } | undefined;
        for (const [id, t] of timers) {
          if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) {
            next = { id, ...t };
          }
        }
        if (!next) break;
        timers.delete(next.id);
        now = Math.max(now, next.at);
        next.fn();
        await flush();
      }
      now = Math.max(now, target);
      await flush();
    },
    pending: () => timers.size,
  };
  return clock;
}
