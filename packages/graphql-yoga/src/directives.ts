import type { Policy } from '@quiesce/core';
import { QuiesceError } from '@quiesce/core';
import type { GraphQLField, GraphQLInputType, GraphQLSchema } from 'graphql';

/**
 * The policy directives, as SDL to add to an SDL-first schema's type definitions. Code-first schemas
 * put the same names under a field's `extensions.directives` instead.
 */
export const quiesceDirectives = /* GraphQL */ `
"""During a read-only window this mutation runs anyway (sign-in, health, the admin surface)."""
directive @allowDuringReadOnly on FIELD_DEFINITION
"""
During a read-only window this mutation is kept as a durable write intent and replayed afterwards.
\`key\`: a dotted path into the field's arguments holding the client's idempotency key
(\`input.requestId\`); without it the Idempotency-Key header is used, else a key derived from the arguments.
"""
directive @queueDuringReadOnly(key: String) on FIELD_DEFINITION
"""During a read-only window this mutation is acknowledged and discarded (non-critical writes)."""
directive @dropDuringReadOnly on FIELD_DEFINITION
"""This query field writes: it is treated as a mutation (refused during a read-only window unless a policy says otherwise)."""
directive @writes on FIELD_DEFINITION
`;

const POLICY_DIRECTIVES = {
  allowDuringReadOnly: 'allow',
  queueDuringReadOnly: 'queue',
  dropDuringReadOnly: 'drop',
} as const satisfies Record<string, Policy>;
type PolicyDirective = keyof typeof POLICY_DIRECTIVES;
const ALL = new Set<string>([...Object.keys(POLICY_DIRECTIVES), 'writes']);
const ARGS: Record<string, readonly string[]> = { queueDuringReadOnly: ['key'] };

/** One root field that writes, as the plugin decides it. */
export interface WriteField {
  typeName: string;
  fieldName: string;
  /** Schema coordinate: `Mutation.createOrder`. */
  coordinate: string;
  operationType: 'mutation' | 'query';
  /** From the field's directive; undefined leaves the decision to the engine's rules and default (`block`). */
  policy: Policy | undefined;
  /** Dotted path into the arguments holding the idempotency key (`@queueDuringReadOnly(key:)`). */
  keyPath: readonly string[] | undefined;
}

interface FoundDirective {
  name: string;
  args: Record<string, unknown>;
}

function valueFromAst(node: any): unknown {
  switch (node?.kind) {
    case 'StringValue':
    case 'BooleanValue':
    case 'EnumValue':
      return node.value;
    case 'IntValue':
    case 'FloatValue':
      return Number(node.value);
    case 'NullValue':
      return null;
    default:
      return { unsupported: node?.kind };
  }
}

/** Quiesce directives on a field, from its SDL AST and from code-first `extensions.directives`. */
function directivesOf(field: GraphQLField<unknown, unknown>): FoundDirective[] {
  const found: FoundDirective[] = [];
  for (const d of field.astNode?.directives ?? []) {
    if (!ALL.has(d.name.value)) continue;
    const args: Record<string, unknown> = {};
    for (const a of d.arguments ?? []) args[a.name.value] = valueFromAst(a.value);
    found.push({ name: d.name.value, args });
  }
  // Conventions of graphql-tools, Pothos and Nexus: `{ name: args | args[] }` or `[{ name, args }]`.
  const ext = (field.extensions as Record<string, unknown> | undefined)?.directives;
  if (Array.isArray(ext)) {
    for (const d of ext) {
      if (d && typeof d === 'object' && ALL.has((d as any).name)) {
        found.push({ name: (d as any).name, args: ((d as any).args ?? {}) as Record<string, unknown> });
      }
    }
  } else if (ext && typeof ext === 'object') {
    for (const [name, value] of Object.entries(ext)) {
      if (!ALL.has(name)) continue;
      for (const args of Array.isArray(value) ? value : [value]) {
        found.push({ name, args: args && typeof args === 'object' ? (args as Record<string, unknown>) : {} });
      }
    }
  }
  // The same directive given both ways (a code-first schema printed and rebuilt) counts once.
  const seen = new Map<string, FoundDirective>();
  for (const d of found) seen.set(`${d.name} ${JSON.stringify(d.args)}`, d);
  return [...seen.values()];
}

// Realm-independent type tests (graphql 16 and 17 both set Symbol.toStringTag), so the plugin works
// whichever copy of graphql built the schema.
const tag = (type: any): string | undefined => type?.[Symbol.toStringTag];
const unwrapNonNull = (type: any): any => (tag(type) === 'GraphQLNonNull' ? type.ofType : type);
const isList = (type: any) => tag(type) === 'GraphQLList';
const isInputObject = (type: any) => tag(type) === 'GraphQLInputObjectType';
const isLeaf = (type: any) => tag(type) === 'GraphQLScalarType' || tag(type) === 'GraphQLEnumType';

