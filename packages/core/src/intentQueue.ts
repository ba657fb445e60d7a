import { createHash } from 'node:crypto';
import type { Surface } from './operation.js';

export type IntentStatus = 'queued' | 'replaying' | 'applied' | 'failed';

/** A durable record of a queued write. Never holds credentials: only the principal the app extracted. */
export interface WriteIntent {
  id: string;
  /** Handler name used at replay (`orders.create`). */
  name: string;
  idempotencyKey: string;
  payload: unknown;
  /** sha256 of the canonical JSON of the payload: same key + other hash is a conflict. */
  payloadHash: string;
  principal: string | null;
  surface: Surface;
  windowId: string | null;
  createdAt: string;
  status: IntentStatus;
  attempts: number;
  lastError: string | null;
  appliedAt: string | null;
}

export interface EnqueueInput {
  name: string;
  idempotencyKey: string;
  payload: unknown;
  principal?: string | null;
  surface?: Surface;
  windowId?: string | null;
}

export interface EnqueueResult {
  intent: WriteIntent;
  /** False when the key was already known with the same payload (the same intent is returned). */
  created: boolean;
}

export interface IntentContext {
  intent: WriteIntent;
  /** Pass this to the storage write (a unique constraint, an upsert) so a replay is applied once in effect. */
  idempotencyKey: string;
  attempt: number;
  signal: AbortSignal;
}

export type IntentHandler = (payload: any, context: IntentContext) => unknown | Promise<unknown>;

export interface ReplayOptions {
  handlers: ReadonlyMap<string, IntentHandler>;
  /** @default 4 */
  concurrency?: number;
  /** Attempts before an intent goes to the dead-letter state `failed`. @default 5 */
  maxAttempts?: number;
  /** Backoff base in ms, doubled each attempt with jitter. @default 200 */
  backoffMs?: number;
  signal?: AbortSignal;
  onProgress?: (progress: ReplayProgress) => void;
}

export interface ReplayProgress {
  done: number;
  total: number;
  applied: number;
  failed: number;
}

export interface ReplayReport extends ReplayProgress {
  /** True when the replay stopped because its signal aborted (a new window began). */
  paused: boolean;
}

export interface IntentStats {
  depth: number;
  oldestAgeMs: number | null;
  applied: number;
  failed: number;
  replaying: number;
}

export interface IntentQueue {
  readonly kind: string;
  /**
   * Resolves only once the intent is durable. Same key + same payload → the same intent
   * (`created: false`); same key + different payload → `QuiesceError('IDEMPOTENCY_CONFLICT')`.
   */
  enqueue(input: EnqueueInput): Promise<EnqueueResult>;
  get(id: string): Promise<WriteIntent | null>;
  list(options?: { status?: IntentStatus; limit?: number }): Promise<WriteIntent[]>;
  stats(): Promise<IntentStats>;
  /** Replay queued intents through their handlers; resumes intents left `replaying` by a crash. */
  replay(options: ReplayOptions): Promise<ReplayReport>;
  close(): Promise<void>;
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort())
      out[key] = canonical((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

/** Canonical JSON: keys sorted at every depth, so `{a,b}` and `{b,a}` hash the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonical(value)) ?? 'null';
}

export function hashPayload(payload: unknown): string {
  return createHash('sha256').update(canonicalJson(payload)).digest('hex');
}

/** Key derived from the content, for queued writes whose client sent none. */
export function deriveIdempotencyKey(name: string, payload: unknown, principal?: string | null): string {
  return `derived:${createHash('sha256')
    .update(`${name}\n${principal ?? ''}\n${canonicalJson(payload)}`)
    .digest('hex')
    .slice(0, 32)}`;
}
