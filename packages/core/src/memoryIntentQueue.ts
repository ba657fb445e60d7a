import { randomUUID } from 'node:crypto';
import { type Clock, systemClock } from './clock.js';
import { QuiesceError } from './errors.js';
import {
  hashPayload,
  type IntentQueue,
  type IntentStats,
  type ReplayOptions,
  type ReplayReport,
  type WriteIntent,
} from './intentQueue.js';

const sleep = (clock: Clock, ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = clock.setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clock.clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/**
 * Run `work` over `items` with at most `concurrency` in flight, stopping early on abort.
 * Shared by queue implementations.
 */
export async function runBounded<T>(
  items: readonly T[],
  concurrency: number,
  signal: AbortSignal | undefined,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async () => {
    while (next < items.length && !signal?.aborted) await work(items[next++]!);
  });
  await Promise.all(lanes);
}

/** Backoff for attempt n (1-based): base·2^(n-1) with ±50% jitter. */
export function backoffDelay(baseMs: number, attempt: number, random = Math.random()): number {
  return Math.round(baseMs * 2 ** (attempt - 1) * (0.5 + random));
}

export interface MemoryIntentQueueOptions {
  /**
   * The clock behind retry backoff and timestamps (the engine passes its own to the queue it makes).
   * @default systemClock
   */
  clock?: Clock;
}

/**
 * The in-process intent queue: idempotent, replayable, not durable across restarts. Use the
 * pg-boss queue (`@quiesce/pg-boss`) when intents must survive a crash.
 */
export function createMemoryIntentQueue(options: MemoryIntentQueueOptions = {}): IntentQueue {
  const clock = options.clock ?? systemClock;
  const isoNow = () => new Date(clock.now()).toISOString();
  const byId = new Map<string, WriteIntent>();
  const byKey = new Map<string, string>();
  let replaying: Promise<ReplayReport> | null = null;

  async function replayOnce(options: ReplayOptions): Promise<ReplayReport> {
    const concurrency = options.concurrency ?? 4;
    const maxAttempts = options.maxAttempts ?? 5;
    const backoffMs = options.backoffMs ?? 200;
    const pending = [...byId.values()]
      .filter((i) => i.status === 'queued' || i.status === 'replaying')
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    const report: ReplayReport = { done: 0, total: pending.length, applied: 0, failed: 0, paused: false };
    options.onProgress?.({ done: 0, total: report.total, applied: 0, failed: 0 });
    await runBounded(pending, concurrency, options.signal, async (intent) => {
      const handler = options.handlers.get(intent.name);
      for (;;) {
        if (options.signal?.aborted) return;
        intent.status = 'replaying';
        intent.attempts++;
        try {
          if (!handler) throw new Error(`no replay handler registered for intent "${intent.name}"`);
          await handler(structuredClone(intent.payload), {
            intent: structuredClone(intent),
            idempotencyKey: intent.idempotencyKey,
            attempt: intent.attempts,
            signal: options.signal ?? new AbortController().signal,
          });
          intent.status = 'applied';
          intent.appliedAt = isoNow();
          intent.lastError = null;
          report.applied++;
          break;
        } catch (err) {
          // Paused before the handler ran its course (the backfill stopped): not a failed attempt.
          if (options.signal?.aborted) {
            intent.attempts--;
            intent.status = 'queued';
            return;
          }
          intent.lastError = err instanceof Error ? err.message : String(err);
          if (intent.attempts >= maxAttempts || !handler) {
            intent.status = 'failed';
            report.failed++;
            break;
          }
          intent.status = 'queued';
          await sleep(clock, backoffDelay(backoffMs, intent.attempts), options.signal);
        }
      }
      report.done++;
      options.onProgress?.({
        done: report.done,
        total: report.total,
        applied: report.applied,
        failed: report.failed,
      });
    });
    report.paused = options.signal?.aborted === true && report.done < report.total;
    return report;
  }

  return {
    kind: 'memory',
    async enqueue(input) {
      if (!input.name) throw new QuiesceError('INVALID_INPUT', 'intent: name is required', { field: 'name' });
      if (!input.idempotencyKey) {
        throw new QuiesceError('IDEMPOTENCY_KEY_REQUIRED', 'intent: idempotencyKey is required', {
          field: 'idempotencyKey',
        });
      }
      const payloadHash = hashPayload(input.payload);
      const scopedKey = `${input.name}\u0000${input.idempotencyKey}`;
      const existingId = byKey.get(scopedKey);
      if (existingId) {
        const existing = byId.get(existingId)!;
        if (existing.payloadHash !== payloadHash) {
          throw new QuiesceError(
            'IDEMPOTENCY_CONFLICT',
            `idempotency key "${input.idempotencyKey}" was already used for intent ${existing.id} with a different payload`,
            { field: 'idempotencyKey', details: { intentId: existing.id } },
          );
        }
        return { intent: structuredClone(existing), created: false };
      }
      const intent: WriteIntent = {
        id: `int_${randomUUID()}`,
        name: input.name,
        idempotencyKey: input.idempotencyKey,
        payload: structuredClone(input.payload),
        payloadHash,
        principal: input.principal ?? null,
        surface: input.surface ?? 'custom',
        windowId: input.windowId ?? null,
        createdAt: isoNow(),
        status: 'queued',
        attempts: 0,
        lastError: null,
        appliedAt: null,
      };
      byId.set(intent.id, intent);
      byKey.set(scopedKey, intent.id);
      return { intent: structuredClone(intent), created: true };
    },
    async get(id) {
      const i = byId.get(id);
      return i ? structuredClone(i) : null;
    },
    async list(options = {}) {
      const all = [...byId.values()].filter((i) => !options.status || i.status === options.status);
      return structuredClone(options.limit ? all.slice(-options.limit) : all);
    },
    async stats(): Promise<IntentStats> {
      let depth = 0;
      let oldest: number | null = null;
      const s = { applied: 0, failed: 0, replaying: 0 };
      for (const i of byId.values()) {
        if (i.status === 'queued' || i.status === 'replaying') {
          depth++;
          const t = Date.parse(i.createdAt);
          oldest = oldest === null ? t : Math.min(oldest, t);
        }
        if (i.status === 'applied') s.applied++;
        else if (i.status === 'failed') s.failed++;
        else if (i.status === 'replaying') s.replaying++;
      }
      return { depth, oldestAgeMs: oldest === null ? null : clock.now() - oldest, ...s };
    },
    async replay(options) {
      // One replay at a time per queue: a second caller waits for the first to finish.
      while (replaying) await replaying.catch(() => {});
      replaying = replayOnce(options);
      try {
        return await replaying;
      } finally {
        replaying = null;
      }
    },
    async close() {},
  };
}
