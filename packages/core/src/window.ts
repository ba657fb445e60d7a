import { z } from 'zod';
import { checklistSchema } from './checklist.js';
import { dateTimeSchema } from './dateTime.js';
import { QuiesceError } from './errors.js';
import { SURFACES, type Surface } from './operation.js';
import { isStorableText, UNSTORABLE_TEXT_MESSAGE } from './text.js';

export const PHASES = ['scheduled', 'freezing', 'frozen', 'thawing', 'backfilling', 'closed'] as const;
export type Phase = (typeof PHASES)[number];
export type Mode = 'read-write' | 'read-only';

/** Phases during which writes are refused. */
export function isReadOnlyPhase(phase: Phase | null | undefined): boolean {
  return phase === 'freezing' || phase === 'frozen';
}

// RFC 3339 with an explicit offset (or a Date from JavaScript callers), kept as a UTC ISO string.
const isoTime = dateTimeSchema;

const isSurface = (s: string): s is Surface => (SURFACES as readonly string[]).includes(s);

/** Text that every store can hold: no NUL, no lone surrogate (PostgreSQL refuses both). */
const text = () => z.string().refine(isStorableText, { message: UNSTORABLE_TEXT_MESSAGE });

const noticeSchema = z.object({
  status: z.enum(['pending', 'ok', 'failed']),
  attempts: z.number().int().nonnegative(),
  lastEvent: z.string().optional(),
  lastError: z.string().optional(),
  updatedAt: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
});
export type NoticeRecord = z.infer<typeof noticeSchema>;

const stragglerSchema = z.object({
  instanceId: z.string(),
  inFlight: z.number().int().nonnegative(),
  ackedVersion: z.number().int(),
  oldestOperation: z.string().optional(),
  /**
   * `fenced`: unreachable, counted as stopped once its lease expired (it stops starting writes by
   * itself); `lost`: its lease expired after it had confirmed (it died or was cut off mid-window).
   */
  reason: z.enum(['not-acknowledged', 'in-flight', 'lost', 'fenced']),
  /** When its lease expired (fenced, lost). */
  leaseUntil: z.string().optional(),
  /** Heartbeat time of the record judged expired (ms since epoch, its own clock). */
  lastSeen: z.number().optional(),
});
export type Straggler = z.infer<typeof stragglerSchema>;

export const windowSchema = z.object({
  id: z.string().min(1),
  reason: z.string().min(1),
  message: z.string().min(1),
  startsAt: isoTime,
  endsAt: isoTime.nullable(),
  contact: z.string().optional(),
  rollbackPlan: z.string().optional(),
  scope: z.array(z.string()).optional(),
  openedBy: z.string().optional(),
  phase: z.enum(PHASES),
  autoEnd: z.boolean().default(false),
  /** State version at which writes were first refused (acknowledgements are counted against it). */
  freezeVersion: z.number().int().nullable().default(null),
  frozenAt: isoTime.nullable().default(null),
  endedAt: isoTime.nullable().default(null),
  closedAt: isoTime.nullable().default(null),
  stragglers: z.array(stragglerSchema).default([]),
  /** Per-notifier outcome, keyed by notifier name (incident ids live here). */
  notices: z.record(z.string(), noticeSchema).default({}),
  /** Closing record members contributed by extensions (write audit, backfill report). */
  report: z.record(z.string(), z.unknown()).default({}),
  /** Durable checklist: driver, confirmations, soak, closure notice, backfill (see checklist.ts). */
  checklist: checklistSchema.optional(),
});
export type MaintenanceWindow = z.infer<typeof windowSchema>;

export const stateSchema = z.object({
  mode: z.enum(['read-write', 'read-only']),
  window: windowSchema.nullable(),
  version: z.number().int().nonnegative(),
  updatedAt: isoTime,
  updatedBy: z.string().optional(),
});
export type QuiesceState = z.infer<typeof stateSchema>;

export const INITIAL_STATE: QuiesceState = Object.freeze({
  mode: 'read-write',
  window: null,
  version: 0,
  updatedAt: new Date(0).toISOString(),
}) as QuiesceState;

/** Input of `engine.begin()`. */
export const beginInputSchema = z
  .object({
    reason: text().trim().min(1, 'is required'),
    message: text().trim().min(1, 'is required').max(2000),
    endsAt: isoTime.optional(),
    contact: text().max(500).optional(),
    rollbackPlan: text().max(2000).optional(),
    scope: z
      .array(text())
      .refine((s) => s.every(isSurface), {
        error: (issue) =>
          `must list only known surfaces (${SURFACES.join(', ')}); unknown: ${(issue.input as string[])
            .filter((x) => !isSurface(x))
            .map((x) => JSON.stringify(x))
            .join(', ')}`,
      })
      .optional(),
    actor: text().optional(),
    autoEnd: z.boolean().optional(),
  })
  .strict();
export type BeginInput = z.input<typeof beginInputSchema>;

export const scheduleInputSchema = beginInputSchema.extend({ startsAt: isoTime }).strict();
export type ScheduleInput = z.input<typeof scheduleInputSchema>;

export const extendInputSchema = z
  .object({
    endsAt: isoTime.optional(),
    byMs: z.number().int().positive().optional(),
    message: text().trim().min(1).max(2000).optional(),
    actor: text().optional(),
    reason: text().optional(),
    /** Extend only this window: `NO_ACTIVE_WINDOW` when another (or none) is current. */
    windowId: z.string().min(1).optional(),
  })
  .strict()
  .refine((v) => v.endsAt !== undefined || v.byMs !== undefined || v.message !== undefined, {
    message: 'give endsAt, byMs or message',
  });
export type ExtendInput = z.input<typeof extendInputSchema>;

export const endInputSchema = z
  .object({
    actor: text().optional(),
    reason: text().optional(),
    message: text().optional(),
    /** End only this window: `NO_ACTIVE_WINDOW` when another (or none) is current (a conditional end). */
    windowId: z.string().min(1).optional(),
    /** End the window in any phase (a stuck thaw or backfill too): closed at once, audited. */
    force: z.boolean().optional(),
  })
  .strict();
export type EndInput = z.input<typeof endInputSchema>;

/**
 * Parse untrusted input with a schema; on failure throw `INVALID_INPUT` naming the first field
 * that failed (`endsAt: must be an RFC 3339 date-time…`).
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.length ? issue.path.join('.') : undefined;
  let message = issue?.message ?? 'invalid';
  if (issue?.code === 'unrecognized_keys')
    message = `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  throw new QuiesceError('INVALID_INPUT', `${what}: ${field ? `${field}: ` : ''}${message}`, {
    field: field ?? (issue?.code === 'unrecognized_keys' ? issue.keys[0] : undefined),
    cause: result.error,
  });
}

/** Validate a state payload read from a store (a corrupt payload throws `INVALID_INPUT`). */
export function parseState(input: unknown): QuiesceState {
  return parseOrThrow(stateSchema, input, 'state payload');
}
