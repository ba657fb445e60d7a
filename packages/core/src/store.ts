import { z } from 'zod';
import type { QuiesceState } from './window.js';
import { parseOrThrow } from './window.js';

export type CompareAndSetResult = { ok: true; state: QuiesceState } | { ok: false; current: QuiesceState };

/**
 * Where the state lives and how changes reach every instance. A store holds one state document
 * and versions it: `compareAndSet` writes only when the stored version equals `expectedVersion`.
 */
export interface StateStore {
  /** Short name for logs and status (`memory`, `file`, `postgres`, …). */
  readonly kind: string;
  /** False for stores that cannot be written (the env store). */
  readonly writable: boolean;
  /** Current state; a store that holds nothing yet returns `INITIAL_STATE` (version 0). */
  read(): Promise<QuiesceState>;
  compareAndSet(expectedVersion: number, next: QuiesceState): Promise<CompareAndSetResult>;
  /**
   * Push each new state to the listener (at least every change; duplicates and old versions are
   * fine, the engine ignores versions it has already applied). `onError` reports a broken feed.
   */
  subscribe(listener: (state: QuiesceState) => void, onError?: (error: Error) => void): () => void;
  /** The instance registry kept in the same backend, when the store has one. */
  readonly registry?: InstanceRegistry;
  close(): Promise<void>;
}

/** One engine's heartbeat: which state version it applied and its in-flight writes. */
export interface InstanceRecord {
  id: string;
  host?: string;
  pid?: number;
  startedAt: string;
  /** ms since epoch of the last heartbeat. */
  lastSeen: number;
  ackedVersion: number;
  inFlight: number;
  /** Name of the oldest in-flight write, if any. */
  oldestOperation?: string;
  oldestSince?: number;
  /** True when the instance has replay handlers: it replays intents during `backfilling`. */
  replays?: boolean;
}

export interface InstanceRegistry {
  /** Register or heartbeat. */
  upsert(record: InstanceRecord): Promise<void>;
  list(): Promise<InstanceRecord[]>;
  remove(instanceId: string): Promise<void>;
  /** Optional push of registry changes so a controller does not have to poll. */
  subscribe?(listener: () => void): () => void;
}

/** Validates instance rows read back from a registry backend. */
export const instanceRecordSchema = z.object({
  id: z.string().min(1),
  host: z.string().optional(),
  pid: z.number().int().optional(),
  startedAt: z.string(),
  lastSeen: z.number(),
  ackedVersion: z.number().int(),
  inFlight: z.number().int().nonnegative(),
  oldestOperation: z.string().optional(),
  oldestSince: z.number().optional(),
  replays: z.boolean().optional(),
}) satisfies z.ZodType<InstanceRecord>;

/** Validate an instance record read from (or written to) a registry backend, naming the field that failed. */
export function parseInstanceRecord(value: unknown, what: string): InstanceRecord {
  return parseOrThrow(instanceRecordSchema, value, what) as InstanceRecord;
}
