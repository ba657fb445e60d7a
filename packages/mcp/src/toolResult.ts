import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { AgentNotice, AgentRefusal } from '@quiesce/core';

/**
 * An agent refusal as an MCP tool result. `refused` and `dropped` are `isError: true` (the client
 * hands the text to the model so it can adapt); `queued` is a normal result: the call was accepted.
 * `structuredContent` carries every field but the text, which is the `content`.
 */
export function agentToolResult(refusal: AgentRefusal): CallToolResult {
  const { text, ...fields } = refusal;
  return {
    content: [{ type: 'text', text }],
    structuredContent: { ...fields },
    ...(refusal.outcome === 'queued' ? {} : { isError: true }),
  };
}

/** A call that was not run because its input to quiesce was wrong (the field is named). */
export function invalidCallResult(code: string, field: string, text: string): CallToolResult {
  return {
    content: [{ type: 'text', text }],
    structuredContent: { code, field, message: text },
    isError: true,
  };
}

/**
 * On the client side (an agent runtime): the quiesce notice of a tool result, or null when the
 * result is not one (the tool ran, or failed for another reason).
 */
export function agentNoticeOf(result: unknown): AgentNotice | null {
  const s = (result as { structuredContent?: unknown } | null | undefined)?.structuredContent;
  if (!s || typeof s !== 'object' || (s as { code?: unknown }).code !== 'READ_ONLY_MODE') return null;
  return s as AgentNotice;
}
