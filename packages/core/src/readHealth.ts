import {
  type ReadFinding,
  type ReadSignals,
  resolveSignalRules,
  type SignalReport,
  type SignalRule,
  SignalWatch,
} from './readSignals.js';
import { ReadHistogram, type ReadSummary } from './readSummary.js';

export interface ReadHealthOptions {
  /** Samples kept for each of the baseline and the window. @default 2048 */
  sampleSize?: number;
  /** Minimum window samples before escalating. @default 50 */
  minSamples?: number;
  /** Escalate when the window's p95 latency exceeds the baseline's p95 by this factor. @default 2 */
  latencyFactor?: number;
  /** Escalate when the window's error ratio exceeds the baseline's by this much (absolute). @default 0.05 */
  errorRatioDelta?: number;
  /**
   * Rules for read-quality signals reported with reads (`reportRead({ …, signals })`), by signal
   * name. Every reported signal is summarized before and during the window; only those with rules
   * can escalate.
   */
  signals?: Record<string, SignalRule | readonly SignalRule[]>;
  /**
   * After an escalation, escalate again when the reads recorded since (at least `minSamples`) are
   * still degraded, instead of once per window. Set by the engine when an escalation policy is on.
   * @default false
   */
  repeat?: boolean;
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
  /** Each threshold crossed, with the figures compared, in the order of `reasons` (one per reason). */
  findings: ReadFinding[];
  /**
   * Every timed read before the window and during it, as histograms instances can add up (the
   * closing record merges every instance's). `before`: from the end of the previous window (or the
   * start) to this window's start; both are kept once the window ends, until the next begins.
   */
  summary: { before: ReadSummary; during: ReadSummary };
  /** Each read-quality signal's summary before the window and during it. */
  signals: Record<string, SignalReport>;
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
  /** Stats of every sample kept, or of the newest `newest` of them. */
  stats(newest = this.#size): ReadStats {
    const n = Math.min(newest, this.#size);
    if (n === 0) return { count: 0, p50Ms: null, p95Ms: null, errorRatio: null };
    const cap = this.#durations.length;
    const start = n === this.#size ? 0 : (this.#next - n + cap) % cap;
    const d = new Float64Array(n);
    let errors = 0;
    for (let i = 0; i < n; i++) {
      const j = n === this.#size ? i : (start + i) % cap;
      d[i] = this.#durations[j]!;
      errors += this.#errors[j]!;
    }
    d.sort();
    const q = (p: number) => d[Math.min(d.length - 1, Math.floor(p * d.length))]!;
    return { count: n, p50Ms: q(0.5), p95Ms: q(0.95), errorRatio: errors / n };
  }
}

/**
 * Compares reads during a window with the baseline before it, so an operator sees that reads stay
 * healthy and is warned (`escalate`) when they do not.
 */
export class ReadHealthWatcher {
  readonly #baseline: Ring;
  readonly #window: Ring;
  readonly #o: Required<Omit<ReadHealthOptions, 'signals'>>;
  readonly #signals: SignalWatch;
  #inWindow = false;
  /** The baseline only changes outside a window: its stats are computed once per window. */
  #baselineStats: ReadStats | null = null;
  #escalated = false;
  #checkEvery = 0;
  readonly #hOutside = new ReadHistogram();
  readonly #hDuring = new ReadHistogram();
  /** The reads before the current (or last) window, taken when it began. */
  #before: ReadSummary | null = null;
  /** Window samples recorded, and how many there were at the last escalation (for `repeat`). */
  #windowCount = 0;
  #escalatedAt = 0;

  constructor(
    options: ReadHealthOptions = {},
    private readonly onEscalate: (report: ReadHealthReport) => void = () => {},
  ) {
    this.#o = {
      sampleSize: options.sampleSize ?? 2048,
      minSamples: options.minSamples ?? 50,
      latencyFactor: options.latencyFactor ?? 2,
      errorRatioDelta: options.errorRatioDelta ?? 0.05,
      repeat: options.repeat ?? false,
    };
    this.#signals = new SignalWatch(resolveSignalRules(options.signals), this.#o.sampleSize);
    this.#baseline = new Ring(this.#o.sampleSize);
    this.#window = new Ring(this.#o.sampleSize);
  }

