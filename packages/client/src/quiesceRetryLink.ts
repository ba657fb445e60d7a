import { ApolloLink } from '@apollo/client';
import { Observable, type Subscription } from 'rxjs';
import { decideRetry, type RetryDecision, resolveRetryPolicy } from './retryPolicy.js';
import { pause, watcherFor } from './windowWatcher.js';
import type { QuiesceRetryOptions } from './withQuiesceRetry.js';

/** The members of Apollo's `ServerError` read here (a non-2xx answer that was not GraphQL-encoded). */
interface ServerErrorLike {
  response: Response;
  statusCode: number;
  bodyText: string;
}

const isServerError = (e: unknown): e is ServerErrorLike =>
  typeof e === 'object' &&
  e !== null &&
  typeof (e as ServerErrorLike).statusCode === 'number' &&
  typeof (e as ServerErrorLike).bodyText === 'string';

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * An Apollo Client link that waits out a quiesce window: an operation refused with
 * `READ_ONLY_MODE` is sent again after `Retry-After` (plus jitter) within the budget; a queued
 * mutation's result (`WRITE_QUEUED` with the intent) passes through and is not re-sent; other
 * errors pass through. Place it before the terminating `HttpLink`, whose response it reads.
 */
export function quiesceRetryLink(options: QuiesceRetryOptions = {}): ApolloLink {
  const policy = resolveRetryPolicy(options);
  const { onRetry, onQueued } = options;
  const watcher = watcherFor(options.events, (input, init) => globalThis.fetch(input, init));
  return new ApolloLink(
    (operation, forward) =>
      new Observable<ApolloLink.Result>((observer) => {
        // A query is a read, safe to repeat after a network error; a mutation only when quiesce refused it.
        const method = operation.operationType === 'query' ? 'GET' : 'POST';
        const startedAt = Date.now();
        let attempts = 0;
        let current: Subscription | undefined;
        const teardown = new AbortController();

        const run = () => {
          if (teardown.signal.aborted) return;
          const attempt = ++attempts;
          let decided = false;
          let done = false; // this attempt forwards nothing more
          let sub: Subscription | undefined;
          const decide = (status: number | undefined, headers: Headers | undefined, body: unknown) =>
            decideRetry(
              { status, headers, body, method },
              { attempts: attempt, startedAt },
              policy,
              Date.now(),
              Math.random(),
            );
          const fail = (error: unknown) => {
            done = true;
            observer.error(error);
          };
          /** Carries out the decision on this attempt's first answer; true when nothing more is forwarded. */
          const act = (d: RetryDecision, status: number | undefined): boolean => {
            decided = true;
            if (d.action === 'retry') {
              done = true;
              sub?.unsubscribe();
              onRetry?.({ attempt, delayMs: d.delayMs, status, refusal: d.refusal });
              pause(d.delayMs, {
                watcher,
                refused: d.refusal !== undefined,
                jitterMs: policy.jitterMs,
                signal: teardown.signal,
              }).then(run, () => {
                // Unsubscribed while waiting: nothing more to send.
              });
              return true;
            }
            if (d.action === 'give-up') {
              fail(d.error);
              return true;
            }
            if (d.action === 'queued') onQueued?.(d.intent);
            return false;
          };
          sub = forward(operation).subscribe({
            next(result) {
              if (done) return;
              if (!decided) {
                const response = operation.getContext().response as Response | undefined;
                if (act(decide(response?.status ?? 200, response?.headers, result), response?.status)) return;
              }
              observer.next(result);
            },
            error(error: unknown) {
              if (done) return;
              if (!decided) {
                const d = isServerError(error)
                  ? decide(error.statusCode, error.response.headers, parse(error.bodyText))
                  : decide(undefined, undefined, undefined);
                if (act(d, isServerError(error) ? error.statusCode : undefined)) return;
              }
              fail(error);
            },
            complete() {
              if (done) return;
              done = true;
              observer.complete();
            },
          });
          if (done) sub.unsubscribe();
          else current = sub;
        };

        run();
        return () => {
          teardown.abort();
          current?.unsubscribe();
        };
      }),
  );
}
