import { type QuiesceEngine, QuiesceError } from '@quiesce/core';
import {
  decideGraphqlOperation,
  documentFragments,
  type GraphqlAnswer,
  type GraphqlFieldPolicy,
  type GraphqlVerdict,
  rootFields,
  selectOperation,
} from '@quiesce/core/graphql';
import type { GraphQLFieldResolver, GraphQLSchema } from 'graphql';
import { createGraphQLError, type Plugin, type YogaInitialContext } from 'graphql-yoga';
import { readSchemaWrites } from './directives.js';
import { checkOptions } from './options.js';

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
  /** Report each query's execution time and errors to the engine's read-health watcher. @default true */
  reportReads?: boolean;
}

type Policies = Record<'mutation' | 'query', Map<string, GraphqlFieldPolicy>>;

/** A GraphQL error that answers rather than reports a fault: no stack trace (most of a refusal's cost). */
function toError(answer: GraphqlAnswer) {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return createGraphQLError(answer.message, { extensions: answer.extensions });
  } finally {
    Error.stackTraceLimit = limit;
  }
}

const isAsyncIterable = (v: any): boolean => v != null && typeof v[Symbol.asyncIterator] === 'function';

/** graphql-js's default resolver, for root fields without their own. */
const defaultResolve: GraphQLFieldResolver<any, any> = (source, args, context, info) => {
  if (source === null || (typeof source !== 'object' && typeof source !== 'function')) return undefined;
  const value = source[info.fieldName];
  return typeof value === 'function' ? value.call(source, args, context, info) : value;
};

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
  const plans = new WeakMap<GraphQLSchema, Policies>();
  /** Per execution context: the verdict the wrapped root resolvers read. */
  const verdicts = new WeakMap<object, GraphqlVerdict>();
  /** Per request: how many operations it executed, and the refusals (a batch shares its request). */
  const batches = new WeakMap<
    object,
    { total: number; refused: number; status: number; retryAfter: number }
  >();

  function planFor(schema: GraphQLSchema): Policies {
    let plan = plans.get(schema);
    if (plan) return plan;
    const writes = readSchemaWrites(schema);
    plan = { mutation: new Map(), query: new Map() };
    for (const [kind, fields] of [
      ['mutation', writes.mutation],
      ['query', writes.writingQueries],
    ] as const) {
      for (const field of fields.values()) {
        const intentName = intentNameOf(field);
        const keyPath = field.keyPath;
        plan[kind].set(field.fieldName, {
          coordinate: field.coordinate,
          intentName,
          ...(kind === 'query' || field.policy
            ? { annotation: { classification: 'write', ...(field.policy ? { policy: field.policy } : {}) } }
            : {}),
          keyRequired: requireIdempotencyKey,
          ...(keyPath
            ? {
                idempotencyKey: (args) => keyPath.reduce<any>((v, k) => (v == null ? v : v[k]), args),
                keyField: keyPath.join('.'),
              }
            : {}),
        });
        engine.register({
          surface: 'graphql',
          name: `${kind} ${field.fieldName}`,
          classification: 'write',
          policy: field.policy ?? 'block',
          explicit: field.policy !== undefined,
          source: 'graphql-yoga',
          details: {
            coordinate: field.coordinate,
            ...(keyPath ? { key: keyPath.join('.') } : {}),
            intentName,
          },
        });
      }
    }
    for (const type of [schema.getMutationType(), schema.getQueryType()]) {
      for (const f of Object.values(type?.getFields() ?? {})) {
        const original = f.resolve ?? defaultResolve;
        f.resolve = function quiesceRoot(source, args, context, info) {
          const stop = verdicts.get(context)?.stop(info.path.key as string);
          if (stop === undefined) return original.call(this, source, args, context, info);
          return stop.settle(args).then((answer) => {
            throw toError(answer);
          });
        };
      }
    }
    plans.set(schema, plan);
    return plan;
  }

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
      const verdict = decideGraphqlOperation(engine, {
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
      const request = context?.request;
      const mark =
        request && engine.readOnly
          ? (batches.get(request) ?? { total: 0, refused: 0, status: 0, retryAfter: 0 })
          : undefined;
      if (mark && request) {
        batches.set(request, mark);
        mark.total++;
      }
      if (verdict.refusal) {
        if (mark) {
          mark.refused++;
          mark.status = verdict.refusal.extensions.http!.status;
          mark.retryAfter = Math.max(mark.retryAfter, Number(verdict.refusal.extensions.retryAfter ?? 0));
        }
        setResultAndStopExecution({ errors: [toError(verdict.refusal)] });
        return;
      }
      verdicts.set(context, verdict);
      if (verdict.read && (!reportReads || kind === 'mutation' || operation.operation === 'subscription'))
        return;
      let open = true;
      const release = () => {
        if (!open) return;
        open = false;
        verdicts.delete(context);
        verdict.inFlight?.done();
      };
      // However execution settles (a throwing or rejecting executor included), the write is released.
      if (verdict.inFlight) {
        setExecuteFn((a) => {
          try {
            const r = executeFn(a) as unknown;
            return (
              r instanceof Promise ? r.catch((e: unknown) => (release(), Promise.reject(e))) : r
            ) as never;
          } catch (e) {
            release();
            throw e;
          }
        });
      }
      return {
        onExecuteDone({ result }) {
          if (isAsyncIterable(result)) return { onEnd: release };
          release();
          if (verdict.read) {
            const errors = (result as { errors?: unknown[] } | undefined)?.errors;
            engine.reportRead({
              surface: 'graphql',
              durationMs: performance.now() - start,
              error: !!errors?.length,
            });
          }
          return undefined;
        },
      };
    },

    onResponse({ request, response, setResponse, fetchAPI }) {
      // Yoga sets a single operation's status from its error; a batch answers 200 whatever its
      // entries say, so a batch refused whole gets the refusal status here, a partly refused one
      // keeps 200 and each refused entry carries its own READ_ONLY_MODE error.
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

export { QuiesceError };
