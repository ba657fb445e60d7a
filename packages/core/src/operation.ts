/** The surfaces an adapter can report; a window's `scope` names some of them. */
export const SURFACES = ['http', 'graphql', 'job', 'cron', 'tool', 'custom'] as const;
export type Surface = (typeof SURFACES)[number];
export type Classification = 'read' | 'write';
/** What a write gets during a window. `block` is the default. */
export type Policy = 'block' | 'queue' | 'drop' | 'allow';

/**
 * The neutral description of one unit of work that an adapter hands to the engine.
 * Adapters fill in what their surface knows and leave the rest undefined.
 */
export interface Operation {
  surface: Surface;
  /** A stable name: `POST /orders`, `mutation createOrder`, `job emails.send`, `tool deleteUser`. */
  name: string;
  method?: string;
  /** The request target's path (a raw target is normalised before rules match it). */
  path?: string;
  /**
   * HTTP: where the app that decided is mounted (`req.baseUrl`, Nest's `mountPath`); path rules are
   * relative to it unless written with `pathFrom: 'root'`.
   */
  mount?: string;
  operationType?: 'query' | 'mutation' | 'subscription';
  queue?: string;
  principal?: string;
  idempotencyKey?: string;
  /** Client address, for the CIDR bypass allowlist. */
  ip?: string;
  /** A bypass token presented by the caller (header or cookie), verified by the engine. */
  bypassToken?: string;
  /** Explicit per-operation annotation (route helper, decorator, directive): wins over every rule. */
  annotation?: Annotation;
}

export interface Annotation {
  classification?: Classification;
  policy?: Policy;
}

/** RFC 9457 problem details with the members quiesce adds. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  windowId?: string;
  endsAt?: string | null;
  retryAfter?: number;
  [member: string]: unknown;
}

/** `out-of-scope`: a window is open, but its `scope` does not name this operation's surface. */
export type ProceedReason = 'no-window' | 'out-of-scope' | 'read' | 'allow' | 'bypass' | 'dry-run';

export interface ProceedDecision {
  outcome: 'proceed';
  classification: Classification;
  policy: Policy;
  reason: ProceedReason;
  /** In dry-run, what the decision would have been. */
  wouldBe?: 'refuse' | 'enqueue' | 'discard';
}

export interface RefuseDecision {
  outcome: 'refuse';
  classification: 'write';
  policy: 'block';
  status: number;
  retryAfter: number;
  windowId: string;
  endsAt: string | null;
  problem: Problem;
}

export interface EnqueueDecision {
  outcome: 'enqueue';
  classification: 'write';
  policy: 'queue';
  windowId: string;
  endsAt: string | null;
  retryAfter: number;
}

export interface DiscardDecision {
  outcome: 'discard';
  classification: 'write';
  policy: 'drop';
  windowId: string;
  endsAt: string | null;
}

export type Decision = ProceedDecision | RefuseDecision | EnqueueDecision | DiscardDecision;
