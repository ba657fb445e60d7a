/**
 * A GraphQL document as far as a maintenance window cares: the operation a request executes and its
 * root fields (through fragments, aliases, `@skip`/`@include`). Structural over graphql-js's AST, so
 * `graphql` stays an optional peer. Part of `@quiesce/core/graphql` (re-exported by graphql.ts).
 */

interface NameNode {
  readonly value: string;
}
interface ValueNode {
  readonly kind: string;
  readonly value?: unknown;
  readonly name?: NameNode;
}
interface DirectiveNode {
  readonly name: NameNode;
  readonly arguments?: readonly { readonly name: NameNode; readonly value: ValueNode }[];
}
export interface SelectionNode {
  readonly kind: string;
  readonly name?: NameNode;
  readonly alias?: NameNode;
  readonly directives?: readonly DirectiveNode[];
  readonly selectionSet?: SelectionSetNode;
}
export interface SelectionSetNode {
  readonly selections: readonly SelectionNode[];
}
export interface OperationDefinitionNode {
  readonly kind: string;
  readonly operation: 'query' | 'mutation' | 'subscription';
  readonly name?: NameNode;
  readonly selectionSet: SelectionSetNode;
}
export interface DocumentNode {
  readonly definitions: readonly { readonly kind: string; readonly name?: NameNode }[];
}

/** The operation a request executes: the named one, or the only one. */
export function selectOperation(
  document: DocumentNode,
  operationName: string | null | undefined,
): OperationDefinitionNode | undefined {
  let found: OperationDefinitionNode | undefined;
  for (const def of document.definitions) {
    if (def.kind !== 'OperationDefinition') continue;
    if (operationName) {
      if (def.name?.value === operationName) return def as OperationDefinitionNode;
    } else {
      if (found) return undefined;
      found = def as OperationDefinitionNode;
    }
  }
  return found;
}

/** Fragment definitions by name: from a document, or graphql-js's `info.fragments`. */
export type FragmentLookup = (name: string) => SelectionSetNode | undefined;

export function documentFragments(document: DocumentNode): FragmentLookup {
  return (name) => {
    for (const def of document.definitions) {
      if (def.kind === 'FragmentDefinition' && def.name?.value === name) {
        return (def as unknown as { selectionSet: SelectionSetNode }).selectionSet;
      }
    }
    return undefined;
  };
}

/**
 * `@skip`/`@include` settled from literals and given variables. Anything else (a variable left to its
 * default) counts as included: deciding on a field that then does not run is safe, missing one is not.
 */
function included(node: SelectionNode, variables: Record<string, unknown> | undefined): boolean {
  if (!node.directives?.length) return true;
  for (const d of node.directives) {
    const name = d.name.value;
    if (name !== 'skip' && name !== 'include') continue;
    const arg = d.arguments?.find((a) => a.name.value === 'if')?.value;
    const value =
      arg?.kind === 'BooleanValue'
        ? arg.value
        : arg?.kind === 'Variable'
          ? variables?.[arg.name!.value]
          : undefined;
    if (typeof value !== 'boolean') continue;
    if (name === 'skip' ? value : !value) return false;
  }
  return true;
}

/**
 * Root fields of an operation as response key → field name, through inline fragments and fragment
 * spreads, honouring `@skip`/`@include`. Meta fields (`__typename`, introspection) are left out.
 */
export function rootFields(
  operation: OperationDefinitionNode,
  fragments: FragmentLookup,
  variables?: Record<string, unknown> | null,
): Map<string, string> {
  const out = new Map<string, string>();
  const vars = variables ?? undefined;
  const visited = new Set<string>();
  const walk = (set: SelectionSetNode) => {
    for (const sel of set.selections) {
      if (!included(sel, vars)) continue;
      if (sel.kind === 'Field') {
        const name = sel.name!.value;
        if (name.startsWith('__')) continue;
        const key = sel.alias?.value ?? name;
        if (!out.has(key)) out.set(key, name);
      } else if (sel.kind === 'InlineFragment' && sel.selectionSet) {
        walk(sel.selectionSet);
      } else if (sel.kind === 'FragmentSpread' && sel.name) {
        const name = sel.name.value;
        if (visited.has(name)) continue;
        visited.add(name);
        const f = fragments(name);
        if (f) walk(f);
      }
    }
  };
  walk(operation.selectionSet);
  return out;
}
