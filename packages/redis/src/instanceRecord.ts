import { type InstanceRecord, QuiesceError } from '@quiesce/core';

/** Validate an instance record (registry rows are untrusted input too). */
export function checkRecord(value: unknown, what: string): InstanceRecord {
  const fail = (field: string, message: string): never => {
    throw new QuiesceError('INVALID_INPUT', `${what}: ${field}: ${message}`, { field });
  };
  if (value === null || typeof value !== 'object') return fail('record', 'must be an object');
  const r = value as Record<string, unknown>;
  if (typeof r.id !== 'string' || r.id.length === 0) fail('id', 'must be a non-empty string');
  if (typeof r.startedAt !== 'string') fail('startedAt', 'must be a string');
  for (const field of ['lastSeen', 'ackedVersion', 'inFlight'] as const) {
    if (typeof r[field] !== 'number' || !Number.isFinite(r[field])) fail(field, 'must be a number');
  }
  if (r.host !== undefined && typeof r.host !== 'string') fail('host', 'must be a string');
  if (r.pid !== undefined && typeof r.pid !== 'number') fail('pid', 'must be a number');
  if (r.oldestOperation !== undefined && typeof r.oldestOperation !== 'string') {
    fail('oldestOperation', 'must be a string');
  }
  if (r.oldestSince !== undefined && typeof r.oldestSince !== 'number') fail('oldestSince', 'must be a number');
  return { ...(r as unknown as InstanceRecord) };
}
