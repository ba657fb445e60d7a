import type { ExecutionContext } from '@nestjs/common';
import type { Decision, Operation, QuiesceEngine } from '@quiesce/core';
import { operationFromHttp } from '@quiesce/core/http';
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

interface OperationVerdict {
  /** The refusal that applies to the whole operation, if any root field is refused. */
  refusal: Decision | null;
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

function operationFor(
  options: ResolvedModuleOptions,
  req: PlatformRequest | undefined,
  type: ResolveInfo['operation']['operation'],
  field: string,
  policy: RoutePolicy | undefined,
): Operation {
  const base: Operation = req
    ? operationFromHttp(
        {
          method: req.method,
          path: req.url,
          headers: req.headers,
          ip: req.ip,
          principal: options.principal?.(req),
        },
        { bypassHeader: options.bypassHeader, bypassCookie: options.bypassCookie },
      )
    : { surface: 'graphql', name: '' };
  const op: Operation = { ...base, surface: 'graphql', name: `${type} ${field}`, operationType: type };
  delete op.method;
  delete op.path;
  const annotation = annotationOf(policy, type !== 'mutation');
  if (annotation) op.annotation = annotation;
  return op;
}

function refusalError(decision: Decision & { outcome: 'refuse' }): Error {
  const p = decision.problem;
  return graphqlError(p.detail, {
    code: 'READ_ONLY_MODE',
    windowId: decision.windowId,
    endsAt: decision.endsAt,
    retryAfter: decision.retryAfter,
    http: { status: decision.status, headers: httpHeaders({ 'retry-after': String(decision.retryAfter) }) },
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
  const ctx = context.getArgByIndex<Record<string, any> | undefined>(2);
  const type = info.operation.operation;
  const own = routePolicy(context.getHandler(), context.getClass());
  if (type !== 'mutation' && annotationOf(own, true)?.classification !== 'write') return true;

  const req = requestOf(ctx);
  let verdict = ctx && typeof ctx === 'object' ? verdicts.get(ctx) : undefined;
  if (!verdict) {
    verdict = { refusal: null };
    if (type === 'mutation') {
      for (const field of rootFields(info)) {
        const policy = field === info.fieldName ? own : options.graphqlPolicies.get(field);
        const d = engine.decide(operationFor(options, req, type, field, policy));
        if (d.outcome === 'refuse') {
          verdict.refusal = d;
          break;
        }
      }
    }
    if (ctx && typeof ctx === 'object') verdicts.set(ctx, verdict);
  }
  const res = rawResponseOf(ctx);
  if (verdict.refusal?.outcome === 'refuse') {
    if (res?.setHeader && !res.headersSent) res.setHeader('retry-after', String(verdict.refusal.retryAfter));
    throw refusalError(verdict.refusal);
  }

  const op = operationFor(options, req, type, info.fieldName, own);
  const decision = engine.decide(op);
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
      throw graphqlError('Not applied: this write is dropped during the maintenance window.', {
        code: 'WRITE_DROPPED',
        windowId: decision.windowId,
        endsAt: decision.endsAt,
      });
    case 'enqueue':
      return enqueue(engine, op, context, own);
  }
}

async function enqueue(
  engine: QuiesceEngine,
  op: Operation,
  context: ExecutionContext,
  policy: RoutePolicy | undefined,
): Promise<boolean> {
  const args = context.getArgByIndex<Record<string, unknown>>(1) ?? {};
  const source = policy?.queue?.idempotencyKey;
  if (source === 'header' && op.idempotencyKey === undefined) {
    throw graphqlError(`${op.name} is queued during the window and needs an Idempotency-Key header`, {
      code: 'IDEMPOTENCY_KEY_REQUIRED',
      field: 'Idempotency-Key',
    });
  }
  if (source === 'content') op.idempotencyKey = undefined;
  if (typeof source === 'function')
    op.idempotencyKey = source(requestOf(context.getArgByIndex(2))) || undefined;
  try {
    const { intent, created, statusUrl } = await engine.enqueue(
      op,
      { args },
      { name: policy?.queue?.name ?? op.name },
    );
    throw graphqlError('Accepted: this write is queued and applied after the maintenance window.', {
      code: 'WRITE_QUEUED',
      intentId: intent.id,
      idempotencyKey: intent.idempotencyKey,
      statusUrl,
      created,
    });
  } catch (error) {
    if (GraphQLError && error instanceof GraphQLError) throw error;
    const e = error as { code?: string; message?: string };
    if (e && typeof e.code === 'string') throw graphqlError(e.message ?? e.code, { code: e.code });
    throw error;
  }
}
