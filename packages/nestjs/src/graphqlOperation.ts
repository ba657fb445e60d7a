import type { ExecutionContext } from '@nestjs/common';
import type { Decision, EnqueueDecision, Operation, QuiesceEngine, RefuseDecision } from '@quiesce/core';
import { isQuiesceError, type QuiesceError, statusForCode } from '@quiesce/core';
import { operationFromHttp, resolveIdempotencyKey } from '@quiesce/core/http';
import type { PlatformRequest } from './platform.js';
import { annotationOf, type RoutePolicy, routePolicy } from './policyDecorators.js';
import type { ResolvedModuleOptions } from './tokens.js';

/** The members of graphql-js's `GraphQLResolveInfo` read here (structural: graphql is not a dependency). */
interface SelectionNode {
  kind: string;
  name?: { value: string };
  selectionSet?: { selections: readonly SelectionNode[] };
}
interface ResolveInfo {
  fieldName: string;
  path: { prev: unknown };
  operation: {
    operation: 'query' | 'mutation' | 'subscription';
    selectionSet: { selections: readonly SelectionNode[] };
  };
  fragments: Record<string, { selectionSet: { selections: readonly SelectionNode[] } }>;
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

/** The root fields an operation selects, through inline fragments and fragment spreads. */
function rootFields(info: ResolveInfo): string[] {
  const out: string[] = [];
  const walk = (selections: readonly SelectionNode[]) => {
    for (const s of selections) {
      if (s.kind === 'Field') {
        const name = s.name!.value;
        if (!name.startsWith('__')) out.push(name);
      } else if (s.kind === 'InlineFragment' && s.selectionSet) {
        walk(s.selectionSet.selections);
      } else if (s.kind === 'FragmentSpread' && s.name) {
        const f = info.fragments[s.name.value];
        if (f) walk(f.selectionSet.selections);
      }
    }
  };
  walk(info.operation.selectionSet.selections);
  return out;
}

interface Decided {
  op: Operation;
  decision: Decision;
}

interface OperationVerdict {
  /** What the request says about the caller (bypass token, key, principal, address), read once. */
  base: Operation;
  /** The refusal that applies to the whole operation, if any root field is refused. */
  refusal: RefuseDecision | null;
  /** Each root field decided once per execution (a decision is also a count). */
  decided: Map<string, Decided>;
}

/** One verdict per GraphQL execution (keyed by its context object). */
const verdicts = new WeakMap<object, OperationVerdict>();

function requestOf(ctx: Record<string, any> | undefined): PlatformRequest | undefined {
  return ctx?.req ?? ctx?.request;
}

function rawResponseOf(
  ctx: Record<string, any> | undefined,
): { setHeader?: (k: string, v: string) => unknown; headersSent?: boolean; once?: Function } | undefined {
  const res = ctx?.res ?? ctx?.reply ?? requestOf(ctx)?.['res' as never];
  return res?.raw ?? res;
}

/** The caller's side of the operation, from the HTTP request under the GraphQL execution. */
function baseOperation(options: ResolvedModuleOptions, req: PlatformRequest | undefined): Operation {
  if (!req?.headers) return { surface: 'graphql', name: '' };
  const facts = {
    method: req.method,
    path: req.url,
    headers: req.headers,
    ip: req.ip,
    principal: options.principal?.(req),
  };
  const translate = {
    bypassHeader: options.engine.options.bypassHeader,
    bypassCookie: options.engine.options.bypassCookie,
  };
  try {
    return operationFromHttp(facts, translate);
  } catch (error) {
    // A malformed percent-encoded bypass cookie is no token at all, not a server error.
    if (!(error instanceof URIError)) throw error;
    return operationFromHttp({ ...facts, headers: { ...req.headers, cookie: undefined } }, translate);
  }
}

function fieldOperation(
  base: Operation,
  type: ResolveInfo['operation']['operation'],
  field: string,
  policy: RoutePolicy | undefined,
): Operation {
  const op: Operation = { ...base, surface: 'graphql', name: `${type} ${field}`, operationType: type };
  delete op.method;
  delete op.path;
  const annotation = annotationOf(policy, type !== 'mutation');
  if (annotation) op.annotation = annotation;
  return op;
}

function refusalError(decision: RefuseDecision): Error {
  return graphqlError(decision.problem.detail, {
    code: 'READ_ONLY_MODE',
    windowId: decision.windowId,
    endsAt: decision.endsAt,
    retryAfter: decision.retryAfter,
    http: { status: decision.status, headers: httpHeaders({ 'retry-after': String(decision.retryAfter) }) },
  });
}

/** A `QuiesceError` (bad key, idempotency conflict) as a GraphQL error with its code and status. */
function quiesceGraphqlError(error: QuiesceError): Error {
  return graphqlError(error.message, {
    code: error.code,
    ...(error.field ? { field: error.field } : {}),
    http: { status: statusForCode(error.code) },
  });
}

/**
 * The guard in a GraphQL execution context. A mutation is refused whole: at its first guarded
 * root field, every root field it selects is decided, and if any is refused, every guarded root
 * field throws the same refusal before its resolver runs. Queries and subscriptions pass unless a
 * decorator says they write.
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
  const keyed = ctx !== null && typeof ctx === 'object';
  let verdict = keyed ? verdicts.get(ctx) : undefined;
  if (!verdict) {
    verdict = { base: baseOperation(options, requestOf(ctx)), refusal: null, decided: new Map() };
    const fields = type === 'mutation' ? rootFields(info) : [info.fieldName];
    for (const field of fields) {
      if (verdict.decided.has(field)) continue;
      const op = fieldOperation(
        verdict.base,
        type,
        field,
        field === info.fieldName ? own : options.graphqlPolicies.get(field),
      );
      const decision = engine.decide(op);
      verdict.decided.set(field, { op, decision });
      if (decision.outcome === 'refuse') {
        verdict.refusal = decision;
        break;
      }
    }
    if (keyed) verdicts.set(ctx, verdict);
  }
  const res = rawResponseOf(ctx);
  if (verdict.refusal) {
    if (res?.setHeader && !res.headersSent) res.setHeader('retry-after', String(verdict.refusal.retryAfter));
    throw refusalError(verdict.refusal);
  }

  let decided = verdict.decided.get(info.fieldName);
  if (!decided) {
    const op = fieldOperation(verdict.base, type, info.fieldName, own);
    decided = { op, decision: engine.decide(op) };
    verdict.decided.set(info.fieldName, decided);
  }
  const { op, decision } = decided;
  switch (decision.outcome) {
    case 'refuse':
      throw refusalError(decision);
    case 'proceed':
      // An allowed write runs during a window anyway: it does not hold the drain.
      if (decision.classification === 'write' && decision.policy !== 'allow' && res?.once) {
        const handle = engine.track(op);
        res.once('close', () => handle.done());
      }
      return true;
    case 'discard':
      throw graphqlError(
        `${op.name} was discarded: writes are paused for maintenance and this one is not kept.`,
        {
          code: 'WRITE_DROPPED',
          windowId: decision.windowId,
          endsAt: decision.endsAt,
        },
      );
    case 'enqueue':
      return enqueue(engine, { ...op }, decision, context, own);
  }
}

async function enqueue(
  engine: QuiesceEngine,
  op: Operation,
  decision: EnqueueDecision,
  context: ExecutionContext,
  policy: RoutePolicy | undefined,
): Promise<boolean> {
  // What is replayed is what a durable queue can store: the arguments as JSON (as in @quiesce/graphql-yoga).
  const args = JSON.parse(JSON.stringify(context.getArgByIndex<Record<string, unknown>>(1) ?? {})) as unknown;
  const source = policy?.queue?.idempotencyKey;
  let queued: Awaited<ReturnType<QuiesceEngine['enqueue']>>;
  try {
    const key = resolveIdempotencyKey(
      typeof source === 'function' ? undefined : source,
      op.idempotencyKey,
      op.name,
      typeof source === 'function' ? { value: source(requestOf(context.getArgByIndex(2))) } : undefined,
    );
    if (key === undefined) delete op.idempotencyKey;
    else op.idempotencyKey = key;
    queued = await engine.enqueue(op, args, { name: policy?.queue?.name ?? op.name });
  } catch (error) {
    if (isQuiesceError(error)) throw quiesceGraphqlError(error);
    throw error;
  }
  const { intent, statusUrl, created } = queued;
  throw graphqlError(
    `${op.name} was queued as write intent ${intent.id}: writes are paused for maintenance and it will be applied when they resume.`,
    {
      code: 'WRITE_QUEUED',
      intentId: intent.id,
      idempotencyKey: intent.idempotencyKey,
      statusUrl,
      created,
      windowId: decision.windowId,
      endsAt: decision.endsAt,
      retryAfter: decision.retryAfter,
      http: { status: 202 },
    },
  );
}
