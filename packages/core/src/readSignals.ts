import { QuiesceError } from './errors.js';

/**
 * Read-quality signals: named numbers an app reports with a read besides its latency and error —
 * for a retrieval or RAG service a semantic drift score (`deltaS`) or a convergence score
 * (`lambda`). The read-health watcher keeps each signal's baseline before a window and compares the
 * window with it through the rules below.
 */
export type ReadSignals = Readonly<Record<string, number>>;

/**
 * When a signal counts as degraded during a window. Compared on the signal's mean (absolute, ratio)
 * or on the least-squares slope of its newest samples (trend).
 */
export type SignalRule =
  | {
      /** Window mean above `above` or below `below` (fixed bounds, no baseline needed). */
      kind: 'absolute';
      above?: number;
      below?: number;
    }
  | {
      /**
       * Window mean over `factor` × baseline mean (`up`), or under baseline mean ÷ `factor` (`down`).
       * Needs a positive baseline mean (use `absolute` for signals that can be 0 or negative).
       */
      kind: 'ratio';
      factor: number;
      /** @default 'up' */
      direction?: 'up' | 'down';
    }
  | {
      /** Slope per sample of the newest `samples` window samples above `slopeAbove` or below `slopeBelow`. */
      kind: 'trend';
      /** The sliding window. @default 50 */
      samples?: number;
      slopeAbove?: number;
      slopeBelow?: number;
    };

export interface SignalStats {
  count: number;
  mean: number | null;
  min: number | null;
  p50: number | null;
  p95: number | null;
  max: number | null;
}

/** One signal's summary before the window and during it (in `ReadHealthReport.signals`). */
export interface SignalReport {
  baseline: SignalStats;
  window: SignalStats;
  /** Slope per sample of the newest window samples (the longest trend rule's window), when there are enough. */
  trend: number | null;
}

const EMPTY: SignalStats = Object.freeze({
  count: 0,
  mean: null,
  min: null,
  p50: null,
  p95: null,
  max: null,
});

/** Summary of `values` (any order). Pure. */
export function summarizeSignal(values: ArrayLike<number>): SignalStats {
  const n = values.length;
  if (n === 0) return EMPTY;
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  const q = (p: number) => sorted[Math.min(n - 1, Math.floor(p * n))]!;
  // Clamp: a sum of many large values may round the mean just outside [min, max].
  const mean = Math.min(sorted[n - 1]!, Math.max(sorted[0]!, sum / n));
  return { count: n, mean, min: sorted[0]!, p50: q(0.5), p95: q(0.95), max: sorted[n - 1]! };
}

/** Least-squares slope of `values` against their index (units per sample); null under 2 values. Pure. */
export function signalSlope(values: ArrayLike<number>): number | null {
  const n = values.length;
  if (n < 2) return null;
  const xm = (n - 1) / 2;
  let ym = 0;
  for (let i = 0; i < n; i++) ym += values[i]!;
  ym /= n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const dx = i - xm;
    num += dx * (values[i]! - ym);
    den += dx * dx;
  }
  return num / den;
}

const fmt = (x: number) => (Math.abs(x) >= 100 || Number.isInteger(x) ? x.toFixed(0) : x.toPrecision(3));

/**
 * One threshold a read check crossed, with the figures it compared: the structured form of a
 * reason (`ReadHealthReport.findings`, and each escalation's evidence in the window's record).
 */
export interface ReadFinding {
  /** A read-quality signal's name, or `reads` for the latency and error checks. */
  metric: string;
  /** The figure compared: a signal's window `mean` or `slope`, or the reads' `p95Ms` or `errorRatio`. */
  stat: 'mean' | 'slope' | 'p95Ms' | 'errorRatio';
  /**
   * `absolute`: `during` against `limit`; `ratio`: `during` against `baseline` × `limit` (÷ when
   * `direction` is `below`); `delta`: `during` against `baseline` + `limit`; `trend`: the slope per
   * read of the newest `duringSamples` window samples against `limit`.
   */
  kind: 'absolute' | 'ratio' | 'delta' | 'trend';
  /** Degraded when `during` is above (or below) the threshold. */
  direction: 'above' | 'below';
  limit: number;
  /** The same figure before the window (a trend has none). */
  baseline: number | null;
  during: number;
  /** Samples behind `baseline` and behind `during`. */
  baselineSamples: number;
  duringSamples: number;
  /** The reason, as text (the same string as in `reasons`). */
  reason: string;
}

/**
 * The thresholds a signal crossed, given its rules, its baseline, its window and the window's
 * newest samples (oldest first). Empty when healthy or when there are fewer than `minSamples`
 * window samples. Pure: the arithmetic the property tests check.
 */
