export interface RetryAfterOptions {
  /** Never tell clients to come back sooner than this. @default 5 */
  floorSeconds?: number;
  /** Never tell clients to wait longer than this. @default 3600 */
  capSeconds?: number;
  /** When the window's end is unknown (or passed). @default 300 */
  defaultSeconds?: number;
  /** Up to this many seconds are added at random so clients do not return all at once. @default 5 */
  jitterSeconds?: number;
}

export interface ResolvedRetryAfter {
  floorSeconds: number;
  capSeconds: number;
  defaultSeconds: number;
  jitterSeconds: number;
}

export function resolveRetryAfterOptions(options: RetryAfterOptions = {}): ResolvedRetryAfter {
  const r = {
    floorSeconds: options.floorSeconds ?? 5,
    capSeconds: options.capSeconds ?? 3600,
    defaultSeconds: options.defaultSeconds ?? 300,
    jitterSeconds: options.jitterSeconds ?? 5,
  };
  for (const [k, v] of Object.entries(r)) {
    if (!Number.isFinite(v) || v < 0)
      throw new TypeError(`retryAfter.${k} must be a non-negative number, got ${v}`);
  }
  if (r.floorSeconds > r.capSeconds) {
    throw new TypeError(
      `retryAfter.floorSeconds (${r.floorSeconds}) must not exceed capSeconds (${r.capSeconds})`,
    );
  }
  return r;
}

/**
 * Seconds a client should wait: time to the window's expected end plus jitter in
 * [0, jitterSeconds], clamped to [floor, cap]; the default when the end is unknown or past.
 * `random` is a value in [0, 1).
 */
export function computeRetryAfter(
  endsAtMs: number | null,
  nowMs: number,
  options: ResolvedRetryAfter,
  random: number,
): number {
  const base =
    endsAtMs === null || endsAtMs <= nowMs ? options.defaultSeconds : Math.ceil((endsAtMs - nowMs) / 1000);
  const withJitter = base + Math.floor(random * (options.jitterSeconds + 1));
  return Math.min(options.capSeconds, Math.max(options.floorSeconds, withJitter));
}
