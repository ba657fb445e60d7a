import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeRetryAfter, resolveRetryAfterOptions } from '../src/retryAfter.js';

describe('Retry-After arithmetic', () => {
  const o = resolveRetryAfterOptions();
  const now = Date.UTC(2026, 0, 1);

  it('is the time to the window end, plus at most the jitter', () => {
    expect(computeRetryAfter(now + 600_000, now, o, 0)).toBe(600);
    expect(computeRetryAfter(now + 600_000, now, o, 0.999)).toBe(605);
    expect(computeRetryAfter(now + 600_001, now, o, 0)).toBe(601);
  });
  it('uses the default when the end is unknown or past', () => {
    expect(computeRetryAfter(null, now, o, 0)).toBe(300);
    expect(computeRetryAfter(now - 1, now, o, 0)).toBe(300);
  });
  it('clamps to the floor and the cap', () => {
    expect(computeRetryAfter(now + 1000, now, o, 0)).toBe(5);
    expect(computeRetryAfter(now + 86_400_000, now, o, 0)).toBe(3600);
  });
  it('rejects bad options naming the field', () => {
    expect(() => resolveRetryAfterOptions({ floorSeconds: -1 })).toThrow(/floorSeconds/);
    expect(() => resolveRetryAfterOptions({ floorSeconds: 10, capSeconds: 5 })).toThrow(/floorSeconds/);
  });
  it('property: always an integer within [floor, cap], and never below the remaining time unless capped', () => {
    fc.assert(
      fc.property(
        fc.option(fc.integer({ min: -1e7, max: 1e8 }), { nil: null }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 60, max: 7200 }),
        fc.integer({ min: 0, max: 30 }),
        (delta, random, floor, cap, jitter) => {
          const opts = resolveRetryAfterOptions({
            floorSeconds: floor,
            capSeconds: cap,
            jitterSeconds: jitter,
          });
          const v = computeRetryAfter(delta === null ? null : now + delta, now, opts, random);
          if (!Number.isInteger(v) || v < floor || v > cap) return false;
          if (delta !== null && delta > 0) return v >= Math.min(cap, Math.ceil(delta / 1000));
          return true;
        },
      ),
    );
  });
  it('property: jitter spreads clients by at most jitterSeconds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 10_000, max: 3_000_000 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (delta, r) => {
          const a = computeRetryAfter(now + delta, now, o, 0);
          const b = computeRetryAfter(now + delta, now, o, r);
          return b - a >= 0 && b - a <= o.jitterSeconds;
        },
      ),
    );
  });
});
