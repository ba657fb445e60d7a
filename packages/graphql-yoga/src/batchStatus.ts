import type { GraphqlAnswer } from '@quiesce/core/graphql';
import type { Plugin } from 'graphql-yoga';

type OnResponse = NonNullable<Plugin['onResponse']>;

/**
 * The HTTP status of a request during a window, over all the operations it executed (a batch shares
 * its request). Yoga sets a single operation's status from its error; a batch answers 200 whatever
 * its entries say, so a batch refused whole gets the refusal status and `Retry-After`, a partly
 * refused one keeps 200 with `Retry-After` and each refused entry carries its own READ_ONLY_MODE error.
 */
export function batchStatus(): {
  count(request: object, refusal: GraphqlAnswer | null): void;
  respond: OnResponse;
} {
  const batches = new WeakMap<
    object,
    { total: number; refused: number; status: number; retryAfter: number }
  >();
  return {
    count(request, refusal) {
      const mark = batches.get(request) ?? { total: 0, refused: 0, status: 0, retryAfter: 0 };
      batches.set(request, mark);
      mark.total++;
      if (!refusal) return;
      mark.refused++;
      mark.status = refusal.extensions.http!.status;
      mark.retryAfter = Math.max(mark.retryAfter, Number(refusal.extensions.retryAfter ?? 0));
    },
    respond({ request, response, setResponse, fetchAPI }) {
      const mark = batches.get(request);
      if (!mark || mark.refused === 0) return;
      if (mark.refused === mark.total && response.status === mark.status) return;
      const headers = new fetchAPI.Headers(response.headers);
      headers.set('Retry-After', String(mark.retryAfter));
      headers.set('Cache-Control', 'no-store');
      const status = mark.refused === mark.total ? mark.status : response.status;
      setResponse(new fetchAPI.Response(response.body, { status, headers }));
    },
  };
}
