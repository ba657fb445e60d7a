import type { ClassificationRule } from '@quiesce/core';

/**
 * The engine rule that lets an MCP endpoint mounted behind a quiesce HTTP adapter through during a
 * window: every MCP message (reads included) travels as `POST <path>`, so the HTTP layer must not
 * refuse it; `guardMcpServer` decides per tool call instead. Pass it in `createQuiesce({ rules })`
 * before any broader rule. Policy `allow`: the endpoint shows in the inventory as decided, and its
 * requests are not counted as in-flight writes (each write tool call is tracked by the guard).
 * @param path the endpoint's path pattern. @default '/mcp'
 */
export function mcpEndpointRule(path = '/mcp'): ClassificationRule {
  if (typeof path !== 'string' || !path.startsWith('/'))
    throw new TypeError(`mcpEndpointRule: path must start with "/", got ${JSON.stringify(path)}`);
  return { surface: 'http', path, policy: 'allow' };
}