  /** Window began (true) or ended (false). */
  setWindow(active: boolean): void {
    if (active === this.#inWindow) return;
    this.#inWindow = active;
    this.#escalated = false;
    this.#windowCount = 0;
    this.#escalatedAt = 0;
    // The window's reads are kept once it ends (the closing record is written after the soak) and
    // cleared when the next one begins; signals likewise.
    if (active) {
      this.#window.clear();
      this.#before = this.#hOutside.summary();
      this.#hDuring.clear();
      this.#signals.resetWindow();
    } else {
      this.#hOutside.clear();
    }
  }

  record(durationMs: number, error: boolean, signals?: ReadSignals): void {
    if (signals !== undefined) this.#signals.record(signals, this.#inWindow);
    if (!this.#inWindow) {
      this.#hOutside.record(durationMs, error);
      this.#baseline.push(durationMs, error);
      this.#baselineStats = null;
      return;
    }
    this.#window.push(durationMs, error);
    this.#hDuring.record(durationMs, error);
    this.#windowCount++;
    // Check every 64th sample: sorting the window's samples is not free.
    if (++this.#checkEvery % 64 !== 0) return;
    let report: ReadHealthReport | null = null;
    if (!this.#escalated) report = this.report();
    else if (this.#o.repeat && this.#windowCount - this.#escalatedAt >= this.#o.minSamples)
      // Judged on the reads since the last escalation alone: did extending help?
      report = this.report(this.#windowCount - this.#escalatedAt);
    if (report && !report.healthy) {
      this.#escalated = true;
      this.#escalatedAt = this.#windowCount;
      this.onEscalate(report);
    }
  }

  /** Reads during the window (or its newest `newest` reads) against the baseline before it. */
  report(newest?: number): ReadHealthReport {
    this.#baselineStats ??= this.#baseline.stats();
    const baseline = this.#baselineStats;
    const window = this.#window.stats(newest);
    const findings: ReadFinding[] = [];
    const reads = (
      stat: 'p95Ms' | 'errorRatio',
      kind: 'ratio' | 'delta',
      limit: number,
      reason: string,
    ): ReadFinding => ({
      metric: 'reads',
      stat,
      kind,
      direction: 'above',
      limit,
      baseline: baseline[stat],
      during: window[stat]!,
      baselineSamples: baseline.count,
      duringSamples: window.count,
      reason,
    });
    if (window.count >= this.#o.minSamples && baseline.count > 0) {
      if (window.p95Ms! > baseline.p95Ms! * this.#o.latencyFactor && window.p95Ms! - baseline.p95Ms! > 1) {
        findings.push(
          reads(
            'p95Ms',
            'ratio',
            this.#o.latencyFactor,
            `read p95 ${window.p95Ms!.toFixed(1)}ms is over ${this.#o.latencyFactor}x the baseline ${baseline.p95Ms!.toFixed(1)}ms`,
          ),
        );
      }
      if (window.errorRatio! > baseline.errorRatio! + this.#o.errorRatioDelta) {
        findings.push(
          reads(
            'errorRatio',
            'delta',
            this.#o.errorRatioDelta,
            `read error ratio ${(window.errorRatio! * 100).toFixed(1)}% is above the baseline ${(baseline.errorRatio! * 100).toFixed(1)}%`,
          ),
        );
      }
    }
    const sig = this.#signals.report(this.#o.minSamples, newest);
    findings.push(...sig.findings);
    const reasons = findings.map((f) => f.reason);
    return {
      baseline,
      window,
      healthy: reasons.length === 0,
      reasons,
      findings,
      signals: sig.signals,
      summary: this.summary(),
    };
  }

  /** Reads before the current (or last) window and during it; before any window, `before` is all so far. */
  summary(): { before: ReadSummary; during: ReadSummary } {
    return { before: this.#before ?? this.#hOutside.summary(), during: this.#hDuring.summary() };
  }
}

export interface ReadSamplerOptions {
  /** Timed reads per second to keep under load; below twice this rate every read is timed. @default 100 */
  targetPerSecond?: number;
  /** Largest stride: on average at least one read in this many is timed. @default 64 */
  maxStride?: number;
  /** Random numbers in [0, 1) for the gaps between timed reads. @default Math.random */
  random?: () => number;
}

/**
 * Which reads an adapter times for `engine.reportRead()`. While reads are rare (under twice
 * `targetPerSecond`), every read; under load, on average one read in `stride` (at most
 * `maxStride`), the stride set about once a second so that at least `targetPerSecond` reads a
 * second are still timed. The gaps between timed reads are random (1 to 2 × stride − 1), so
 * periodic traffic cannot line up with the sampling and the latency percentiles and error ratio
 * stay unbiased; the watcher's sample ring then spans seconds of traffic instead of milliseconds.
 * Timing a read (two clock reads and a listener on the response) is most of an adapter's cost on
 * a read.
 */
export class ReadSampler {
  readonly #target: number;
  readonly #maxStride: number;
  readonly #random: () => number;
  #stride = 1;
  #left = 1;
  #since = -1;
  #timed = 0;

  constructor(options: ReadSamplerOptions = {}) {
    this.#target = options.targetPerSecond ?? 100;
    this.#maxStride = options.maxStride ?? 64;
    this.#random = options.random ?? Math.random;
    if (!(this.#target > 0)) throw new RangeError('ReadSampler: targetPerSecond must be > 0');
    if (!Number.isSafeInteger(this.#maxStride) || this.#maxStride < 1) {
      throw new RangeError('ReadSampler: maxStride must be a positive integer');
    }
  }

  /** On average, one read in `stride` is timed. */
  get stride(): number {
    return this.#stride;
  }

  /** Whether to time this read. */
  take(): boolean {
    if (--this.#left > 0) return false;
    const s = this.#stride;
    this.#left = s === 1 ? 1 : 1 + Math.floor(this.#random() * (2 * s - 1));
    return true;
  }

  /**
   * A timed read finished at `nowMs` (a monotonic clock, such as `performance.now()`): about once
   * a second, the stride is set from the rate of timed reads since.
   */
  timed(nowMs: number): void {
    if (this.#since < 0) {
      this.#since = nowMs;
      return;
    }
    this.#timed++;
    const elapsed = nowMs - this.#since;
    if (elapsed < 1000) return;
    // Reads per second ÷ target, rounded down: never fewer timed reads than the target.
    const want = (this.#timed * this.#stride * 1000) / elapsed / this.#target;
    this.#stride = want < 2 ? 1 : Math.min(this.#maxStride, Math.floor(want));
    this.#since = nowMs;
    this.#timed = 0;
  }
}
