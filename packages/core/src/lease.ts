import type { Timing } from './options.js';
import type { InstanceRecord } from './store.js';

/** Lease of a registry record: until when the instance may still start a write (its own clock). */
export function leaseOf(r: InstanceRecord, t: Pick<Timing, 'leaseTtlMs'>): number {
  return r.leaseUntil ?? r.lastSeen + t.leaseTtlMs;
}

/** True once an instance counts as stopped: its lease expired, plus the clock-skew margin. */
export function expired(
  r: InstanceRecord,
  now: number,
  t: Pick<Timing, 'leaseTtlMs' | 'clockSkewMs'>,
): boolean {
  return now > leaseOf(r, t) + t.clockSkewMs;
}
