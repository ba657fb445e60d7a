import { z } from 'zod';

const isoTime = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), { message: 'must be an ISO 8601 date-time' })
  .transform((s) => new Date(s).toISOString());

/**
 * How the instances stood when a freeze or a thaw was confirmed. `confirmed` counts the instances
 * that acknowledged the version (and, for a freeze, had no write in flight); `confirmedIds` names
 * them when there are at most 50 (a fleet's record stays small); `fenced` names the instances that
 * could not be reached and were counted as stopped only once their lease had expired.
 */
export const confirmationSchema = z.object({
  version: z.number().int(),
  at: isoTime,
  tookMs: z.number().nonnegative(),
  confirmed: z.number().int().nonnegative(),
  confirmedIds: z.array(z.string()).optional(),
  fenced: z
    .array(
      z.object({
        instanceId: z.string(),
        leaseUntil: isoTime,
        ackedVersion: z.number().int(),
        inFlight: z.number().int().nonnegative(),
      }),
    )
    .default([]),
  /** Instances still not confirmed when the drain deadline passed (named in `stragglers` too). */
  unconfirmed: z.array(z.string()).default([]),
});
export type Confirmation = z.infer<typeof confirmationSchema>;

export const backfillTotalsSchema = z.object({
  startedAt: isoTime.nullable().default(null),
  done: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  applied: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  /** Per instance that replayed (from its registry record), so a shared queue's work is attributed. */
  byInstance: z
    .record(
      z.string(),
      z.object({
        done: z.number().int().nonnegative(),
        total: z.number().int().nonnegative(),
        applied: z.number().int().nonnegative(),
        failed: z.number().int().nonnegative(),
      }),
    )
    .default({}),
  updatedAt: isoTime.nullable().default(null),
});
export type BackfillTotals = z.infer<typeof backfillTotalsSchema>;

/**
 * The window's checklist, kept in the store with the window so that any live instance can resume
 * it: who drives it now (its lease in the registry says whether it is alive), and how far it got.
 */
export const checklistSchema = z.object({
  /** Instance driving the window (confirming the freeze, running the checklist). */
  controller: z.string().nullable().default(null),
  /** Every change of driver: the previous one's lease had expired (or it held none, like a CLI). */
  takeovers: z
    .array(z.object({ from: z.string().nullable(), by: z.string(), at: isoTime, phase: z.string() }))
    .default([]),
  freeze: confirmationSchema.nullable().default(null),
  /** Version at which writes came back on (acknowledgements of the thaw are counted against it). */
  thawVersion: z.number().int().nullable().default(null),
  thaw: confirmationSchema.nullable().default(null),
  soakStartedAt: isoTime.nullable().default(null),
  soakMs: z.number().int().nonnegative().nullable().default(null),
  /** The closure notice: claimed by one driver before it is sent, so it goes out once. */
  closureNotice: z
    .object({ by: z.string(), claimedAt: isoTime, sentAt: isoTime.nullable().default(null) })
    .nullable()
    .default(null),
  backfill: backfillTotalsSchema.nullable().default(null),
  /** Set by `end({ force: true })`: the phase the window was in when it was forced closed. */
  forced: z.object({ by: z.string(), at: isoTime, fromPhase: z.string() }).nullable().default(null),
});
export type Checklist = z.infer<typeof checklistSchema>;

export function emptyChecklist(controller: string | null): Checklist {
  return {
    controller,
    takeovers: [],
    freeze: null,
    thawVersion: null,
    thaw: null,
    soakStartedAt: null,
    soakMs: null,
    closureNotice: null,
    backfill: null,
    forced: null,
  };
}
