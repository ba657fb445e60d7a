import type { DocumentNode, OperationDefinitionNode, SelectionSetNode } from 'graphql';

/** The operation a request executes: the named one, or the only one. */
export function selectOperation(
  document: DocumentNode,
  operationName: string | null | undefined,
): OperationDefinitionNode | undefined {
  let found: OperationDefinitionNode | undefined;
  for (const def of document.definitions) {
    if (def.kind !== 'OperationDefinition') continue;
    if (operationName) {
      if (def.name?.value === operationName) return def;
    } else {
      if (found) return undefined;
      found = def;
    }
  }
  return found;
}

/**
 * `@skip`/`@include` settled from literals and given variables. Anything else (a variable left to its
 * default) counts as included: deciding on a field that then does not run is safe, missing one is not.
 */
function included(
  node: { directives?: readonly any[] | undefined },
  variables: Record<string, unknown> | undefined,
) {
  if (!node.directives?.length) return true;
  for (const d of node.directives) {
    const name = d.name.value;
    if (name !== 'skip' && name !== 'include') continue;
    const arg = d.arguments?.find((a: any) => a.name.value === 'if')?.value;
    const value =
      arg?.kind === 'BooleanValue'
        ? arg.value
        : arg?.kind === 'Variable'
          ? variables?.[arg.name.value]
          : undefined;
    if (typeof value !== 'boolean') continue;
    if (name === 'skip' ? value : !value) return false;
  }
  return true;
}

/**
 * Root fields of the operation as response key → field name, through inline fragments and fragment
 * spreads. Meta fields (`__typename`, introspection) are left out.
 */
export function rootFields(
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown> | undefined | null,
): Map<string, string> {
  const out = new Map<string, string>();
  const vars = variables ?? undefined;
  const visited = new Set<string>();
  const walk = (set: SelectionSetNode) => {
    for (const sel of set.selections) {
      if (!included(sel, vars)) continue;
      if (sel.kind === 'Field') {
        const name = sel.name.value;
        if (name.startsWith('__')) continue;
        const key = sel.alias?.value ?? name;
        if (!out.has(key)) out.set(key, name);
      } else if (sel.kind === 'InlineFragment') {
        walk(sel.selectionSet);
      } else if (sel.kind === 'FragmentSpread') {
        const name = sel.name.value;
        if (visited.has(name)) continue;
        visited.add(name);
        for (const def of document.definitions) {
          if (def.kind === 'FragmentDefinition' && def.name.value === name) walk(def.selectionSet);
        }
      }
    }
  };
  walk(operation.selectionSet);
  return out;
}
