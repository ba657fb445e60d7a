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
  /**
   * True while this handle's state subscription is in place: a change made from now on reaches
   * its subscribers. A store whose feed connects asynchronously (LISTEN, pub/sub) turns it true once
   * the feed is up, and false while it is lost; false with no subscriber. Optional: a store without
   * it takes effect on `subscribe()`.
   */
  readonly listening?: boolean;
  /** The instance registry kept in the same backend, when the store has one. */
  readonly registry?: InstanceRegistry;
  /**
   * A heartbeat in one round trip, when the backend can: upsert this instance's record (not
   * announced) and read the state as of the start of that call. Optional: the engine otherwise
   * calls `read()` then `registry.upsert()`.
   */
  heartbeat?(record: InstanceRecord): Promise<QuiesceState>;
  close(): Promise<void>;
}

/**
 * A store that reaches a server over connections of its own (PostgreSQL, Redis): changes arrive on
 * a feed (LISTEN, pub/sub) that it re-establishes by itself after a loss or a half-open link.
 */
export interface ConnectedStore extends StateStore {
  readonly registry: InstanceRegistry & {
    subscribe(listener: () => void): () => void;
    /** True while the feed carries registry changes (the registry channel subscribed on a live connection). */
    readonly listening: boolean;
  };
  /** True while the feed carries state changes (the state channel subscribed on a live connection). */
  readonly listening: boolean;
  /** Notices this store received: state changes, and registry changes while it listened to them. */
  readonly received: { state: number; registry: number };
}

/** What an instance replayed of one window's backfill (kept in its registry record). */
export interface InstanceBackfill {
  windowId: string;
  done: number;
  total: number;
  applied: number;
  failed: number;
  /** True once this instance found nothing left to replay for the window. */
  finished: boolean;
}

/** One engine's heartbeat: which state version it applied and its in-flight writes. */
export interface InstanceRecord {
  id: string;
  host?: string;
  pid?: number;
  startedAt: string;
  /** ms since epoch of the last heartbeat. */
  lastSeen: number;
  /**
   * ms since epoch (the instance's own clock) until which the instance may start writes: the
   * instance stops starting writes by itself once it passes without a renewal. Records written
   * before leases existed have none: `lastSeen` plus the reader's lease TTL stands in.
   */
  leaseUntil?: number;
  ackedVersion: number;
  inFlight: number;
  /** Name of the oldest in-flight write, if any. */
  oldestOperation?: string;
  oldestSince?: number;
  /** True when the instance has replay handlers: it replays intents during `backfilling`. */
  replays?: boolean;
  /** This instance's share of the current window's backfill. */
  backfill?: InstanceBackfill;
}

export interface UpsertOptions {
  /**
   * Tell whoever listens to the registry (a controller confirming a freeze or a thaw) that this
   * record changed. Heartbeats that only renew the lease do not announce. @default false
   */
  announce?: boolean;
}

export interface InstanceRegistry {
  /** Register, heartbeat (renew the lease) or acknowledge. */
  upsert(record: InstanceRecord, options?: UpsertOptions): Promise<void>;
  list(): Promise<InstanceRecord[]>;
  /** One record (the controller's lease, checked by every instance while a window is open). */
  get?(instanceId: string): Promise<InstanceRecord | null>;
  /**
   * Drop a record. With `ifLastSeen`, only if the record is still the one that was judged expired
   * (an instance that renewed its lease meanwhile keeps its record).
   */
  remove(instanceId: string, options?: { ifLastSeen?: number }): Promise<void>;
  /**
   * Push of announced registry changes, for a controller waiting on acknowledgements. A store
   * listens to its registry channel only while someone subscribes (never on every instance).
   */
  subscribe?(listener: () => void): () => void;
  /**
   * True while `subscribe`'s feed is in place: a change announced from now on reaches the listeners
   * (any call a store makes to them as the feed comes up has been made). False with no subscriber.
   * Optional, like `StateStore.listening`.
   */
  readonly listening?: boolean;
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
  leaseUntil: z.number().optional(),
  backfill: z
    .object({
      windowId: z.string(),
      done: z.number().int().nonnegative(),
      total: z.number().int().nonnegative(),
      applied: z.number().int().nonnegative(),
      failed: z.number().int().nonnegative(),
      finished: z.boolean(),
    })
    .optional(),
}) satisfies z.ZodType<InstanceRecord>;

/** Validate an instance record read from (or written to) a registry backend, naming the field that failed. */
export function parseInstanceRecord(value: unknown, what: string): InstanceRecord {
  return parseOrThrow(instanceRecordSchema, value, what) as InstanceRecord;
}
