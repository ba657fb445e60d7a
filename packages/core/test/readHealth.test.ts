import { describe, expect, it } from 'vitest';
import { InFlightTracker } from '../src/inflight.js';
import { ReadHealthWatcher, ReadSampler } from '../src/readHealth.js';

/** Feed `perSecond` reads a second for `seconds`, timing those the sampler takes; returns the timed count. */
function drive(s: ReadSampler, perSecond: number, seconds: number, t0 = 0): { timed: number; end: number } {
  let timed = 0;
  const n = perSecond * seconds;
  for (let i = 0; i < n; i++) {
    if (s.take()) {
      timed++;
      s.timed(t0 + (i * 1000) / perSecond);
    }
  }
  return { timed, end: t0 + seconds * 1000 };
}

/** A seeded generator, so the random gaps are the same on every run. */
function seeded(seed = 42): () => number {
  let x = seed;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

describe('ReadSampler', () => {
  it('times every read while reads are rare', () => {
    const s = new ReadSampler();
    const { timed } = drive(s, 150, 10);
    expect(timed).toBe(1500);
    expect(s.stride).toBe(1);
  });

  it('under load times about one read in `stride`, keeping about the target rate', () => {
    const s = new ReadSampler({ targetPerSecond: 100, maxStride: 1024, random: seeded() });
    drive(s, 5000, 2); // settles within a second
    expect(s.stride).toBe(50); // 5000/s ÷ 100
    const { timed } = drive(s, 5000, 10, 2000);
    expect(timed / 10).toBeGreaterThan(85);
    expect(timed / 10).toBeLessThan(115);
  });

  it('never skips more than maxStride reads', () => {
    const s = new ReadSampler({ maxStride: 64, random: seeded() });
    drive(s, 100_000, 3);
    expect(s.stride).toBe(64);
  });

  it('goes back to every read when traffic drops', () => {
    const s = new ReadSampler({ random: seeded() });
    const { end } = drive(s, 20_000, 3);
    expect(s.stride).toBe(64);
    drive(s, 50, 30, end);
    expect(s.stride).toBe(1);
  });

  it('rejects a maxStride that is not a positive integer and a target that is not positive', () => {
    expect(() => new ReadSampler({ maxStride: 0.5 })).toThrow(/maxStride/);
    expect(() => new ReadSampler({ targetPerSecond: 0 })).toThrow(/targetPerSecond/);
  });

  it('periodic traffic does not line up with the sampling: the error ratio is kept', () => {
    const s = new ReadSampler({ maxStride: 16, random: seeded(7) });
    const w = new ReadHealthWatcher({ sampleSize: 4096 });
    // Every 10th read fails (a fixed stride would see 0% or 20%); 20 000 reads a second for 4 seconds.
    for (let i = 0; i < 80_000; i++) {
      if (!s.take()) continue;
      const now = i / 20;
      w.record(5, i % 10 === 3);
      s.timed(now);
    }
    expect(s.stride).toBe(16);
    expect(w.report().baseline.errorRatio).toBeGreaterThan(0.08);
    expect(w.report().baseline.errorRatio).toBeLessThan(0.12);
  });
});

describe('InFlightTracker', () => {
  it('counts writes, reports the oldest and calls onDone once per write', () => {
    let now = 1000;
    const t = new InFlightTracker(() => now);
    let done = 0;
    t.onDone = () => done++;
    const a = t.track({ surface: 'http', name: 'POST /a' });
    now = 2000;
    const b = t.track({ surface: 'http', name: 'POST /b' });
    expect(t.count).toBe(2);
    expect(t.oldest()).toMatchObject({ name: 'POST /a', since: 1000 });
    a.done();
    a.done(); // idempotent
    expect(t.count).toBe(1);
    expect(done).toBe(1);
    expect(t.oldest()).toMatchObject({ name: 'POST /b', since: 2000 });
    b.done();
    expect(t.count).toBe(0);
    expect(t.oldest()).toBeNull();
    expect(done).toBe(2);
  });
});
