import { type QuiesceEngine, readSignalsOf } from '@quiesce/core';
import type { GraphqlVerdict } from '@quiesce/core/graphql';

const isAsyncIterable = (v: any): boolean => v != null && typeof v[Symbol.asyncIterator] === 'function';

type ExecuteFn = (args: any) => any;

/**
 * What the plugin does around an execution that runs: a tracked write is released however the
 * execution settles (a throwing or rejecting executor included, a stream at its end); a read is
 * timed for the read-health watcher, with the signals its resolvers attached to the GraphQL context
 * (`attachReadSignals(context, …)`, #18).
 */
export function executionHooks(
  engine: QuiesceEngine,
  verdict: GraphqlVerdict,
  start: number,
  context: object | undefined,
  forget: () => void,
  setExecuteFn: (fn: ExecuteFn) => void,
  executeFn: ExecuteFn,
) {
  let open = true;
  const release = () => {
    if (!open) return;
    open = false;
    forget();
    verdict.inFlight?.done();
  };
  if (verdict.inFlight) {
    setExecuteFn((a) => {
      try {
        const r = executeFn(a) as unknown;
        return r instanceof Promise
          ? r.catch((e: unknown) => {
              release();
              throw e;
            })
          : r;
      } catch (e) {
        release();
        throw e;
      }
    });
  }
  return {
    onExecuteDone({ result }: { result: unknown }) {
      if (isAsyncIterable(result)) return { onEnd: release };
      release();
      if (verdict.read) {
        const errors = (result as { errors?: unknown[] } | undefined)?.errors;
        engine.reportRead({
          surface: 'graphql',
          durationMs: performance.now() - start,
          error: !!errors?.length,
          signals: context ? readSignalsOf(context) : undefined,
        });
      }
      return undefined;
    },
  };
}
