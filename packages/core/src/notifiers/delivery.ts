import { z } from 'zod';
import { type Clock, systemClock } from '../clock.js';
import type { Logger } from '../notifier.js';

/** How a notifier retries one call before it gives up and reports the failure. */
export interface RetryOptions {
  /** Attempts per call, the first included. @default 5 */
  attempts?: number;
  /** First backoff; each retry doubles it (full jitter). @default 1000 */
  baseDelayMs?: number;
  /** Cap of one backoff. @default 30000 */
  maxDelayMs?: number;
  /** Give up once the next wait would pass this much time since the first attempt. @default 120000 */
  budgetMs?: number;
  /** Timeout of one attempt. @default 10000 */
  timeoutMs?: number;
}

/** Injectable runtime: tests pass a fake fetch, a virtual clock and a sleep that does not wait. */
export interface NotifierRuntimeOptions {
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** @default systemClock */
  clock?: Pick<Clock, 'now'> & Partial<Clock>;
  /** How the notifier waits between attempts. @default a timer on `clock` */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Source of jitter in [0, 1). @default Math.random */
  random?: () => number;
}

export const retrySchema = z
  .object({
    attempts: z.number().int().min(1).max(50).optional(),
    baseDelayMs: z.number().int().nonnegative().optional(),
    maxDelayMs: z.number().int().nonnegative().optional(),
    budgetMs: z.number().int().nonnegative().optional(),
    timeoutMs: z.number().int().positive().optional(),
  })
  .strict();

export const runtimeShape = {
  fetch: z.custom<typeof fetch>((v) => typeof v === 'function', { message: 'must be a function' }).optional(),
  clock: z
    .custom<Clock>((v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function', {
      message: 'must have now()',
    })
    .optional(),
  sleep: z
    .custom<NotifierRuntimeOptions['sleep']>((v) => typeof v === 'function', {
      message: 'must be a function',
    })
    .optional(),
  random: z
    .custom<() => number>((v) => typeof v === 'function', { message: 'must be a function' })
    .optional(),
  retry: retrySchema.optional(),
};

/** A notifier gave up on a call: the engine records `message` as the notice's `lastError`. */
export class NotifierError extends Error {
  override readonly name = 'NotifierError';
  readonly notifier: string;
  readonly attempts: number;
  /** HTTP status of the last response, if there was one. */
  readonly status: number | undefined;
  readonly retryable: boolean;

  constructor(
    notifier: string,
    message: string,
    info: { attempts: number; status?: number; retryable: boolean; cause?: unknown },
  ) {
    super(`${notifier}: ${message}`, info.cause === undefined ? undefined : { cause: info.cause });
    this.notifier = notifier;
    this.attempts = info.attempts;
    this.status = info.status;
    this.retryable = info.retryable;
  }
}

export interface DeliveryRequest {
  method: string;
  url: string;
  /** Recomputed for every attempt, so a signature can carry a fresh timestamp. */
  headers?: Record<string, string> | (() => Record<string, string>);
  body?: string;
  /** Shown in errors and logs instead of the URL (which may hold a secret, like a Slack hook). */
  label?: string;
}

export interface DeliveryResult {
  status: number;
  body: string;
  attempts: number;
}

interface ResolvedRetry {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  budgetMs: number;
  timeoutMs: number;
}

export const RETRY_DEFAULTS: ResolvedRetry = {
  attempts: 5,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  budgetMs: 120_000,
  timeoutMs: 10_000,
};

/** Statuses worth another attempt: the provider's rate limits (429, and Statuspage's 420), timeouts, 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 420 || status === 425 || status === 429 || status >= 500;
}

function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/**
 * Sends HTTP calls for one notifier: retries with jittered exponential backoff (or the server's
 * Retry-After) within a time budget, optionally spaces calls at least `minIntervalMs` apart (a
 * provider's rate limit), and throws a {@link NotifierError} naming the call when it gives up.
 */
export class Delivery {
  readonly name: string;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly sleepImpl: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private readonly retry: ResolvedRetry;
  private readonly minIntervalMs: number;
  private nextSlot = 0;
  private slotChain: Promise<void> = Promise.resolve();

