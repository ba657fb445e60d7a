import type { IntentContext } from '@quiesce/core';

/** `_meta` key of a `tools/call` request carrying the client's idempotency key for a queued call. */
export const IDEMPOTENCY_KEY_META = 'dev.quiesce/idempotency-key';
/** `_meta` key set on the `extra` a tool handler receives when quiesce replays a queued call. */
export const REPLAY_META = 'dev.quiesce/replay';

export interface ReplayInfo {
  intentId: string;
  /** Key the storage write should use (a unique constraint, an upsert) so a replay applies once in effect. */
  idempotencyKey: string;
  attempt: number;
}

/**
 * In a tool handler: the queued call being replayed after a window, or null for a live call.
 * Replays are at least once; use `idempotencyKey` in the write so a second attempt changes nothing.
 */
export function replayOf(
  extra: { _meta?: Record<string, unknown> | undefined } | undefined,
): ReplayInfo | null {
  const info = extra?._meta?.[REPLAY_META];
  if (!info || typeof info !== 'object') return null;
  return info as ReplayInfo;
}

/**
 * The `extra` a handler gets at replay: no client is connected, so notifications go nowhere and a
 * request to the client (sampling, elicitation) fails; the intent is in `_meta` (see `replayOf`).
 */
export function replayExtra(ctx: IntentContext): Record<string, unknown> {
  const info: ReplayInfo = {
    intentId: ctx.intent.id,
    idempotencyKey: ctx.idempotencyKey,
    attempt: ctx.attempt,
  };
  return {
    signal: ctx.signal,
    requestId: `quiesce-replay:${ctx.intent.id}:${ctx.attempt}`,
    _meta: { [REPLAY_META]: info },
    sendNotification: async () => {},
    sendRequest: async () => {
      throw new Error('no MCP client is connected while quiesce replays a queued tool call');
    },
  };
}