export function signalFindings(
  name: string,
  rules: readonly SignalRule[],
  baseline: SignalStats,
  window: SignalStats,
  recent: ArrayLike<number>,
  minSamples: number,
): ReadFinding[] {
  const found: ReadFinding[] = [];
  if (window.count < minSamples || window.mean === null) return found;
  const m = window.mean;
  const onMean = (
    kind: 'absolute' | 'ratio',
    direction: 'above' | 'below',
    limit: number,
    reason: string,
  ): ReadFinding => ({
    metric: name,
    stat: 'mean',
    kind,
    direction,
    limit,
    baseline: baseline.mean,
    during: m,
    baselineSamples: baseline.count,
    duringSamples: window.count,
    reason,
  });
  for (const r of rules) {
    if (r.kind === 'absolute') {
      if (r.above !== undefined && m > r.above)
        found.push(onMean('absolute', 'above', r.above, `${name} mean ${fmt(m)} is above ${fmt(r.above)}`));
      if (r.below !== undefined && m < r.below)
        found.push(onMean('absolute', 'below', r.below, `${name} mean ${fmt(m)} is below ${fmt(r.below)}`));
    } else if (r.kind === 'ratio') {
      const b = baseline.mean;
      if (b === null || !(b > 0)) continue;
      if ((r.direction ?? 'up') === 'up') {
        if (m > b * r.factor)
          found.push(
            onMean(
              'ratio',
              'above',
              r.factor,
              `${name} mean ${fmt(m)} is over ${r.factor}x the baseline ${fmt(b)}`,
            ),
          );
      } else if (m < b / r.factor) {
        found.push(
          onMean(
            'ratio',
            'below',
            r.factor,
            `${name} mean ${fmt(m)} is under the baseline ${fmt(b)} / ${r.factor}`,
          ),
        );
      }
    } else {
      const k = r.samples ?? 50;
      if (recent.length < k) continue;
      const tail = recent.length === k ? recent : Array.prototype.slice.call(recent, recent.length - k);
      const s = signalSlope(tail as ArrayLike<number>)!;
      const onSlope = (direction: 'above' | 'below', limit: number, reason: string): ReadFinding => ({
        metric: name,
        stat: 'slope',
        kind: 'trend',
        direction,
        limit,
        baseline: null,
        during: s,
        baselineSamples: baseline.count,
        duringSamples: k,
        reason,
      });
      if (r.slopeAbove !== undefined && s > r.slopeAbove)
        found.push(
          onSlope(
            'above',
            r.slopeAbove,
            `${name} trends up ${fmt(s)} per read over the last ${k} (limit ${fmt(r.slopeAbove)})`,
          ),
        );
      if (r.slopeBelow !== undefined && s < r.slopeBelow)
        found.push(
          onSlope(
            'below',
            r.slopeBelow,
            `${name} trends down ${fmt(s)} per read over the last ${k} (limit ${fmt(r.slopeBelow)})`,
          ),
        );
    }
  }
  return found;
}

/** The reasons a signal is degraded: `signalFindings` as text. Pure. */
export function checkSignal(
  name: string,
  rules: readonly SignalRule[],
  baseline: SignalStats,
  window: SignalStats,
  recent: ArrayLike<number>,
  minSamples: number,
): string[] {
  return signalFindings(name, rules, baseline, window, recent, minSamples).map((f) => f.reason);
}

/** Validate `readHealth.signals` once, naming the field that fails. */
export function resolveSignalRules(
  input: Record<string, SignalRule | readonly SignalRule[]> | undefined,
): Map<string, readonly SignalRule[]> {
  const out = new Map<string, readonly SignalRule[]>();
  if (input === undefined) return out;
  const bad = (field: string, why: string) =>
    new QuiesceError('INVALID_INPUT', `readHealth.signals.${field}: ${why}`, {
      field: `readHealth.signals.${field}`,
    });
  if (typeof input !== 'object' || input === null) throw bad('', 'must be an object of rules by signal name');
  const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  for (const [name, value] of Object.entries(input)) {
    const rules = Array.isArray(value) ? value : [value];
    rules.forEach((r: SignalRule, i) => {
      const at = Array.isArray(value) ? `${name}.${i}` : name;
      if (!r || typeof r !== 'object') throw bad(at, 'must be a rule object');
      if (r.kind === 'absolute') {
        if (r.above === undefined && r.below === undefined)
          throw bad(`${at}.above`, 'give above and/or below');
        if (r.above !== undefined && !finite(r.above)) throw bad(`${at}.above`, 'must be a finite number');
        if (r.below !== undefined && !finite(r.below)) throw bad(`${at}.below`, 'must be a finite number');
      } else if (r.kind === 'ratio') {
        if (!finite(r.factor) || r.factor <= 0) throw bad(`${at}.factor`, 'must be a positive number');
        if (r.direction !== undefined && r.direction !== 'up' && r.direction !== 'down')
          throw bad(`${at}.direction`, 'must be up or down');
      } else if (r.kind === 'trend') {
        if (r.samples !== undefined && (!Number.isSafeInteger(r.samples) || r.samples < 2))
          throw bad(`${at}.samples`, 'must be an integer of at least 2');
        if (r.slopeAbove === undefined && r.slopeBelow === undefined)
          throw bad(`${at}.slopeAbove`, 'give slopeAbove and/or slopeBelow');
        if (r.slopeAbove !== undefined && !finite(r.slopeAbove))
          throw bad(`${at}.slopeAbove`, 'must be a finite number');
        if (r.slopeBelow !== undefined && !finite(r.slopeBelow))
          throw bad(`${at}.slopeBelow`, 'must be a finite number');
      } else {
        throw bad(`${at}.kind`, 'must be absolute, ratio or trend');
      }
    });
    out.set(name, rules);
  }
  return out;
}

