import type { Annotation, Classification, Operation, Policy, QuiesceEngine } from '@quiesce/core';
import { QuiesceError } from '@quiesce/core';

/** A per-tool decision: `'read'`, a write policy, or both fields. */
export type ToolOverride = 'read' | Policy | { classification?: Classification; policy?: Policy };

/** Where a tool's classification came from, as the inventory shows it. */
export type ClassifiedBy = 'override' | 'rule' | 'annotation' | 'default';

/** MCP tool annotations quiesce reads (the SDK's `ToolAnnotations`, structurally). */
export interface ToolHints {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
  [hint: string]: unknown;
}

export interface ToolClassification {
  readonly operation: Operation;
  readonly classification: Classification;
  readonly policy: Policy;
  readonly by: ClassifiedBy;
}

const POLICIES: readonly Policy[] = ['block', 'queue', 'drop', 'allow'];

function overrideAnnotation(tool: string, o: ToolOverride): Annotation {
  if (o === 'read') return { classification: 'read' };
  if (typeof o === 'string') {
    if (!POLICIES.includes(o))
      throw new QuiesceError(
        'INVALID_INPUT',
        `tools.${tool}: must be 'read', 'block', 'queue', 'drop' or 'allow', got "${o}"`,
        { field: `tools.${tool}` },
      );
    return { classification: 'write', policy: o };
  }
  if (o === null || typeof o !== 'object' || (o.classification === undefined && o.policy === undefined))
    throw new QuiesceError('INVALID_INPUT', `tools.${tool}: give classification or policy`, {
      field: `tools.${tool}`,
    });
  if (o.classification !== undefined && o.classification !== 'read' && o.classification !== 'write')
    throw new QuiesceError('INVALID_INPUT', `tools.${tool}.classification: must be 'read' or 'write'`, {
      field: `tools.${tool}.classification`,
    });
  if (o.policy !== undefined && !POLICIES.includes(o.policy))
    throw new QuiesceError('INVALID_INPUT', `tools.${tool}.policy: must be block, queue, drop or allow`, {
      field: `tools.${tool}.policy`,
    });
  return o.classification === 'read'
    ? { classification: 'read' }
    : { classification: 'write', policy: o.policy ?? 'block' };
}

/**
 * Classify one MCP tool. Order: the per-tool override given to `guardMcpServer`, then the engine's
 * rules (`surface: 'tool'`, name `tool <name>`), then `readOnlyHint: true` (a read), then the
 * default: a write that is blocked. An operator's rule beats the tool author's hint, because MCP
 * annotations are hints from whoever wrote the tool.
 */
export function classifyTool(
  engine: QuiesceEngine,
  tool: string,
  hints: ToolHints | undefined,
  override: ToolOverride | undefined,
): ToolClassification {
  const name = `tool ${tool}`;
  if (override !== undefined) {
    const annotation = overrideAnnotation(tool, override);
    const operation: Operation = { surface: 'tool', name, annotation };
    const c = engine.classify(operation);
    return { operation, classification: c.classification, policy: c.policy, by: 'override' };
  }
  const plain: Operation = { surface: 'tool', name };
  const byRule = engine.classify(plain);
  if (byRule.explicit)
    return { operation: plain, classification: byRule.classification, policy: byRule.policy, by: 'rule' };
  if (hints?.readOnlyHint === true) {
    const operation: Operation = { surface: 'tool', name, annotation: { classification: 'read' } };
    return { operation, classification: 'read', policy: 'allow', by: 'annotation' };
  }
  return { operation: plain, classification: byRule.classification, policy: byRule.policy, by: 'default' };
}
