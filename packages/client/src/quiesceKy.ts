import ky, { type AfterResponseHook, isHTTPError, type Options } from 'ky';
import { decideRetry, resolveRetryPolicy } from './retryPolicy.js';
import { answerBody, type QuiesceRetryOptions } from './withQuiesceRetry.js';

/**
 * Options for `ky.create()` / `ky.extend()` that wait out a quiesce window: an `afterResponse` hook
 * asks the retry policy about each answer and forces a retry (`ky.retry({ delay })`) of a
 * `READ_ONLY_MODE` refusal, whatever the method; a queued write (`WRITE_QUEUED`, 202) is returned
 * as is; giving up throws the {@link QuiesceRetryError}. Ky's own status-based retries are turned
 * off (the policy decides them, with the budget); its network-error retries are kept.
 */
export function quiesceKy(options: Omit<QuiesceRetryOptions, 'events'> = {}): Options {
  if ((options as { events?: unknown }).events !== undefined) {
    throw new TypeError('quiesceKy: events is not supported with ky; the wait is the Retry-After');
  }
  const policy = resolveRetryPolicy(options);
  const { onRetry, onQueued } = options;
  // Ky gives each call its own `context` object and keeps it across the call's retries: the call's
  // start time hangs on it.
  const started = new WeakMap<object, number>();
  const afterResponse: AfterResponseHook = async ({ request, options: o, response, retryCount }) => {
    const key = o.context;
    let startedAt = started.get(key);
    if (startedAt === undefined || retryCount === 0) {
      startedAt = Date.now();
      started.set(key, startedAt);
    }
    const d = decideRetry(
      {
        status: response.status,
        headers: response.headers,
        body: await answerBody(response),
        method: request.method,
        idempotencyKey: request.headers.has('idempotency-key'),
      },
      { attempts: retryCount + 1, startedAt },
      policy,
      Date.now(),
      Math.random(),
    );
    switch (d.action) {
      case 'retry':
        onRetry?.({
          attempt: retryCount + 1,
          delayMs: d.delayMs,
          status: response.status,
          refusal: d.refusal,
        });
        return ky.retry({ delay: d.delayMs, code: d.refusal ? 'READ_ONLY_MODE' : `HTTP_${response.status}` });
      case 'give-up':
        throw d.error;
      case 'queued':
        onQueued?.(d.intent);
        return undefined;
      default:
        return undefined;
    }
  };
  return {
    retry: {
      limit: policy.maxAttempts - 1,
      shouldRetry: ({ error }) => (isHTTPError(error) ? false : undefined),
    },
    hooks: { afterResponse: [afterResponse] },
  };
}
