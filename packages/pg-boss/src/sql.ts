import { type IntentStatus, QuiesceError } from '@quiesce/core';

export const INTENT_STATUSES: readonly IntentStatus[] = ['queued', 'replaying', 'applied', 'failed'];

/** SQL predicate of intents that still have to be replayed. */
export const pendingIntents = "status IN ('queued', 'replaying')";

/** A schema name goes into SQL text, so only plain lower-case identifiers are accepted. */
export function assertIdentifier(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(value)) {
    throw new QuiesceError(
      'INVALID_INPUT',
      `${field}: must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)`,
      {
        field,
      },
    );
  }
  return value;
}

export function assertPositiveInt(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new QuiesceError('INVALID_INPUT', `${field}: must be a positive integer`, { field });
  }
  return value;
}

export const intentTable = (schema: string) => `${schema}.quiesce_intent`;
export const pausedScheduleTable = (schema: string) => `${schema}.quiesce_paused_schedule`;