/** Check a `key` path against the field's arguments: input objects all the way, a scalar or enum at the end. */
function checkKeyPath(field: GraphQLField<unknown, unknown>, path: string): string | null {
  const segments = path.split('.');
  if (segments.some((s) => s === '')) return `key "${path}" is not a dotted path of argument names`;
  const arg = field.args.find((a) => a.name === segments[0]);
  if (!arg) {
    const names = field.args.map((a) => a.name).join(', ') || 'none';
    return `key "${path}": the field has no argument "${segments[0]}" (arguments: ${names})`;
  }
  let type: GraphQLInputType = unwrapNonNull(arg.type);
  for (let i = 1; i < segments.length; i++) {
    if (isList(type))
      return `key "${path}": "${segments.slice(0, i).join('.')}" is a list; the key must be one value`;
    if (!isInputObject(type))
      return `key "${path}": "${segments.slice(0, i).join('.')}" is ${String(type)}, not an input object`;
    const next = (type as any).getFields()[segments[i]!];
    if (!next) return `key "${path}": input ${String(type)} has no field "${segments[i]}"`;
    type = unwrapNonNull(next.type);
  }
  if (!isLeaf(type)) return `key "${path}" ends at ${String(type)}; it must end at a scalar or enum`;
  return null;
}

export interface SchemaWrites {
  /** Root fields that write, keyed by type name then field name. */
  mutation: Map<string, WriteField>;
  writingQueries: Map<string, WriteField>;
  mutationTypeName: string | undefined;
  queryTypeName: string | undefined;
}

/**
 * Read every quiesce directive in the schema and check it means something. All problems are reported
 * at once, each naming the field, as one `INVALID_INPUT` error.
 */
export function readSchemaWrites(schema: GraphQLSchema): SchemaWrites {
  const problems: string[] = [];
  let firstField: string | undefined;
  const fail = (coordinate: string, message: string) => {
    firstField ??= coordinate;
    problems.push(`${coordinate}: ${message}`);
  };
  const mutationType = schema.getMutationType();
  const queryType = schema.getQueryType();
  const subscriptionType = schema.getSubscriptionType();
  const out: SchemaWrites = {
    mutation: new Map(),
    writingQueries: new Map(),
    mutationTypeName: mutationType?.name,
    queryTypeName: queryType?.name,
  };

  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__') || !('getFields' in type) || isInputObject(type)) continue;
    const isMutation = type === mutationType;
    const isQuery = type === queryType;
    const isSubscription = type === subscriptionType;
    for (const field of Object.values(
      (type as any).getFields() as Record<string, GraphQLField<unknown, unknown>>,
    )) {
      const coordinate = `${type.name}.${field.name}`;
      const found = directivesOf(field);
      const writes = found.some((d) => d.name === 'writes');
      const policies = found.filter(
        (d): d is FoundDirective & { name: PolicyDirective } => d.name in POLICY_DIRECTIVES,
      );

      for (const d of found) {
        const allowed = ARGS[d.name] ?? [];
        for (const a of Object.keys(d.args)) {
          if (!allowed.includes(a)) fail(coordinate, `@${d.name} has no argument "${a}"`);
        }
      }
      if (isMutation && writes)
        fail(coordinate, '@writes means nothing on a mutation field (mutations are writes already)');
      if (!isMutation && !isQuery && found.length > 0) {
        const where = isSubscription
          ? 'a subscription field'
          : 'a field that is not a root Query or Mutation field';
        fail(
          coordinate,
          `@${found[0]!.name} means nothing on ${where}; quiesce decides root mutation fields and query fields marked @writes`,
        );
        continue;
      }
      if (isQuery && policies.length > 0 && !writes) {
        fail(
          coordinate,
          `@${policies[0]!.name} on a query field means nothing without @writes (add @writes if this query writes)`,
        );
      }
      if (policies.length > 1) {
        fail(
          coordinate,
          `one policy directive per field, found ${policies.map((p) => `@${p.name}`).join(' and ')}`,
        );
      }
      const policy = policies[0];
      let keyPath: string[] | undefined;
      if (
        policy?.name === 'queueDuringReadOnly' &&
        policy.args.key !== undefined &&
        policy.args.key !== null
      ) {
        const key = policy.args.key;
        if (typeof key !== 'string')
          fail(coordinate, `@queueDuringReadOnly(key:) must be a string, got ${JSON.stringify(key)}`);
        else {
          const problem = checkKeyPath(field, key);
          if (problem) fail(coordinate, `@queueDuringReadOnly ${problem}`);
          else keyPath = key.split('.');
        }
      }
      if (!isMutation && !(isQuery && writes)) continue;
      const entry: WriteField = {
        typeName: type.name,
        fieldName: field.name,
        coordinate,
        operationType: isMutation ? 'mutation' : 'query',
        policy: policy ? POLICY_DIRECTIVES[policy.name] : undefined,
        keyPath,
      };
      (isMutation ? out.mutation : out.writingQueries).set(field.name, entry);
    }
  }
  if (problems.length > 0) {
    throw new QuiesceError(
      'INVALID_INPUT',
      `@quiesce/graphql-yoga: invalid directive use in the schema:\n  - ${problems.join('\n  - ')}`,
      { field: firstField, details: { problems } },
    );
  }
  return out;
}
