/**
 * Read health that instances can add up: counts, errors and a latency histogram with fixed
 * log-scale buckets (each 2^(1/4) ≈ 1.19× the previous, from 0.1 ms to about 100 s), so the closing
 * record's percentiles cover the reads of every instance, not one instance's sample. A percentile
 * read from the histogram is its bucket's upper bound: at most 19% above the true value.
 */

/** Bucket `i` holds durations up to `0.1 ms × 2^(i/4)`; the last one holds everything longer. */
export const READ_BUCKETS = 81;

export function bucketUpperMs(i: number): number {
  return 0.1 * 2 ** (i / 4);
}

function bucketOf(ms: number): number {
  if (!(ms > 0.1)) return 0;
  const i = Math.ceil(Math.log2(ms / 0.1) * 4 - 1e-9);
  return i >= READ_BUCKETS ? READ_BUCKETS - 1 : i;
}

/** One instance's (or several instances' merged) timed reads over a period. */
export interface ReadSummary {
  count: number;
  errors: number;
  /** Non-empty buckets as `[index, count]`, index ascending. */
  buckets: Array<[number, number]>;
}

export interface ReadSummaryStats {
  count: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  errorRatio: number | null;
}

export const EMPTY_READ_SUMMARY: ReadSummary = Object.freeze({
  count: 0,
  errors: 0,
  buckets: [],
}) as ReadSummary;

/** Counts reads into the buckets; no allocation per read. */
export class ReadHistogram {
  readonly #counts = new Uint32Array(READ_BUCKETS);
  #count = 0;
  #errors = 0;

  record(durationMs: number, error: boolean): void {
    this.#counts[bucketOf(durationMs)]!++;
    this.#count++;
    if (error) this.#errors++;
  }

  clear(): void {
    this.#counts.fill(0);
    this.#count = 0;
    this.#errors = 0;
  }

  summary(): ReadSummary {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < READ_BUCKETS; i++) if (this.#counts[i]) buckets.push([i, this.#counts[i]!]);
    return { count: this.#count, errors: this.#errors, buckets };
  }
}

/** Add summaries up (every instance's reads in one). */
export function mergeReadSummaries(summaries: readonly ReadSummary[]): ReadSummary {
  const counts = new Map<number, number>();
  let count = 0;
  let errors = 0;
  for (const s of summaries) {
    count += s.count;
    errors += s.errors;
    for (const [i, n] of s.buckets) counts.set(i, (counts.get(i) ?? 0) + n);
  }
  return { count, errors, buckets: [...counts].sort((a, b) => a[0] - b[0]) };
}

/** Count, p50/p95/p99 (bucket upper bounds) and error ratio of a summary. */
export function readSummaryStats(s: ReadSummary): ReadSummaryStats {
  if (s.count === 0) return { count: 0, p50Ms: null, p95Ms: null, p99Ms: null, errorRatio: null };
  const q = (p: number) => {
    const rank = Math.max(1, Math.ceil(p * s.count));
    let seen = 0;
    for (const [i, n] of s.buckets) {
      seen += n;
      if (seen >= rank) return round(bucketUpperMs(i));
    }
    return round(bucketUpperMs(s.buckets[s.buckets.length - 1]![0]));
  };
  return { count: s.count, p50Ms: q(0.5), p95Ms: q(0.95), p99Ms: q(0.99), errorRatio: s.errors / s.count };
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** Whether a value read back from a store is a well-formed summary (records are shared data). */
export function isReadSummary(v: unknown): v is ReadSummary {
  if (!v || typeof v !== 'object') return false;
  const s = v as ReadSummary;
  return (
    Number.isSafeInteger(s.count) &&
    s.count >= 0 &&
    Number.isSafeInteger(s.errors) &&
    s.errors >= 0 &&
    s.errors <= s.count &&
    Array.isArray(s.buckets) &&
    s.buckets.every(
      (b) =>
        Array.isArray(b) &&
        b.length === 2 &&
        Number.isSafeInteger(b[0]) &&
        b[0] >= 0 &&
        b[0] < READ_BUCKETS &&
        Number.isSafeInteger(b[1]) &&
        b[1] > 0,
    ) &&
    s.buckets.reduce((n, b) => n + b[1], 0) === s.count
  );
}
