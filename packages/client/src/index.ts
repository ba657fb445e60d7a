export { type QueuedIntent, type Refusal, readQueued, readRefusal } from './quiesceAnswer.js';
export { type GiveUpReason, isQuiesceRetryError, QuiesceRetryError } from './quiesceRetryError.js';
export {
  decideRetry,
  type HeadersLike,
  isRepeatable,
  parseRetryAfter,
  type ResolvedRetryPolicy,
  type RetryDecision,
  type RetryHistory,
  type RetryInput,
  type RetryPolicyOptions,
  resolveRetryPolicy,
} from './retryPolicy.js';
export {
  type QuiesceEventsOption,
  type QuiesceRetryHooks,
  type QuiesceRetryOptions,
  type RetryEvent,
  withQuiesceRetry,
} from './withQuiesceRetry.js';