  constructor(
    name: string,
    options: NotifierRuntimeOptions & { retry?: RetryOptions | undefined; minIntervalMs?: number },
  ) {
    this.name = name;
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    const clock = options.clock ?? systemClock;
    this.now = () => clock.now();
    this.sleepImpl = options.sleep ?? ((ms, signal) => timerSleep(clock, ms, signal));
    this.random = options.random ?? Math.random;
    this.retry = { ...RETRY_DEFAULTS, ...stripUndefined(options.retry ?? {}) };
    this.minIntervalMs = options.minIntervalMs ?? 0;
  }

  /** Wait for this notifier's next rate-limit slot (calls are spaced, in call order). */
  private pace(signal: AbortSignal): Promise<void> {
    if (this.minIntervalMs <= 0) return Promise.resolve();
    const turn = this.slotChain.then(async () => {
      const wait = this.nextSlot - this.now();
      if (wait > 0) await this.sleepImpl(wait, signal);
      this.nextSlot = this.now() + this.minIntervalMs;
    });
    this.slotChain = turn.catch(() => {});
    return turn;
  }

  async send(request: DeliveryRequest, signal: AbortSignal, log: Logger): Promise<DeliveryResult> {
    const label = request.label ?? `${request.method} ${request.url}`;
    const started = this.now();
    let lastProblem = '';
    let lastStatus: number | undefined;
    let lastCause: unknown;
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw abortError(signal);
      await this.pace(signal);
      let retryAfterMs: number | undefined;
      let retryable = true;
      const attemptSignal = AbortSignal.any([signal, AbortSignal.timeout(this.retry.timeoutMs)]);
      try {
        const headers = typeof request.headers === 'function' ? request.headers() : request.headers;
        const init: RequestInit = { method: request.method, signal: attemptSignal };
        if (headers) init.headers = headers;
        if (request.body !== undefined) init.body = request.body;
        const response = await this.fetchImpl(request.url, init);
        const body = await response.text();
        if (response.ok) {
          if (attempt > 1)
            log.info(`${this.name}: ${label} succeeded`, { notifier: this.name, attempts: attempt });
          return { status: response.status, body, attempts: attempt };
        }
        lastStatus = response.status;
        lastProblem = `HTTP ${response.status}${body ? `: ${excerpt(body)}` : ''}`;
        retryable = isRetryableStatus(response.status);
        retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), this.now());
      } catch (error) {
        if (signal.aborted) throw abortError(signal);
        lastCause = error;
        lastStatus = undefined;
        const timedOut = attemptSignal.aborted;
        lastProblem = timedOut
          ? `no response within ${this.retry.timeoutMs} ms`
          : `network error: ${describeError(error)}`;
      }
      if (!retryable) {
        throw new NotifierError(this.name, `${label} was refused (${lastProblem}); not retried`, {
          attempts: attempt,
          status: lastStatus,
          retryable: false,
          cause: lastCause,
        });
      }
      const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
      // Full jitter so instances that failed together do not retry together; a server's
      // Retry-After is a floor, never shortened.
      const delay = Math.max(retryAfterMs ?? 0, Math.round(this.random() * ceiling));
      const elapsed = this.now() - started;
      if (attempt >= this.retry.attempts || elapsed + delay > this.retry.budgetMs) {
        const why =
          attempt >= this.retry.attempts ? `${attempt} attempts` : `the ${this.retry.budgetMs} ms budget`;
        throw new NotifierError(
          this.name,
          `${label} failed after ${attempt} attempt${attempt === 1 ? '' : 's'} in ${elapsed} ms (gave up: ${why}); last: ${lastProblem}`,
          { attempts: attempt, status: lastStatus, retryable: true, cause: lastCause },
        );
      }
      log.warn(`${this.name}: ${label} failed, retrying`, {
        notifier: this.name,
        attempt,
        delayMs: delay,
        problem: lastProblem,
      });
      await this.sleepImpl(delay, signal);
    }
  }
}

function timerSleep(clock: Partial<Clock>, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal));
    const set = clock.setTimeout ?? systemClock.setTimeout;
    const clear = clock.clearTimeout ?? systemClock.clearTimeout;
    const onAbort = () => {
      clear(handle);
      reject(abortError(signal));
    };
    const handle = set(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function excerpt(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}

/** Runs tasks one after another per key (a window), so `started` never overtakes `scheduled`. */
export class KeyedSerializer {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.catch(() => {}).then(task);
    const tail = result.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
