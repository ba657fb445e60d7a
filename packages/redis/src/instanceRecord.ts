import { type InstanceRecord, instanceRecordSchema, QuiesceError } from '@quiesce/core';

/** Validate an instance record (registry rows are untrusted input too), naming the field that failed. */
export function checkRecord(value: unknown, what: string): InstanceRecord {
  const result = instanceRecordSchema.safeParse(value);
  if (result.success) return result.data as InstanceRecord;
  const issue = result.error.issues[0];
  const field = issue?.path.length ? issue.path.join('.') : 'record';
  throw new QuiesceError('INVALID_INPUT', `${what}: ${field}: ${issue?.message ?? 'invalid'}`, {
    field,
    cause: result.error,
  });
}
