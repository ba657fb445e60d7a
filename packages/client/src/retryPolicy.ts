/**
 * The retry policy: a pure function from what came back (and what came before) to *retry after N
 * ms*, *return this*, *the write was queued* or *give up*. No timers, no I/O: every integration
 * feeds it facts and carries out its answer.
 */
import { type QueuedIntent, type Refusal, readQueued, readRefusal } from './quiesceAnswer.js';
import { type GiveUpReason, QuiesceRetryError } from './quiesceRetryError.js';

export interface RetryPolicyOptions {
  /** Requests at most, the first included. @default 8 */
  maxAttempts?: number;
  /** Milliseconds from the first request after which no retry starts. @default 60000 */
  budgetMs?: number;
  /** Longest single wait, whatever `Retry-After` says (a longer one polls early). @default 30000 */
  maxWaitMs?: number;
  /**
   * Up to this many milliseconds are added at random to a server-given wait, so clients told the
   * same second do not return in the same instant (`Retry-After` has one-second resolution).
   * @default 1000
   */
  jitterMs?: number;
  /**
   * First backoff step when the server gives no wait (a plain 503 on a GET, a network error):
   * the wait is drawn uniformly from [0, min(maxWaitMs, baseDelayMs × 2^(attempt − 1))) (full jitter).
   * @default 500
   */
  baseDelayMs?: number;
  /**
   * Statuses retried for requests that are safe to repeat (idempotent method or an
   * `Idempotency-Key`). A `READ_ONLY_MODE` refusal is retried whatever its method.
   * @default [408, 425, 429, 502, 503, 504]
   */
  retryStatuses?: readonly number[];
}

export type ResolvedRetryPolicy = Required<RetryPolicyOptions>;

const DEFAULTS: ResolvedRetryPolicy = {
  maxAttempts: 8,
  budgetMs: 60_000,
  maxWaitMs: 30_000,
  jitterMs: 1_000,
  baseDelayMs: 500,
  retryStatuses: [408, 425, 429, 502, 503, 504],
};

/** Defaults applied and every field checked, in one place. */
export function resolveRetryPolicy(options: RetryPolicyOptions = {}): ResolvedRetryPolicy {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('@quiesce/client: options must be an object');
  }
  const r: ResolvedRetryPolicy = { ...DEFAULTS };
  for (const k of ['maxAttempts', 'budgetMs', 'maxWaitMs', 'jitterMs', 'baseDelayMs'] as const) {
    const v = options[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new TypeError(`@quiesce/client: ${k} must be a non-negative finite number, got ${String(v)}`);
    }
    r[k] = v;
  }
  if (!Number.isInteger(r.maxAttempts) || r.maxAttempts < 1) {
    throw new TypeError(`@quiesce/client: maxAttempts must be an integer ≥ 1, got ${r.maxAttempts}`);
  }
  if (options.retryStatuses !== undefined) {
    if (!Array.isArray(options.retryStatuses) || !options.retryStatuses.every((s) => Number.isInteger(s))) {
      throw new TypeError('@quiesce/client: retryStatuses must be an array of HTTP status codes');
    }
    r.retryStatuses = [...options.retryStatuses];
  }
  return r;
}

/** Headers as the Fetch API has them; only `get` is used. */
export interface HeadersLike {
  get(name: string): string | null;
}

/** One request's outcome, as the policy needs it. */
export interface RetryInput {
  /** The HTTP status; `undefined` when the request failed without a response (network error). */
  status?: number | undefined;
  headers?: HeadersLike | undefined;
  /** The parsed JSON body when there is one: an RFC 9457 problem, a GraphQL response, a 202 body. */
  body?: unknown;
  /** The request method. @default 'POST' (the unsafe assumption) */
  method?: string | undefined;
  /** True when the request carries an `Idempotency-Key` (the server dedupes a repeat). */
  idempotencyKey?: boolean | undefined;
}

