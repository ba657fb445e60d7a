export {
  type GuardedToolInfo,
  type GuardMcpServerOptions,
  guardedTools,
  guardMcpServer,
  type McpIntentPayload,
  type ToolCallExtra,
} from './guardMcpServer.js';
export { mcpEndpointRule } from './mcpEndpointRule.js';
export { IDEMPOTENCY_KEY_META, REPLAY_META, type ReplayInfo, replayOf } from './replayContext.js';
export type { ClassifiedBy, ToolHints, ToolOverride } from './toolClassification.js';
export { agentNoticeOf, agentToolResult } from './toolResult.js';
