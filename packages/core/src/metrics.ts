import { type Attributes, type Counter, type Histogram, type Meter, metrics } from '@opentelemetry/api';
import type { Surface } from './operation.js';
import { PHASES, type Phase } from './window.js';

export type CounterName = 'refused' | 'queued' | 'dropped' | 'bypassed' | 'dryRun';

export interface MetricsSource {
  phase(): Phase | null;
  readOnly(): boolean;
  inFlight(): number;
  queueDepth(): number | null;
  queueOldestAgeMs(): number | null;
  stale(): boolean;
}

/**
 * Instruments through `@opentelemetry/api` (no-ops until the app registers an SDK), plus plain
 * counters kept for `engine.status()`.
 */
export class QuiesceMetrics {
  readonly counts: Record<CounterName, Record<string, number>> = {
    refused: {},
    queued: {},
    dropped: {},
    bypassed: {},
    dryRun: {},
  };
  readonly #counters: Record<CounterName, Counter>;
  readonly #surfaceAttrs = new Map<string, Attributes>();
  readonly #readAttrs = new Map<string, Attributes[]>();
  readonly #readDuration: Histogram;
  readonly #readSignal: Histogram;
  readonly #signalAttrs = new Map<string, [Attributes, Attributes]>();
  readonly #notifierFailures: Counter;
  readonly #fallbacks: Counter;
  readonly #replays: Counter;

  constructor(source: MetricsSource, meter: Meter = metrics.getMeter('@quiesce/core')) {
    const c = (name: string, description: string) => meter.createCounter(name, { description });
    this.#counters = {
      refused: c('quiesce.writes.refused', 'Writes refused during a window'),
      queued: c('quiesce.writes.queued', 'Writes kept as durable intents during a window'),
      dropped: c('quiesce.writes.dropped', 'Non-critical writes acknowledged and discarded during a window'),
      bypassed: c('quiesce.writes.bypassed', 'Writes let through by a bypass (token, CIDR, principal)'),
      dryRun: c('quiesce.writes.dry_run', 'Decisions that would have stopped a write, in dry-run'),
    };
    this.#readDuration = meter.createHistogram('quiesce.read.duration', {
      description: 'Latency of reads, labelled by whether a window was active',
      unit: 'ms',
    });
    this.#readSignal = meter.createHistogram('quiesce.read.signal', {
      description:
        'Read-quality signals reported with reads (e.g. deltaS, lambda), by signal and by whether a window was active',
    });
    this.#notifierFailures = c('quiesce.notifier.failures', 'Notifier calls that failed after retries');
    this.#fallbacks = c(
      'quiesce.store.fallbacks',
      'Times the store was stale past the bound and the fallback applied',
    );
    this.#replays = c('quiesce.intents.replayed', 'Intents replayed after a window, by outcome');
    meter
      .createObservableGauge('quiesce.phase', { description: 'Current phase (1 for the active one)' })
      .addCallback((r) => {
        const p = source.phase();
        for (const phase of PHASES) r.observe(phase === p ? 1 : 0, { phase });
      });
    meter
      .createObservableGauge('quiesce.read_only', {
        description: '1 while writes are refused on this instance',
      })
      .addCallback((r) => r.observe(source.readOnly() ? 1 : 0));
    meter
      .createObservableGauge('quiesce.inflight.writes', { description: 'Writes in flight on this instance' })
      .addCallback((r) => r.observe(source.inFlight()));
    meter
      .createObservableGauge('quiesce.queue.depth', { description: 'Write intents waiting for replay' })
      .addCallback((r) => {
        const d = source.queueDepth();
        if (d !== null) r.observe(d);
      });
    meter
      .createObservableGauge('quiesce.queue.oldest_age', {
        description: 'Age of the oldest waiting intent',
        unit: 'ms',
      })
      .addCallback((r) => {
        const a = source.queueOldestAgeMs();
        if (a !== null) r.observe(a);
      });
    meter
      .createObservableGauge('quiesce.store.stale', {
        description: '1 while the store is unreachable past the bound',
      })
      .addCallback((r) => r.observe(source.stale() ? 1 : 0));
  }

  #attrs(surface: Surface): Attributes {
    let a = this.#surfaceAttrs.get(surface);
    if (!a) {
      a = { surface };
      this.#surfaceAttrs.set(surface, a);
    }
    return a;
  }

  count(name: CounterName, surface: Surface): void {
    const bucket = this.counts[name];
    bucket[surface] = (bucket[surface] ?? 0) + 1;
    this.#counters[name].add(1, this.#attrs(surface));
  }

  read(surface: Surface, durationMs: number, error: boolean, inWindow: boolean): void {
    // Attribute sets are cached per surface: recording a read allocates nothing.
    let bySurface = this.#readAttrs.get(surface);
    if (!bySurface) {
      bySurface = [false, true].flatMap((window) =>
        [false, true].map((err) => ({ surface, window, error: err })),
      );
      this.#readAttrs.set(surface, bySurface);
    }
    const attrs = bySurface[(inWindow ? 2 : 0) + (error ? 1 : 0)]!;
    this.#readDuration.record(durationMs, attrs);
  }

  /** Each signal's values before (window=false) and during (window=true) a window. */
  readSignals(signals: Readonly<Record<string, number>>, inWindow: boolean): void {
    for (const name in signals) {
      const v = signals[name];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      let a = this.#signalAttrs.get(name);
      if (!a) {
        // The same bound as the watcher's: a generated name must not grow the attribute cache forever.
        if (this.#signalAttrs.size >= 32) continue;
        a = [
          { signal: name, window: false },
          { signal: name, window: true },
        ];
        this.#signalAttrs.set(name, a);
      }
      this.#readSignal.record(v, a[inWindow ? 1 : 0]);
    }
  }

  notifierFailed(notifier: string): void {
    this.#notifierFailures.add(1, { notifier });
  }

  fallback(fallback: string): void {
    this.#fallbacks.add(1, { fallback });
  }

  replayed(outcome: 'applied' | 'failed', n: number): void {
    if (n > 0) this.#replays.add(n, { outcome });
  }
}
