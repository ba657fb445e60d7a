import type { QueuedIntent, Refusal } from './quiesceAnswer.js';
import { decideRetry, type RetryPolicyOptions, resolveRetryPolicy } from './retryPolicy.js';
import { sleep } from './sleep.js';
import { pause, watcherFor } from './windowWatcher.js';

/** What `onRetry` is told before each wait. */
export interface RetryEvent {
  /** Requests made so far (1 before the first retry). */
  attempt: number;
  delayMs: number;
  /** The HTTP status retried, `undefined` after a network error. */
  status: number | undefined;
  /** Set when the retry is for a `READ_ONLY_MODE` refusal: the window's message and expected end. */
  refusal: Refusal | undefined;
}

export interface QuiesceRetryHooks {
  /** Called before each wait: show "saving when maintenance ends…" here. */
  onRetry?: (event: RetryEvent) => void;
  /** Called when the server kept the write as an intent (`WRITE_QUEUED`); it is not re-sent. */
  onQueued?: (intent: QueuedIntent) => void;
}

export interface QuiesceEventsOption {
  /**
   * URL of the quiesce router's event stream (`'/quiesce/events'`). While a refused write waits, the
   * client follows it and sends the write as soon as the window ends (plus up to `jitterMs`), instead
   * of sleeping the whole `Retry-After`; the wait never gets longer. One stream per wrapper, open
   * only while something waits. @default undefined (sleep the `Retry-After`)
   */
  events?: string | URL;
}

export type QuiesceRetryOptions = RetryPolicyOptions & QuiesceRetryHooks & QuiesceEventsOption;

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

const isRequest = (v: unknown): v is Request => typeof Request !== 'undefined' && v instanceof Request;

/** True for a body that cannot be sent twice (a stream): such a request gets one attempt. */
function isOneShot(body: unknown): boolean {
  return typeof ReadableStream !== 'undefined' && body instanceof ReadableStream;
}

/** The JSON body of an answer that may say what quiesce did (202, 4xx, 5xx), read from a clone. */
export async function answerBody(response: Response): Promise<unknown> {
  if (response.status !== 202 && response.status < 400) return undefined;
  if (!/json/i.test(response.headers.get('content-type') ?? '')) return undefined;
  try {
    return await response.clone().json();
  } catch {
    return undefined;
  }
}

function discard(response: Response): void {
  response.body?.cancel().catch(() => {});
}

/**
 * `fetch` that waits out a quiesce window: a write refused with `READ_ONLY_MODE` is re-sent after
 * `Retry-After` (plus jitter) within the budget; a queued write's 202 is returned as is; other
 * failures are retried only when the request is safe to repeat. Gives up on a refused write by
 * throwing a {@link QuiesceRetryError} that carries the window's message and `endsAt`.
 */
export function withQuiesceRetry(
  fetchFn: Fetch = globalThis.fetch,
  options: QuiesceRetryOptions = {},
): Fetch {
  if (typeof fetchFn !== 'function') throw new TypeError('withQuiesceRetry(fetch): fetch must be a function');
  const policy = resolveRetryPolicy(options);
  const { onRetry, onQueued, events } = options;
  const watcher = watcherFor(events, fetchFn);
  return async function quiesceFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const template = isRequest(input) ? input : undefined;
    const method = (init?.method ?? template?.method ?? 'GET').toUpperCase();
    const headers = new Headers(init?.headers ?? template?.headers);
    const signal = init?.signal ?? template?.signal;
    const oneShot = isOneShot(init?.body);
    const startedAt = Date.now();
    for (let attempts = 1; ; attempts++) {
      let response: Response;
      try {
        // A Request's body can be read once: each attempt sends a fresh clone.
        response = await fetchFn(template ? template.clone() : input, init);
      } catch (error) {
        if (signal?.aborted || oneShot) throw error;
        const d = decideRetry(
          { method, idempotencyKey: headers.has('idempotency-key') },
          { attempts, startedAt },
          policy,
          Date.now(),
          Math.random(),
        );
        if (d.action !== 'retry') throw error;
        onRetry?.({ attempt: attempts, delayMs: d.delayMs, status: undefined, refusal: undefined });
        await sleep(d.delayMs, signal);
        continue;
      }
      const d = decideRetry(
        {
          status: response.status,
          headers: response.headers,
          body: await answerBody(response),
          method,
          idempotencyKey: headers.has('idempotency-key'),
        },
        { attempts, startedAt },
        policy,
        Date.now(),
        Math.random(),
      );
      switch (d.action) {
        case 'return':
          return response;
        case 'queued':
          onQueued?.(d.intent);
          return response;
        case 'give-up':
          discard(response);
          throw d.error;
        case 'retry':
          if (oneShot) return response;
          discard(response);
          onRetry?.({ attempt: attempts, delayMs: d.delayMs, status: response.status, refusal: d.refusal });
          await pause(d.delayMs, {
            watcher,
            refused: d.refusal !== undefined,
            jitterMs: policy.jitterMs,
            signal,
          });
      }
    }
  };
}
