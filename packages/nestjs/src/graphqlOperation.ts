import { type ExecutionContext, Logger } from '@nestjs/common';
import type { QuiesceEngine } from '@quiesce/core';
import {
  decideGraphqlOperation,
  type GraphqlAnswer,
  type GraphqlFieldPolicy,
  type GraphqlVerdict,
  type OperationDefinitionNode,
  rootFields,
  type SelectionSetNode,
} from '@quiesce/core/graphql';
import type { PlatformRequest } from './platform.js';
import { annotationOf, type RoutePolicy, routePolicy } from './policyDecorators.js';
import type { ResolvedModuleOptions } from './tokens.js';

/** The members of graphql-js's `GraphQLResolveInfo` read here (structural: graphql is not a dependency). */
interface ResolveInfo {
  fieldName: string;
  path: { prev: unknown; key: string | number };
  operation: OperationDefinitionNode;
  fragments: Record<string, { selectionSet: SelectionSetNode } | undefined>;
  variableValues?: Record<string, unknown>;
}

type GraphQLErrorClass = typeof import('graphql').GraphQLError;
let GraphQLError: GraphQLErrorClass | undefined;

/**
 * The app's own `graphql` (an optional peer), loaded the first time a GraphQL context reaches the
 * guard: servers only let a real `GraphQLError` through unmasked (Yoga checks `instanceof`).
 */
async function loadGraphql(): Promise<void> {
  GraphQLError ??= (await import('graphql')).GraphQLError;
}

/**
 * graphql-js copies the thrown error's `extensions` into the result; GraphQL servers (Yoga,
 * Apollo) take `extensions.http` for the response status and headers and leave it out of the body.
 */
function graphqlError(message: string, extensions: Record<string, unknown>): Error {
  const error = new GraphQLError!(message, { extensions });
  Object.defineProperty(error, kQuiesceGraphqlError, { value: true });
  return error;
}

const kQuiesceGraphqlError = Symbol.for('quiesce:graphql-error');

/**
 * Matches (with `instanceof`, as Nest's `@Catch()` does) the GraphQL errors the guard throws, whose
 * class is the app's own `GraphQLError`.
 */
// biome-ignore lint/complexity/noStaticOnlyClass: `@Catch()` matches exceptions by class (`instanceof`).
export class QuiesceGraphqlError {
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && kQuiesceGraphqlError in value;
  }
}

/**
 * Header bag that both GraphQL servers read: Apollo Server wants a `Map` (it checks `instanceof
 * Map`), Yoga walks the object's own keys with `for…in`. A Map carrying the headers as own
 * properties too is both.
 */
function httpHeaders(headers: Record<string, string>): Map<string, string> {
  return Object.assign(new Map(Object.entries(headers)), headers);
}

/** Mutation field name → the resolver's policy, filled at bootstrap by the inventory scan. */
export type GraphqlPolicies = Map<string, RoutePolicy | undefined>;

/** One verdict per GraphQL execution of a mutation (keyed by its context object). */
const verdicts = new WeakMap<object, GraphqlVerdict>();

function requestOf(ctx: Record<string, any> | undefined): PlatformRequest | undefined {
  return ctx?.req ?? ctx?.request;
}

function rawResponseOf(
  ctx: Record<string, any> | undefined,
): { setHeader?: (k: string, v: string) => unknown; headersSent?: boolean; once?: Function } | undefined {
  const res = ctx?.res ?? ctx?.reply ?? requestOf(ctx)?.['res' as never];
  return res?.raw ?? res;
}

/** Core's answer as the app's own `GraphQLError`; `extensions.http.headers` as both servers read them. */
function toError(answer: GraphqlAnswer): Error {
  const { http, ...rest } = answer.extensions;
  return graphqlError(answer.message, {
    ...rest,
    ...(http
      ? { http: { status: http.status, ...(http.headers ? { headers: httpHeaders(http.headers) } : {}) } }
      : {}),
  });
}

function fieldPolicy(
  policy: RoutePolicy | undefined,
  type: 'query' | 'mutation' | 'subscription',
  req: PlatformRequest | undefined,
): GraphqlFieldPolicy | undefined {
  const annotation = annotationOf(policy, type !== 'mutation');
  if (!annotation && !policy?.queue) return undefined;
  const source = policy?.queue?.idempotencyKey;
  return {
    ...(annotation ? { annotation } : {}),
    ...(policy?.queue?.name ? { intentName: policy.queue.name } : {}),
    ...(source ? { idempotencyKey: typeof source === 'function' ? () => source(req) : source } : {}),
  };
}

/**
 * The guard in a GraphQL execution context: core's `decideGraphqlOperation` decides a mutation
 * whole at its first guarded root field (every root field it selects, the strictest wins); each
 * guarded root field then throws the refusal, answers its stop (queued, dropped), or runs.
 * Queries and subscriptions pass unless a decorator says they write.
 */
export function graphqlDecision(
  engine: QuiesceEngine,
  options: ResolvedModuleOptions,
  context: ExecutionContext,
): boolean | Promise<boolean> {
  if (GraphQLError === undefined) return loadGraphql().then(() => graphqlDecision(engine, options, context));
  const info = context.getArgByIndex<ResolveInfo | undefined>(3);
  // Field resolvers below the root are covered by their root field's decision.
  if (!info?.operation || info.path.prev !== undefined) return true;
  const type = info.operation.operation;
  const own = routePolicy(context.getHandler(), context.getClass());
  if (type !== 'mutation' && annotationOf(own, true)?.classification !== 'write') return true;

  const ctx = context.getArgByIndex<Record<string, any> | undefined>(2);
  const req = requestOf(ctx);
  const res = rawResponseOf(ctx);
  const keyed = type === 'mutation' && ctx !== null && typeof ctx === 'object';
  let verdict = keyed ? verdicts.get(ctx) : undefined;
  if (!verdict) {
    const principal = options.principal;
    verdict = decideGraphqlOperation(engine, {
      operationType: type,
      fields:
        type === 'mutation'
          ? rootFields(info.operation, (name) => info.fragments[name]?.selectionSet, info.variableValues)
          : new Map([[String(info.path.key), info.fieldName]]),
      policy: (field) =>
        fieldPolicy(field === info.fieldName ? own : options.graphqlPolicies.get(field), type, req),
      ...(req?.headers ? { headers: req.headers } : {}),
      ...(req?.ip ? { ip: req.ip } : {}),
      ...(principal && req ? { principal: () => principal(req) } : {}),
      logger: graphqlLogger,
    });
    if (keyed) verdicts.set(ctx, verdict);
    const handle = verdict.inFlight;
    if (handle) {
      if (res?.once) res.once('close', () => handle.done());
      else handle.done();
    }
  }
  if (verdict.refusal) {
    const retryAfter = verdict.refusal.extensions.http?.headers?.['Retry-After'];
    if (retryAfter && res?.setHeader && !res.headersSent) res.setHeader('retry-after', retryAfter);
    throw toError(verdict.refusal);
  }
  const stop = verdict.stop(String(info.path.key));
  if (!stop) return true;
  const args = context.getArgByIndex<Record<string, unknown>>(1) ?? {};
  return stop.settle(args).then((answer) => {
    throw toError(answer);
  });
}

const graphqlLogger = {
  warn: (message: string, fields?: Record<string, unknown>) =>
    new Logger('QuiesceModule').warn(`${message} ${JSON.stringify(fields ?? {})}`),
};
