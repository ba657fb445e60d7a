/**
 * The one error class of quiesce. Every adapter maps a `QuiesceError` to HTTP through
 * {@link statusForCode}; none invents a status of its own.
 */
export type QuiesceErrorCode =
  | 'READ_ONLY_MODE'
  | 'INVALID_INPUT'
  | 'IDEMPOTENCY_KEY_REQUIRED'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'WINDOW_CONFLICT'
  | 'NO_ACTIVE_WINDOW'
  | 'VERSION_CONFLICT'
  | 'IDEMPOTENCY_CONFLICT'
  | 'IDEMPOTENCY_IN_PROGRESS'
  | 'QUEUE_UNAVAILABLE'
  | 'PAYLOAD_TOO_LARGE'
  | 'STORE_READ_ONLY'
  | 'STORE_UNAVAILABLE'
  | 'INTERNAL';

const STATUS: Record<QuiesceErrorCode, number> = {
  READ_ONLY_MODE: 503,
  INVALID_INPUT: 400,
  IDEMPOTENCY_KEY_REQUIRED: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  WINDOW_CONFLICT: 409,
  NO_ACTIVE_WINDOW: 409,
  VERSION_CONFLICT: 409,
  IDEMPOTENCY_CONFLICT: 422,
  IDEMPOTENCY_IN_PROGRESS: 409,
  QUEUE_UNAVAILABLE: 503,
  PAYLOAD_TOO_LARGE: 413,
  STORE_READ_ONLY: 409,
  STORE_UNAVAILABLE: 503,
  INTERNAL: 500,
};

const TITLES: Record<QuiesceErrorCode, string> = {
  READ_ONLY_MODE: 'Service is in read-only mode',
  INVALID_INPUT: 'Invalid input',
  IDEMPOTENCY_KEY_REQUIRED: 'Idempotency key required',
  UNAUTHORIZED: 'Authentication required',
  FORBIDDEN: 'Forbidden',
  NOT_FOUND: 'Not found',
  METHOD_NOT_ALLOWED: 'Method not allowed',
  WINDOW_CONFLICT: 'Conflicts with the current window',
  NO_ACTIVE_WINDOW: 'No active window',
  VERSION_CONFLICT: 'State changed concurrently',
  IDEMPOTENCY_CONFLICT: 'Idempotency key reused with a different payload',
  IDEMPOTENCY_IN_PROGRESS: 'A request with this idempotency key is still being processed',
  QUEUE_UNAVAILABLE: 'Intent queue unavailable',
  PAYLOAD_TOO_LARGE: 'Payload too large',
  STORE_READ_ONLY: 'Store is read-only',
  STORE_UNAVAILABLE: 'State store unavailable',
  INTERNAL: 'Internal error',
};

/** HTTP status for an error code: the single table every adapter uses. */
export function statusForCode(code: QuiesceErrorCode): number {
  return STATUS[code];
}

/** Human title for an error code (the RFC 9457 `title`). */
export function titleForCode(code: QuiesceErrorCode): string {
  return TITLES[code];
}

/** Retry-After (seconds) of a 503 error that carries no `details.retryAfter` of its own. */
export const DEFAULT_ERROR_RETRY_AFTER_SECONDS = 30;

/**
 * Headers an error response carries besides its body: a `503` (store or queue unavailable) says when
 * to come back (`Retry-After`, from `details.retryAfter` or {@link DEFAULT_ERROR_RETRY_AFTER_SECONDS}).
 */
export function headersForError(error: QuiesceError): Record<string, string> {
  if (statusForCode(error.code) !== 503) return {};
  const given = error.details?.retryAfter;
  const seconds =
    typeof given === 'number' && Number.isInteger(given) && given >= 0
      ? given
      : DEFAULT_ERROR_RETRY_AFTER_SECONDS;
  return { 'retry-after': String(seconds) };
}

export interface QuiesceErrorOptions {
  /** The input field that failed validation, as a dotted path (`window.endsAt`). */
  field?: string;
  cause?: unknown;
  /** Extra members for the problem body. */
  details?: Record<string, unknown>;
}

export class QuiesceError extends Error {
  override readonly name = 'QuiesceError';
  readonly code: QuiesceErrorCode;
  readonly field: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: QuiesceErrorCode, message: string, options: QuiesceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
    this.details = options.details;
  }

  get status(): number {
    return statusForCode(this.code);
  }
}

export function isQuiesceError(value: unknown): value is QuiesceError {
  return value instanceof QuiesceError || (value instanceof Error && value.name === 'QuiesceError');
}
