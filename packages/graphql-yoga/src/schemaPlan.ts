import type { QuiesceEngine } from '@quiesce/core';
import type { GraphqlAnswer, GraphqlFieldPolicy, GraphqlVerdict } from '@quiesce/core/graphql';
import type { GraphQLFieldResolver, GraphQLSchema } from 'graphql';
import { createGraphQLError } from 'graphql-yoga';
import { readSchemaWrites, type WriteField } from './directives.js';

/** Root field name → what its directives say, by operation type. */
export type Policies = Record<'mutation' | 'query', Map<string, GraphqlFieldPolicy>>;

/** A GraphQL error that answers rather than reports a fault: no stack trace (most of a refusal's cost). */
export function toError(answer: GraphqlAnswer) {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return createGraphQLError(answer.message, { extensions: answer.extensions });
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** graphql-js's default resolver, for root fields without their own. */
const defaultResolve: GraphQLFieldResolver<any, any> = (source, args, context, info) => {
  if (source === null || (typeof source !== 'object' && typeof source !== 'function')) return undefined;
  const value = source[info.fieldName];
  return typeof value === 'function' ? value.call(source, args, context, info) : value;
};

/**
 * Per schema, once: the policies its directives declare (reported to the inventory), and its root
 * resolvers wrapped so a field the verdict stops answers its stop instead of running.
 */
export function schemaPlanner(
  engine: QuiesceEngine,
  o: { requireIdempotencyKey: boolean; intentNameOf: (field: WriteField) => string },
  verdicts: WeakMap<object, GraphqlVerdict>,
): (schema: GraphQLSchema) => Policies {
  const { requireIdempotencyKey, intentNameOf } = o;
  const plans = new WeakMap<GraphQLSchema, Policies>();
  return function planFor(schema: GraphQLSchema): Policies {
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
  };
}
