import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../src/clock.js';
import { createQuiesce } from '../src/engine.js';
import { type ReadHealthReport, ReadHealthWatcher } from '../src/readHealth.js';
import { checkSignal, resolveSignalRules, signalSlope, summarizeSignal } from '../src/readSignals.js';

/** Property runs per property; CI runs QUIESCE_FUZZ_RUNS=1000 (issue #18), the default keeps a local run short. */
const RUNS = Number(process.env.QUIESCE_PROPERTY_RUNS ?? 200);
const value = fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });
const positive = fc.double({ min: 1e-3, max: 1e6, noNaN: true, noDefaultInfinity: true });

describe('signal arithmetic (properties)', () => {
  it('a summary is ordered: min ≤ p50 ≤ p95 ≤ max and min ≤ mean ≤ max', () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 300 }), (xs) => {
        const s = summarizeSignal(xs);
        expect(s.count).toBe(xs.length);
        expect(s.min!).toBeLessThanOrEqual(s.p50!);
        expect(s.p50!).toBeLessThanOrEqual(s.p95!);
        expect(s.p95!).toBeLessThanOrEqual(s.max!);
        expect(s.mean!).toBeGreaterThanOrEqual(s.min!);
        expect(s.mean!).toBeLessThanOrEqual(s.max!);
        expect(s.min).toBe(Math.min(...xs));
        expect(s.max).toBe(Math.max(...xs));
      }),
      { numRuns: RUNS },
    );
  });

  it('the slope of a line is its gradient; of a constant, exactly 0', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1000, max: 1000, noNaN: true }),
        fc.double({ min: -10, max: 10, noNaN: true }),
        fc.integer({ min: 2, max: 400 }),
        (a, b, n) => {
          const line = Array.from({ length: n }, (_, i) => a + b * i);
          expect(signalSlope(line)!).toBeCloseTo(b, 6);
          expect(signalSlope(Array.from({ length: n }, () => a))).toBe(0);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('flat signals never trip a ratio or trend rule, whatever the level', () => {
    fc.assert(
      fc.property(
        value,
        fc.integer({ min: 1, max: 300 }),
        fc.double({ min: 1.0001, max: 100, noNaN: true }),
        fc.double({ min: 1e-9, max: 10, noNaN: true }),
        (c, n, factor, slope) => {
          const xs = Array.from({ length: n }, () => c);
          const s = summarizeSignal(xs);
          const rules = resolveSignalRules({
            x: [
              { kind: 'ratio', factor, direction: 'up' },
              { kind: 'ratio', factor, direction: 'down' },
              { kind: 'trend', samples: Math.max(2, Math.min(n, 50)), slopeAbove: slope, slopeBelow: -slope },
            ],
          }).get('x')!;
          expect(checkSignal('x', rules, s, s, xs, 1)).toEqual([]);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('a ratio rule trips exactly when the window mean passes factor × the baseline mean', () => {
    fc.assert(
      fc.property(
        fc.array(positive, { minLength: 1, maxLength: 100 }),
        fc.double({ min: 1.01, max: 20, noNaN: true }),
        fc.double({ min: 0, max: 40, noNaN: true }),
        (base, factor, k) => {
          const b = summarizeSignal(base);
          const during = base.map((x) => x * k);
          const w = summarizeSignal(during);
          const [rule] = resolveSignalRules({ x: { kind: 'ratio', factor } }).get('x')!;
          const tripped = checkSignal('x', [rule!], b, w, during, 1).length > 0;
          expect(tripped).toBe(w.mean! > b.mean! * factor);
          // Scaling by at most 1 never trips an upward rule.
          if (k <= 1) expect(tripped).toBe(false);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('a trend rule trips on a drift steeper than its limit and not on a gentler one', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -100, max: 100, noNaN: true }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.integer({ min: 5, max: 200 }),
        (start, limit, samples) => {
          const [rule] = resolveSignalRules({ x: { kind: 'trend', samples, slopeAbove: limit } }).get('x')!;
          const steep = Array.from({ length: samples }, (_, i) => start + 2 * limit * i);
          const gentle = Array.from({ length: samples }, (_, i) => start + 0.5 * limit * i);
          const s = summarizeSignal(steep);
          expect(checkSignal('x', [rule!], s, s, steep, 1)).toHaveLength(1);
          expect(checkSignal('x', [rule!], s, summarizeSignal(gentle), gentle, 1)).toEqual([]);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('the watcher keeps the newest sampleSize values per signal (model check)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.array(value, { maxLength: 300 }), (size, xs) => {
        const w = new ReadHealthWatcher({ sampleSize: size });
        for (const x of xs) w.record(1, false, { s: x });
        const got = w.report().signals.s;
        if (xs.length === 0) {
          expect(got).toBeUndefined();
          return;
        }
        expect(got!.baseline).toEqual(summarizeSignal(xs.slice(-size)));
        expect(got!.window.count).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('read-quality signals in the watcher', () => {
  const drive = (w: ReadHealthWatcher, n: number, signals: (i: number) => Record<string, number>) => {
    for (let i = 0; i < n; i++) w.record(5, false, signals(i));
  };

  it('a signal that drifts escalates; one that stays flat does not', () => {
    const reports: ReadHealthReport[] = [];
    const w = new ReadHealthWatcher(
      {
        minSamples: 50,
        signals: { deltaS: { kind: 'ratio', factor: 1.5 }, lambda: { kind: 'absolute', below: 0.5 } },
      },
      (r) => reports.push(r),
    );
    drive(w, 200, () => ({ deltaS: 0.2, lambda: 0.9 }));
    w.setWindow(true);
    drive(w, 256, () => ({ deltaS: 0.2, lambda: 0.9 }));
    expect(reports).toHaveLength(0);
    expect(w.report().signals).toMatchObject({
      deltaS: { baseline: { count: 200, mean: 0.2 }, window: { count: 256, mean: 0.2 } },
      lambda: { baseline: { mean: 0.9 }, window: { mean: 0.9 } },
    });
    drive(w, 512, () => ({ deltaS: 0.6, lambda: 0.9 }));
    expect(reports).toHaveLength(1);
    expect(reports[0]!.reasons.join()).toMatch(/deltaS mean .* is over 1.5x the baseline 0.2/);
    expect(reports[0]!.reasons.join()).not.toMatch(/lambda/);
  });

  it('signals without rules are summarized, never escalate; non-finite values are ignored', () => {
    const reports: ReadHealthReport[] = [];
    const w = new ReadHealthWatcher({ minSamples: 10 }, (r) => reports.push(r));
    drive(w, 100, () => ({ score: 1 }));
    w.setWindow(true);
    drive(w, 256, (i) => ({ score: 1000 + i, junk: Number.NaN }));
    expect(reports).toHaveLength(0);
    expect(w.report().signals.score!.window.count).toBe(256);
    expect(w.report().signals.junk).toBeUndefined();
  });

  it('bad rules are refused naming the field', () => {
    expect(() => new ReadHealthWatcher({ signals: { deltaS: { kind: 'ratio', factor: 0 } } })).toThrow(
      expect.objectContaining({ field: 'readHealth.signals.deltaS.factor' }),
    );
    expect(
      () => new ReadHealthWatcher({ signals: { l: [{ kind: 'trend', samples: 1, slopeAbove: 1 }] } }),
    ).toThrow(expect.objectContaining({ field: 'readHealth.signals.l.0.samples' }));
    expect(() => new ReadHealthWatcher({ signals: { x: { kind: 'nope' } as never } })).toThrow(
      expect.objectContaining({ field: 'readHealth.signals.x.kind' }),
    );
    expect(() => new ReadHealthWatcher({ signals: { x: { kind: 'absolute' } } })).toThrow(
      /above and\/or below/,
    );
  });

  it("the engine carries signals from reportRead to status and to the window's closing record", async () => {
    const clock = createManualClock();
    const engine = createQuiesce({
      clock,
      soakMs: 1000,
      readHealth: { minSamples: 10, signals: { deltaS: { kind: 'absolute', above: 0.5 } } },
    });
    const escalations: ReadHealthReport[] = [];
    engine.on('escalate', (r) => escalations.push(r));
    try {
      await engine.start();
      for (let i = 0; i < 100; i++)
        engine.reportRead({
          surface: 'http',
          durationMs: 3,
          error: false,
          signals: { deltaS: 0.1, lambda: 0.95 },
        });
      const w = await engine.begin({ reason: 'migration', message: 'read-only' });
      for (let i = 0; i < 128; i++)
        engine.reportRead({
          surface: 'http',
          durationMs: 3,
          error: false,
          signals: { deltaS: 0.8, lambda: 0.95 },
        });
      expect(escalations).toHaveLength(1);
      expect((await engine.status()).readHealth.signals.deltaS).toMatchObject({
        baseline: { mean: 0.1 },
        window: { mean: 0.8 },
      });
      await engine.end();
      await clock.advance(1000);
      await expect.poll(() => engine.window?.phase).toBe('closed');
      const record = engine.window!.report.readHealth as ReadHealthReport;
      expect(engine.window!.id).toBe(w.id);
      expect(record.signals).toMatchObject({
        deltaS: { baseline: { count: 100, mean: 0.1 }, window: { count: 128, mean: 0.8 } },
        lambda: { baseline: { mean: 0.95 }, window: { mean: 0.95 } },
      });
    } finally {
      await engine.close();
    }
  });
});