/** What happened so far to this request. */
export interface RetryHistory {
  /** Requests made so far, the one just answered included (≥ 1). */
  attempts: number;
  /** When the first request started (ms, same clock as `now`). */
  startedAt: number;
}

export type RetryDecision =
  /** Hand this outcome to the caller as it is: success, an error not worth repeating, or retries exhausted on a non-quiesce failure. */
  | { action: 'return' }
  /** The write was kept as an intent; it will be applied after the window. Do not re-send it. */
  | { action: 'queued'; intent: QueuedIntent }
  /** Send the same request again after `delayMs`. */
  | { action: 'retry'; delayMs: number; refusal: Refusal | undefined }
  /** The write was refused and will not be retried: surface `error`. */
  | { action: 'give-up'; error: QuiesceRetryError };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE', 'QUERY']);

/** Safe to repeat without quiesce's guarantee: an idempotent method, or a server-deduped key. */
export function isRepeatable(method: string | undefined, idempotencyKey: boolean | undefined): boolean {
  return idempotencyKey === true || SAFE_METHODS.has((method ?? 'POST').toUpperCase());
}

/**
 * `Retry-After` in milliseconds from now: delay-seconds or an HTTP-date (read against the
 * response's `Date` when it has one, so a skewed client clock does not matter). `undefined` when
 * absent or malformed.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number,
  serverDate?: string | null,
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at) || !/[a-z]/i.test(v)) return undefined;
  const serverNow = serverDate ? Date.parse(serverDate) : Number.NaN;
  return Math.max(0, at - (Number.isNaN(serverNow) ? now : serverNow));
}

/**
 * Decide what to do with one outcome. `now` is the current time on the clock of
 * `history.startedAt`; `random` a number in [0, 1).
 */
export function decideRetry(
  input: RetryInput,
  history: RetryHistory,
  policy: ResolvedRetryPolicy,
  now: number,
  random: number,
): RetryDecision {
  const status = input.status;
  const intent = status === undefined ? undefined : readQueued(input.body);
  if (intent) return { action: 'queued', intent };
  // A refusal may come with 200 too (a GraphQL server answering `application/json` clients).
  const refusal = status === undefined ? undefined : readRefusal(input.body);
  if (refusal === undefined && status !== undefined && status < 400) return { action: 'return' };
  const retryable =
    refusal !== undefined ||
    (isRepeatable(input.method, input.idempotencyKey) &&
      (status === undefined || policy.retryStatuses.includes(status)));
  if (!retryable) return { action: 'return' };

  const elapsed = Math.max(0, now - history.startedAt);
  const remaining = policy.budgetMs - elapsed;
  const giveUp = (reason: GiveUpReason): RetryDecision =>
    refusal
      ? {
          action: 'give-up',
          error: new QuiesceRetryError(reason, refusal, {
            status,
            attempts: history.attempts,
            elapsedMs: elapsed,
          }),
        }
      : { action: 'return' };

  if (refusal?.endsAt) {
    // Measured on the server's clock when the response has a Date header.
    const serverNow = Date.parse(input.headers?.get('date') ?? '');
    const toEnd = Date.parse(refusal.endsAt) - (Number.isNaN(serverNow) ? now : serverNow);
    if (toEnd > remaining) return giveUp('window-outlasts-budget');
  }
  if (history.attempts >= policy.maxAttempts) return giveUp('attempts-exhausted');
  if (remaining <= 0) return giveUp('budget-exhausted');

  const told =
    parseRetryAfter(input.headers?.get('retry-after'), now, input.headers?.get('date')) ??
    (refusal?.retryAfter != null ? refusal.retryAfter * 1000 : undefined);
  const wait =
    told !== undefined
      ? told + random * policy.jitterMs
      : random * Math.min(policy.maxWaitMs, policy.baseDelayMs * 2 ** (history.attempts - 1));
  // The last wait is cut to what the budget has left: one more try at its end beats giving up early.
  return { action: 'retry', delayMs: Math.min(wait, policy.maxWaitMs, remaining), refusal };
}
