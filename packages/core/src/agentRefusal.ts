import type { DiscardDecision, EnqueueDecision, RefuseDecision } from './operation.js';

/**
 * What an agent (a model calling a tool) is told when a write does not run now. One source for
 * `engine.guardTool`, `@quiesce/mcp` and any other agent surface, so every agent reads the same
 * fields and the same words.
 */
export type AgentOutcome = 'refused' | 'queued' | 'dropped';

/** The structured part: what an agent runtime (or a model reading JSON) acts on. */
export interface AgentNotice {
  code: 'READ_ONLY_MODE';
  /** `refused`: not run, retry later; `queued`: kept and applied after the window; `dropped`: not run, never applied. */
  outcome: AgentOutcome;
  /** The operator's message for the window. */
  message: string;
  windowId: string;
  /** The window's expected end (ISO 8601), or null when unknown. */
  windowEndsAt: string | null;
  /** Seconds to wait before trying again (for `queued`: before checking whether it was applied). */
  retryAfterSeconds: number;
  /** Who to contact about the window, when the operator gave it. */
  contact?: string;
  /** Only for `queued`: the durable intent that will be applied after the window. */
  intentId?: string;
  idempotencyKey?: string;
  statusUrl?: string;
}

/** The notice with its model-readable sentence(s). */
export interface AgentRefusal extends AgentNotice {
  /** Plain text for a model: what is happening, until when, what to do. */
  text: string;
}

export interface AgentRefusalInput {
  /** The engine's decision for the call (anything but `proceed`). */
  decision: RefuseDecision | EnqueueDecision | DiscardDecision;
  /** The window's message (`engine.window.message`); a generic sentence when absent. */
  message?: string | null | undefined;
  contact?: string | null | undefined;
  /** The tool's name, to say which action did not run. */
  tool?: string;
  /**
   * The intent an `enqueue` decision was kept as. Without it an `enqueue` decision is rendered as
   * `refused`: nothing was kept, so the agent must not be told it will be applied.
   */
  intent?: { id: string; idempotencyKey: string; statusUrl?: string | undefined } | undefined;
  /** Now in ms, for the seconds left of a `discard` decision (which carries no Retry-After). */
  now: number;
  /** Used when the window's end is unknown or past, for a `discard` decision. @default 300 */
  defaultRetryAfterSeconds?: number;
}

const GENERIC_MESSAGE = 'The service is in read-only mode for maintenance.';

function secondsLeft(endsAt: string | null, now: number, fallback: number): number {
  const end = endsAt === null ? Number.NaN : Date.parse(endsAt);
  if (Number.isNaN(end) || end <= now) return fallback;
  return Math.ceil((end - now) / 1000);
}

function until(endsAt: string | null): string {
  return endsAt === null ? 'an end time the operator has not announced' : endsAt;
}

/** Render a non-proceed decision into what an agent is told: the fields and the text. */
export function agentRefusal(input: AgentRefusalInput): AgentRefusal {
  const d = input.decision;
  const outcome: AgentOutcome =
    d.outcome === 'discard' ? 'dropped' : d.outcome === 'enqueue' && input.intent ? 'queued' : 'refused';
  const retryAfterSeconds =
    d.outcome === 'discard'
      ? secondsLeft(d.endsAt, input.now, input.defaultRetryAfterSeconds ?? 300)
      : d.retryAfter;
  const message = input.message?.trim() || GENERIC_MESSAGE;
  const notice: AgentNotice = {
    code: 'READ_ONLY_MODE',
    outcome,
    message,
    windowId: d.windowId,
    windowEndsAt: d.endsAt,
    retryAfterSeconds,
    ...(input.contact ? { contact: input.contact } : {}),
    ...(outcome === 'queued'
      ? {
          intentId: input.intent!.id,
          idempotencyKey: input.intent!.idempotencyKey,
          ...(input.intent!.statusUrl ? { statusUrl: input.intent!.statusUrl } : {}),
        }
      : {}),
  };
  return { ...notice, text: agentRefusalText(notice, input.tool) };
}

/** The model-readable text of a notice: what happened, until when, what to do next. */
export function agentRefusalText(notice: AgentNotice, tool?: string): string {
  const what = tool ? `The action "${tool}"` : 'This action';
  const window = `The service is in read-only mode for maintenance (window ${notice.windowId}) until ${until(notice.windowEndsAt)}. Operator's message: "${notice.message}".`;
  const contact = notice.contact ? ` Contact: ${notice.contact}.` : '';
  switch (notice.outcome) {
    case 'queued':
      return `${what} was accepted but has not run yet. ${window} It is queued as intent ${notice.intentId} (idempotency key ${notice.idempotencyKey}) and will be applied automatically once the window ends. Do not call it again; tell the user it will take effect after the maintenance.${contact}`;
    case 'dropped':
      return `${what} was not run and will not be applied: it is discarded during maintenance. ${window} Nothing was changed. If it is still needed, call it again after ${notice.retryAfterSeconds} seconds, or tell the user.${contact}`;
    default:
      return `${what} was not run: writes are paused. ${window} Nothing was changed. Retry this call after ${notice.retryAfterSeconds} seconds, or tell the user the action has to wait until the maintenance ends.${contact}`;
  }
}
