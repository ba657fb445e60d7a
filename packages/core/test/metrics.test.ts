import type { Meter } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { QuiesceMetrics } from '../src/metrics.js';

/** Records what instruments receive; only the members QuiesceMetrics uses. */
function recordingMeter() {
  const calls: Array<{ name: string; value: number; attrs: unknown }> = [];
  const gauges = new Map<string, (r: { observe(v: number, a?: unknown): void }) => void>();
  const meter = {
    createCounter: (name: string) => ({
      add: (value: number, attrs: unknown) => calls.push({ name, value, attrs }),
    }),
    createHistogram: (name: string) => ({
      record: (value: number, attrs: unknown) => calls.push({ name, value, attrs }),
    }),
    createObservableGauge: (name: string) => ({ addCallback: (cb: never) => gauges.set(name, cb) }),
  } as unknown as Meter;
  return { meter, calls, gauges };
}

describe('QuiesceMetrics', () => {
  const source = {
    phase: () => 'frozen' as const,
    readOnly: () => true,
    inFlight: () => 2,
    queueDepth: () => 5,
    queueOldestAgeMs: () => 1000,
    stale: () => false,
  };

  it('counts stopped writes by surface and keeps plain counts for status()', () => {
    const { meter, calls } = recordingMeter();
    const m = new QuiesceMetrics(source, meter);
    m.count('refused', 'http');
    m.count('refused', 'http');
    m.count('queued', 'graphql');
    expect(m.counts.refused).toEqual({ http: 2 });
    expect(calls.filter((c) => c.name === 'quiesce.writes.refused')).toHaveLength(2);
    expect(calls.find((c) => c.name === 'quiesce.writes.queued')?.attrs).toEqual({ surface: 'graphql' });
  });

  it('records read latency with the right labels, reusing attribute objects', () => {
    const { meter, calls } = recordingMeter();
    const m = new QuiesceMetrics(source, meter);
    m.read('http', 12, false, true);
    m.read('http', 30, true, false);
    m.read('http', 14, false, true);
    const reads = calls.filter((c) => c.name === 'quiesce.read.duration');
    expect(reads.map((r) => [r.value, r.attrs])).toEqual([
      [12, { surface: 'http', window: true, error: false }],
      [30, { surface: 'http', window: false, error: true }],
      [14, { surface: 'http', window: true, error: false }],
    ]);
    expect(reads[0]!.attrs).toBe(reads[2]!.attrs);
  });

  it('observes phase, read-only, in-flight and queue gauges from the source', () => {
    const { meter, gauges } = recordingMeter();
    new QuiesceMetrics(source, meter);
    const seen: Array<[number, unknown]> = [];
    gauges.get('quiesce.phase')!({ observe: (v, a) => seen.push([v, a]) });
    expect(seen.filter(([v]) => v === 1)).toEqual([[1, { phase: 'frozen' }]]);
    const depth: number[] = [];
    gauges.get('quiesce.queue.depth')!({ observe: (v) => depth.push(v) });
    expect(depth).toEqual([5]);
  });
});