/** A fixed ring of numbers, oldest first on read. */
class NumberRing {
  readonly #v: Float64Array;
  #next = 0;
  #size = 0;
  constructor(capacity: number) {
    this.#v = new Float64Array(capacity);
  }
  push(x: number): void {
    this.#v[this.#next] = x;
    this.#next = (this.#next + 1) % this.#v.length;
    if (this.#size < this.#v.length) this.#size++;
  }
  clear(): void {
    this.#next = 0;
    this.#size = 0;
  }
  get size(): number {
    return this.#size;
  }
  /** The newest `k` values (all by default), oldest first. */
  values(k = this.#size): Float64Array {
    const n = Math.min(k, this.#size);
    const out = new Float64Array(n);
    const cap = this.#v.length;
    const start = (this.#next - n + cap) % cap;
    for (let i = 0; i < n; i++) out[i] = this.#v[(start + i) % cap]!;
    return out;
  }
}

/** Most distinct signal names kept: a typo'd or generated name must not grow memory without bound. */
export const MAX_READ_SIGNALS = 32;

/** Per-signal baseline and window samples for the read-health watcher. */
export class SignalWatch {
  readonly #rules: Map<string, readonly SignalRule[]>;
  readonly #capacity: number;
  readonly #rings = new Map<string, { baseline: NumberRing; window: NumberRing }>();
  readonly #trendSamples: number;

  constructor(rules: Map<string, readonly SignalRule[]>, capacity: number) {
    this.#rules = rules;
    this.#capacity = capacity;
    let k = 0;
    for (const list of rules.values())
      for (const r of list) if (r.kind === 'trend') k = Math.max(k, r.samples ?? 50);
    this.#trendSamples = k || 50;
  }

  record(signals: ReadSignals, inWindow: boolean): void {
    for (const name in signals) {
      const v = signals[name];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      let r = this.#rings.get(name);
      if (!r) {
        if (this.#rings.size >= MAX_READ_SIGNALS) continue;
        r = { baseline: new NumberRing(this.#capacity), window: new NumberRing(this.#capacity) };
        this.#rings.set(name, r);
      }
      (inWindow ? r.window : r.baseline).push(v);
    }
  }

  /** A window began or ended: the window's samples start over (the baseline keeps the latest before it). */
  resetWindow(): void {
    for (const r of this.#rings.values()) r.window.clear();
  }

  /** Every signal's summary and the reasons it is degraded; of the newest `newest` window samples when given. */
  report(
    minSamples: number,
    newest?: number,
  ): { signals: Record<string, SignalReport>; reasons: string[]; findings: ReadFinding[] } {
    const signals: Record<string, SignalReport> = {};
    const findings: ReadFinding[] = [];
    for (const [name, r] of this.#rings) {
      const baseline = summarizeSignal(r.baseline.values());
      const all = r.window.values(newest);
      const window = summarizeSignal(all);
      const recent = all.length > this.#trendSamples ? all.subarray(all.length - this.#trendSamples) : all;
      signals[name] = { baseline, window, trend: recent.length >= 2 ? signalSlope(recent) : null };
      const rules = this.#rules.get(name);
      if (rules) findings.push(...signalFindings(name, rules, baseline, window, all, minSamples));
    }
    return { signals, reasons: findings.map((f) => f.reason), findings };
  }
}

const kReadSignals = Symbol.for('quiesce.readSignals');

/**
 * Attach read-quality signals to a request or response object, for the adapter that times the read
 * to report with it (`@quiesce/express`: call it with `res` in the route handler). Later calls add
 * to (and overwrite) earlier ones.
 */
export function attachReadSignals(target: object, signals: ReadSignals): void {
  const t = target as { [kReadSignals]?: Record<string, number> };
  t[kReadSignals] = { ...t[kReadSignals], ...signals };
}

/** The signals attached to `target` by `attachReadSignals`, if any (for adapters). */
export function readSignalsOf(target: object): ReadSignals | undefined {
  return (target as { [kReadSignals]?: ReadSignals })[kReadSignals];
}
