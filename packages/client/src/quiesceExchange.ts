import { type Exchange, makeOperation, mapExchange } from '@urql/core';
import { resolveRetryPolicy } from './retryPolicy.js';
import { type QuiesceRetryOptions, withQuiesceRetry } from './withQuiesceRetry.js';

type Fetch = typeof fetch;

/**
 * An urql exchange that waits out a quiesce window: it gives each operation a `fetch` that re-sends
 * a `READ_ONLY_MODE` refusal after `Retry-After` (plus jitter) within the budget, so the
 * `fetchExchange` after it sees only the final answer. A queued mutation (`WRITE_QUEUED`) is not
 * re-sent: its result carries the intent in `error.graphQLErrors[0].extensions`. Giving up yields a
 * result whose `error.networkError` is the {@link QuiesceRetryError}. Place it before `fetchExchange`.
 */
export function quiesceExchange(options: QuiesceRetryOptions = {}): Exchange {
  resolveRetryPolicy(options); // reject bad options when the client is built, not on the first write
  const wrapped = new WeakMap<Fetch, Fetch>();
  const ours = new WeakSet<Fetch>();
  return mapExchange({
    onOperation(operation) {
      if (operation.kind === 'teardown') return operation;
      const base = (operation.context.fetch as Fetch | undefined) ?? globalThis.fetch;
      // A re-executed operation comes back with our fetch already in its context.
      if (ours.has(base)) return operation;
      let fetchFn = wrapped.get(base);
      if (!fetchFn) {
        fetchFn = withQuiesceRetry(base, options) as Fetch;
        wrapped.set(base, fetchFn);
        ours.add(fetchFn);
      }
      return makeOperation(operation.kind, operation, { ...operation.context, fetch: fetchFn });
    },
  });
}
