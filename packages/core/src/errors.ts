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
  | 'WINDOW_CONFLICT'
  | 'NO_ACTIVE_WINDOW'
  | 'VERSION_CONFLICT'
  | 'IDEMPOTENCY_CONFLICT'
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
  WINDOW_CONFLICT: 409,
  NO_ACTIVE_WINDOW: 409,
  VERSION_CONFLICT: 409,
  IDEMPOTENCY_CONFLICT: 422,
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
  WINDOW_CONFLICT: 'Conflicts with the current window',
  NO_ACTIVE_WINDOW: 'No active window',
  VERSION_CONFLICT: 'State changed concurrently',
  IDEMPOTENCY_CONFLICT: 'Idempotency key reused with a different payload',
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
