import type { Refusal } from './quiesceAnswer.js';

/**
 * Why a refused write was given up:
 * - `window-outlasts-budget`: the window's expected end is later than the budget allows, so no
 *   attempt was spent waiting for it;
 * - `budget-exhausted`: the budget's milliseconds ran out with the write still refused;
 * - `attempts-exhausted`: the budget's attempts ran out with the write still refused.
 */
export type GiveUpReason = 'window-outlasts-budget' | 'budget-exhausted' | 'attempts-exhausted';

/** A write quiesce refused and the client stopped waiting for: it was not applied. */
export class QuiesceRetryError extends Error {
  override readonly name = 'QuiesceRetryError';
  readonly code = 'READ_ONLY_MODE' as const;
  readonly reason: GiveUpReason;
  /** The window's message, as the server wrote it. */
  readonly detail: string;
  readonly windowId: string | null;
  /** The window's expected end (ISO 8601), `null` when unknown. */
  readonly endsAt: string | null;
  /** The HTTP status of the last refusal. */
  readonly status: number | undefined;
  /** The last refusal as the server sent it. */
  readonly refusal: Refusal;
  /** Requests made, the first included. */
  readonly attempts: number;
  /** Milliseconds since the first request. */
  readonly elapsedMs: number;

  constructor(
    reason: GiveUpReason,
    refusal: Refusal,
    facts: { status: number | undefined; attempts: number; elapsedMs: number },
  ) {
    const until = refusal.endsAt ? ` Expected back by ${refusal.endsAt}.` : '';
    const why =
      reason === 'window-outlasts-budget'
        ? 'the window ends later than the retry budget allows'
        : reason === 'budget-exhausted'
          ? `the retry budget ran out after ${Math.round(facts.elapsedMs)} ms`
          : `still refused after ${facts.attempts} attempts`;
    super(`${refusal.message}${until} (not applied: ${why})`);
    this.reason = reason;
    this.detail = refusal.message;
    this.windowId = refusal.windowId;
    this.endsAt = refusal.endsAt;
    this.status = facts.status;
    this.refusal = refusal;
    this.attempts = facts.attempts;
    this.elapsedMs = facts.elapsedMs;
  }
}

export function isQuiesceRetryError(error: unknown): error is QuiesceRetryError {
  return error instanceof QuiesceRetryError || (error as { name?: unknown })?.name === 'QuiesceRetryError';
}
