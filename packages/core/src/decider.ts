import type { BypassCheck } from './bypass.js';
import type { ClassifyResult } from './classifier.js';
import type { Clock } from './clock.js';
import type {
  Decision,
  DiscardDecision,
  EnqueueDecision,
  Operation,
  Policy,
  ProceedDecision,
  ProceedReason,
  RefuseDecision,
} from './operation.js';
import { computeRetryAfter, type ResolvedRetryAfter } from './retryAfter.js';

export const PROBLEM_TYPE = 'https://quiesce.dev/problems/read-only-mode';
const PROBLEM_TITLE = 'Service is in read-only mode';

/** Proceed decisions are preallocated: the proceed path allocates nothing. */
type ProceedTable = Record<ProceedReason, Record<'read' | 'write', Record<Policy, ProceedDecision>>>;
const REASONS: ProceedReason[] = ['no-window', 'out-of-scope', 'read', 'allow', 'bypass', 'dry-run'];
const POLICIES: Policy[] = ['block', 'queue', 'drop', 'allow'];
function table(wouldBe?: ProceedDecision['wouldBe']): ProceedTable {
  const t = {} as ProceedTable;
  for (const reason of REASONS) {
    t[reason] = { read: {} as Record<Policy, ProceedDecision>, write: {} as Record<Policy, ProceedDecision> };
    for (const c of ['read', 'write'] as const) {
      for (const p of POLICIES) {
        t[reason][c][p] = Object.freeze({
          outcome: 'proceed',
          classification: c,
          policy: p,
          reason,
          ...(wouldBe ? { wouldBe } : {}),
        }) as ProceedDecision;
      }
    }
  }
  return t;
}
const PROCEED = table();
const DRY_RUN = { refuse: table('refuse'), enqueue: table('enqueue'), discard: table('discard') };

/** What a refusal says while writes are refused, precomputed when the state is applied. */
export interface RefusalTemplate {
  windowId: string;
  endsAt: string | null;
  endsAtMs: number | null;
  message: string;
  /** The surfaces the window covers; null for every surface. */
  scope: ReadonlySet<string> | null;
}

/** What the decider reads of this instance's state (kept current by the state replica). */
export interface DecisionView {
  /** Writes are refused here: an open window, a fallback, or no lease. */
  readonly readOnly: boolean;
  /** Until when this instance may start writes; Infinity without a lease. */
  readonly leaseUntil: number;
  /** Set whenever `readOnly` is. */
  readonly template: RefusalTemplate | null;
}

export interface DeciderSettings {
  readonly bypass: BypassCheck | null;
  readonly retry: ResolvedRetryAfter;
  readonly refusalStatus: number;
  readonly dryRun: boolean;
  /** The Retry-After jitter's source. @default Math.random */
  readonly random?: () => number;
}

/** Facts about a decision that its shape does not carry (why a write bypassed), for the recorder. */
export interface DecisionNote {
  bypass: string | null;
}

/** The lease lapsed while writes were on: the caller fences the instance and decides again. */
export const LEASE_LAPSED = Symbol('lease-lapsed');

/**
 * The decision for one classified operation: pure (the clock is read, nothing is written; `note`
 * gets the bypass reason). Counting, logging and the `decision` event are the recorder's.
 */
export function decide(
  c: ClassifyResult,
  op: Operation,
  view: DecisionView,
  clock: Pick<Clock, 'now'>,
  s: DeciderSettings,
  note: DecisionNote,
): Decision | typeof LEASE_LAPSED {
  if (!view.readOnly) {
    // A lapsed lease is checked here too, not only by its timer: a stalled event loop may run
    // requests before the timer fires. One comparison; Infinity for an engine without a lease.
    if (view.leaseUntil === Number.POSITIVE_INFINITY || clock.now() <= view.leaseUntil)
      return PROCEED['no-window'][c.classification][c.policy];
    return LEASE_LAPSED;
  }
  if (c.classification === 'read') return PROCEED.read.read[c.policy];
  // Kept small above so it inlines into the engine's decide(); a write during a window goes on below.
  return decideWrite(c, op, view.template!, clock, s, note);
}

function decideWrite(
  c: ClassifyResult,
  op: Operation,
  tpl: RefusalTemplate,
  clock: Pick<Clock, 'now'>,
  s: DeciderSettings,
  note: DecisionNote,
): Decision {
  if (c.policy === 'allow') return PROCEED.allow.write.allow;
  if (tpl.scope !== null && !tpl.scope.has(op.surface)) return PROCEED['out-of-scope'].write[c.policy];
  const now = clock.now();
  if (s.bypass !== null) {
    const why = s.bypass(op, now);
    if (why !== null) {
      note.bypass = why;
      return PROCEED.bypass.write[c.policy];
    }
  }
  let d: RefuseDecision | EnqueueDecision | DiscardDecision;
  if (c.policy === 'queue') {
    d = {
      outcome: 'enqueue',
      classification: 'write',
      policy: 'queue',
      windowId: tpl.windowId,
      endsAt: tpl.endsAt,
      retryAfter: retryAfter(tpl, now, s),
    };
  } else if (c.policy === 'drop') {
    d = {
      outcome: 'discard',
      classification: 'write',
      policy: 'drop',
      windowId: tpl.windowId,
      endsAt: tpl.endsAt,
    };
  } else d = refusal(tpl, now, s);
  return s.dryRun ? DRY_RUN[d.outcome]['dry-run'].write[c.policy] : d;
}

function retryAfter(tpl: RefusalTemplate, now: number, s: DeciderSettings): number {
  return computeRetryAfter(tpl.endsAtMs, now, s.retry, (s.random ?? Math.random)());
}

function refusal(tpl: RefusalTemplate, now: number, s: DeciderSettings): RefuseDecision {
  const retry = retryAfter(tpl, now, s);
  const status = s.refusalStatus;
  return {
    outcome: 'refuse',
    classification: 'write',
    policy: 'block',
    status,
    retryAfter: retry,
    windowId: tpl.windowId,
    endsAt: tpl.endsAt,
    problem: {
      type: PROBLEM_TYPE,
      title: PROBLEM_TITLE,
      status,
      detail: tpl.message,
      code: 'READ_ONLY_MODE',
      windowId: tpl.windowId,
      endsAt: tpl.endsAt,
      retryAfter: retry,
    },
  };
}
