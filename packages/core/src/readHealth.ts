export interface ReadHealthOptions {
  /** Samples kept for each of the baseline and the window. @default 2048 */
  sampleSize?: number;
  /** Minimum window samples before escalating. @default 50 */
  minSamples?: number;
  /** Escalate when the window's p95 latency exceeds the baseline's p95 by this factor. @default 2 */
  latencyFactor?: number;
  /** Escalate when the window's error ratio exceeds the baseline's by this much (absolute). @default 0.05 */
  errorRatioDelta?: number;
}

export interface ReadStats {
  count: number;
  p50Ms: number | null;
  p95Ms: number | null;
  errorRatio: number | null;
}

export interface ReadHealthReport {
  baseline: ReadStats;
  window: ReadStats;
  healthy: boolean;
  reasons: string[];
}

/** A fixed ring of samples; no allocation per sample. */
class Ring {
  readonly #durations: Float64Array;
  readonly #errors: Uint8Array;
  #next = 0;
  #size = 0;
  constructor(capacity: number) {
    this.#durations = new Float64Array(capacity);
    this.#errors = new Uint8Array(capacity);
  }
  push(durationMs: number, error: boolean): void {
    this.#durations[this.#next] = durationMs;
    this.#errors[this.#next] = error ? 1 : 0;
    this.#next = (this.#next + 1) % this.#durations.length;
    if (this.#size < this.#durations.length) this.#size++;
  }
  clear(): void {
    this.#size = 0;
    this.#next = 0;
  }
  stats(): ReadStats {
    if (this.#size === 0) return { count: 0, p50Ms: null, p95Ms: null, errorRatio: null };
    const d = this.#durations.slice(0, this.#size).sort();
    let errors = 0;
    for (let i = 0; i < this.#size; i++) errors += this.#errors[i]!;
    const q = (p: number) => d[Math.min(d.length - 1, Math.floor(p * d.length))]!;
    return { count: this.#size, p50Ms: q(0.5), p95Ms: q(0.95), errorRatio: errors / this.#size };
  }
}

/**
 * Compares reads during a window with the baseline before it, so an operator sees that reads stay
 * healthy and is warned (`escalate`) when they do not.
 */
export class ReadHealthWatcher {
  readonly #baseline: Ring;
  readonly #window: Ring;
  readonly #o: Required<ReadHealthOptions>;
  #inWindow = false;
  /** The baseline only changes outside a window: its stats are computed once per window. */
  #baselineStats: ReadStats | null = null;
  #escalated = false;
  #checkEvery = 0;

  constructor(
    options: ReadHealthOptions = {},
    private readonly onEscalate: (report: ReadHealthReport) => void = () => {},
  ) {
    this.#o = {
      sampleSize: options.sampleSize ?? 2048,
      minSamples: options.minSamples ?? 50,
      latencyFactor: options.latencyFactor ?? 2,
      errorRatioDelta: options.errorRatioDelta ?? 0.05,
    };
    this.#baseline = new Ring(this.#o.sampleSize);
    this.#window = new Ring(this.#o.sampleSize);
  }

  /** Window began (true) or ended (false). */
  setWindow(active: boolean): void {
    if (active === this.#inWindow) return;
    this.#inWindow = active;
    this.#escalated = false;
    this.#window.clear();
  }

  record(durationMs: number, error: boolean): void {
    if (!this.#inWindow) {
      this.#baseline.push(durationMs, error);
      this.#baselineStats = null;
      return;
    }
    this.#window.push(durationMs, error);
    // Check every 64th sample: sorting the window's samples is not free.
    if (!this.#escalated && ++this.#checkEvery % 64 === 0) {
      const report = this.report();
      if (!report.healthy) {
        this.#escalated = true;
        this.onEscalate(report);
      }
    }
  }

  report(): ReadHealthReport {
    this.#baselineStats ??= this.#baseline.stats();
    const baseline = this.#baselineStats;
    const window = this.#window.stats();
    const reasons: string[] = [];
    if (window.count >= this.#o.minSamples && baseline.count > 0) {
      if (window.p95Ms! > baseline.p95Ms! * this.#o.latencyFactor && window.p95Ms! - baseline.p95Ms! > 1) {
        reasons.push(
          `read p95 ${window.p95Ms!.toFixed(1)}ms is over ${this.#o.latencyFactor}x the baseline ${baseline.p95Ms!.toFixed(1)}ms`,
        );
      }
      if (window.errorRatio! > baseline.errorRatio! + this.#o.errorRatioDelta) {
        reasons.push(
          `read error ratio ${(window.errorRatio! * 100).toFixed(1)}% is above the baseline ${(baseline.errorRatio! * 100).toFixed(1)}%`,
        );
      }
    }
    return { baseline, window, healthy: reasons.length === 0, reasons };
  }
}
