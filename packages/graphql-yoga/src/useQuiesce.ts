import type { QuiesceEngine } from '@quiesce/core';
import {
  decideGraphqlOperation,
  documentFragments,
  type GraphqlAnswer,
  type GraphqlVerdict,
  rootFields,
  selectOperation,
} from '@quiesce/core/graphql';
import type { Plugin, YogaInitialContext } from 'graphql-yoga';
import { batchStatus } from './batchStatus.js';
import { executionHooks } from './executionHooks.js';
import { checkOptions } from './options.js';
import { renderRefusal } from './refusalResponse.js';
import { schemaPlanner, toError } from './schemaPlan.js';

const A_READ: GraphqlVerdict = Object.freeze({
  refusal: null,
  inFlight: null,
  stop: () => undefined,
  read: true,
});

/** The Yoga context as the option callbacks see it: Yoga's initial context plus the server's and the app's. */
export type QuiesceYogaContext = YogaInitialContext & Record<string, any>;

export interface QuiesceYogaOptions {
  /** Who is calling: for the principal bypass and the intent record. If it throws, the write is refused. */
  principal?: (context: QuiesceYogaContext) => string | undefined;
  /**
   * The client's address, for the CIDR bypass allowlist.
   * @default the socket address of the node request when Yoga runs on `node:http` (`context.req`)
   */
  ip?: (context: QuiesceYogaContext) => string | undefined;
  /** Header with the client's idempotency key for queued fields whose directive gives no `key`. @default 'idempotency-key' */
  idempotencyKeyHeader?: string;
  /** A queued field with no key is answered `IDEMPOTENCY_KEY_REQUIRED` (400) instead of getting a derived one. @default false */
  requireIdempotencyKey?: boolean;
  /** Name of a queued field's write intent (what `engine.handle(name, …)` replays). @default `Mutation.createOrder` */
  intentName?: (field: { typeName: string; fieldName: string; coordinate: string }) => string;
  /**
   * Report each query's execution time and errors to the engine's read-health watcher, with the
   * read-quality signals its resolvers attach to the context (`attachReadSignals(context, …)`).
   * @default true
   */
  reportReads?: boolean;
}

/**
 * The Yoga (envelop) plugin. Core's `decideGraphqlOperation` decides each operation once: one
 * refused root field refuses all of it before any resolver runs; queued and dropped fields answer
 * without running their resolver; a tracked write is held in flight until execution is over.
 */
export function useQuiesce(engine: QuiesceEngine, options: QuiesceYogaOptions = {}): Plugin {
  checkOptions(engine, options);
  const { principal, requireIdempotencyKey = false, reportReads = true, idempotencyKeyHeader } = options;
  const ipOf = options.ip ?? ((c: QuiesceYogaContext) => c.req?.socket?.remoteAddress);
  const intentNameOf = options.intentName ?? ((f) => f.coordinate);
  /** The refusal errors this plugin answered with, to render them itself. */
  const refusals = new WeakMap<object, GraphqlAnswer>();
  /** Per execution context: the verdict the wrapped root resolvers read. */
  const verdicts = new WeakMap<object, GraphqlVerdict>();
  const batches = batchStatus();

  const planFor = schemaPlanner(engine, { requireIdempotencyKey, intentNameOf }, verdicts);

  return {
    onSchemaChange({ schema }) {
      // Reads the directives at start: invalid use fails createYoga(), not a request.
      planFor(schema);
    },

    onExecute({ args, context: executionContext, setResultAndStopExecution, setExecuteFn, executeFn }) {
      const operation = selectOperation(args.document, args.operationName);
      if (operation === undefined) return;
      const plan = planFor(args.schema);
      const context = executionContext as QuiesceYogaContext;
      const kind = operation.operation === 'mutation' ? 'mutation' : 'query';
      const start = performance.now();
      // A query decides nothing unless the schema has query fields that write (`@writes`).
      const verdict: GraphqlVerdict =
        kind === 'query' && plan.query.size === 0
          ? A_READ
          : decideGraphqlOperation(engine, {
              operationType: operation.operation,
              fields: rootFields(
                operation,
                documentFragments(args.document),
                args.variableValues as Record<string, unknown>,
              ),
              policy: (field) => plan[kind].get(field),
              ...(context?.request?.headers ? { headers: context.request.headers } : {}),
              ...(context ? { ip: ipOf(context) } : {}),
              ...(principal && context ? { principal: () => principal(context) } : {}),
              ...(idempotencyKeyHeader ? { idempotencyKeyHeader } : {}),
            });
      if (engine.readOnly && context?.request) batches.count(context.request, verdict.refusal);
      if (verdict.refusal) {
        const error = toError(verdict.refusal);
        refusals.set(error, verdict.refusal);
        setResultAndStopExecution({ errors: [error] });
        return;
      }
      if (!verdict.read) verdicts.set(context, verdict);
      if (verdict.read && (!reportReads || kind === 'mutation' || operation.operation === 'subscription'))
        return;
      return executionHooks(
        engine,
        verdict,
        start,
        context,
        () => verdicts.delete(context),
        setExecuteFn,
        executeFn,
      );
    },

    onResultProcess(payload) {
      renderRefusal(payload, refusals);
    },

    onResponse: batches.respond,
  };
}
