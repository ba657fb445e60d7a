/**
 * Exit codes scripts can rely on. Documented in the README; never renumber.
 */
export const EXIT = {
  ok: 0,
  /** Something unexpected: a bug, or the app answered 5xx. */
  failure: 1,
  /** Bad usage or input: unknown command or flag, bad duration, time or URL, or the app said INVALID_INPUT. */
  usage: 2,
  /** The app or the store could not be reached. */
  unreachable: 3,
  /** The admin token is missing or was refused (401/403). */
  auth: 4,
  /** The state does not allow it: a window is already open, there is none to extend or end, not found. */
  conflict: 5,
  /** `inventory --fail-on-unclassified` found write surfaces nobody decided a policy for. */
  unclassified: 6,
  /** The window froze only because the drain deadline passed or instances were lost: stragglers were named. */
  stragglers: 7,
  /** `--timeout` passed before the window reached the phase the command waits for. */
  timeout: 8,
  /**
   * `--store` names a store that does not exist (no such file, schema or key): a typo would
   * otherwise freeze nobody. Pass `--create` to start a new store there.
   */
  storeMissing: 9,
  /** `begin` froze, but no live app instance is registered in the store: nothing confirmed the freeze. */
  noInstances: 10,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports as one line on stderr and turns into an exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: ExitCode;
  /** The flag, argument or field that failed, when there is one. */
  readonly field: string | undefined;

  constructor(exitCode: ExitCode, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = exitCode;
    this.field = options.field;
  }
}

/** Exit code for a quiesce error code (from the admin API's problem body or a local engine). */
export function exitForCode(code: string | undefined, status?: number): ExitCode {
  switch (code) {
    case 'INVALID_INPUT':
    case 'IDEMPOTENCY_KEY_REQUIRED':
    case 'PAYLOAD_TOO_LARGE':
      return EXIT.usage;
    case 'UNAUTHORIZED':
    case 'FORBIDDEN':
      return EXIT.auth;
    case 'WINDOW_CONFLICT':
    case 'NO_ACTIVE_WINDOW':
    case 'VERSION_CONFLICT':
    case 'NOT_FOUND':
    case 'STORE_READ_ONLY':
      return EXIT.conflict;
    case 'STORE_UNAVAILABLE':
    case 'QUEUE_UNAVAILABLE':
      return EXIT.unreachable;
    case 'IDEMPOTENCY_CONFLICT':
      return EXIT.usage;
    case 'METHOD_NOT_ALLOWED':
      return EXIT.usage;
    case 'IDEMPOTENCY_IN_PROGRESS':
      return EXIT.conflict;
  }
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 400 || status === 413 || status === 422) return EXIT.usage;
  if (status === 404 || status === 409) return EXIT.conflict;
  return EXIT.failure;
}
