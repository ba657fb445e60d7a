import type { GraphqlAnswer } from '@quiesce/core/graphql';
import type { Plugin } from 'graphql-yoga';

type ResultProcessPayload = Parameters<NonNullable<Plugin['onResultProcess']>>[0];

const isAsyncIterable = (v: any): boolean => v != null && typeof v[Symbol.asyncIterator] === 'function';

/**
 * A single refused operation is answered as core rendered it (status, `Retry-After`, the answer
 * without `extensions.http`): Yoga's own serialiser rebuilds every GraphQLError, with a stack
 * trace, to strip `extensions.http`, which was most of a refusal's cost. Event streams and batches
 * keep Yoga's rendering.
 */
export function renderRefusal(
  { request, result, resultProcessor, setResultProcessor }: ResultProcessPayload,
  refusals: WeakMap<object, GraphqlAnswer>,
): void {
  const errors = !Array.isArray(result) && !isAsyncIterable(result) ? (result as any).errors : undefined;
  const refusal = errors?.length === 1 ? refusals.get(errors[0]) : undefined;
  if (!refusal || !resultProcessor) return;
  const accept = request.headers.get('accept') ?? '';
  const type = accept.includes('application/graphql-response+json')
    ? 'application/graphql-response+json'
    : accept === '' || accept.includes('application/json') || accept.includes('*/*')
      ? 'application/json'
      : undefined;
  if (!type) return;
  setResultProcessor((_result, fetchAPI) => {
    const { http, ...extensions } = refusal.extensions;
    const body = JSON.stringify({ errors: [{ message: refusal.message, extensions }] });
    return new fetchAPI.Response(body, {
      status: http?.status ?? 503,
      headers: { 'content-type': `${type}; charset=utf-8`, ...http?.headers },
    });
  }, type);
}
