import type { EngineContext } from './context.js';
import { isQuiesceError, QuiesceError } from './errors.js';
import { createInProgressKeys } from './idempotencyKey.js';
import {
  deriveIdempotencyKey,
  type IntentHandler,
  type IntentQueue,
  type IntentStatus,
  type WriteIntent,
} from './intentQueue.js';
import type { Operation } from './operation.js';
import { assertStorableText } from './text.js';
import { isReadOnlyPhase, type MaintenanceWindow } from './window.js';

export interface IntentDeps {
  currentWindow(): MaintenanceWindow | null;
  /** This instance's lease lapsed (logged with a write queued outside a window). */
  fenced(): boolean;
  /** Handlers changed, or a write was queued outside a window: a backfill or sweep may be due. */
  backfillDue(): void;
}

/** Write intents: queue a stopped write durably, look intents up, and register their handlers. */
export class Intents {
  /** conform (#15): keys whose first enqueue is still being stored (a second one meanwhile is 409). */
  readonly #inProgress = createInProgressKeys();
  /** Intents this instance queued while no window was open on the store (a stale or fenced instance). */
  queuedOutsideWindow = 0;

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: IntentDeps,
  ) {}

  async enqueue(
    op: Operation,
    payload: unknown,
    options: { name?: string } = {},
  ): Promise<{ intent: WriteIntent; created: boolean; statusUrl: string }> {
    const name = options.name ?? op.name;
    const idempotencyKey = op.idempotencyKey ?? deriveIdempotencyKey(name, payload, op.principal);
    // conform (#15) begin: text every store can hold (400 naming the field, the same on every queue);
    // one request per key at a time (409); a queue that cannot store the intent is a 503, never a 500.
    assertStorableText(payload, 'payload', 'intent');
    assertStorableText({ name, idempotencyKey, principal: op.principal ?? null }, 'intent', 'intent');
    const w = this.deps.currentWindow();
    const inWindow = w !== null && isReadOnlyPhase(w.phase);
    const release = this.#inProgress.begin(name, idempotencyKey);
    let r: Awaited<ReturnType<IntentQueue['enqueue']>>;
    try {
      r = await this.ctx.queue.enqueue({
        name,
        idempotencyKey,
        payload,
        principal: op.principal ?? null,
        surface: op.surface,
        windowId: inWindow ? w.id : null,
      });
    } catch (err) {
      if (isQuiesceError(err)) throw err;
      throw new QuiesceError(
        'QUEUE_UNAVAILABLE',
        'intent: the queue could not store this write; retry later',
        {
          cause: err,
        },
      );
    } finally {
      release();
    }
    // conform (#15) end
    if (!inWindow && r.created) {
      // No window is open on the store (this instance was fenced, or decided on a stale state): the
      // sweep backfills it soon, and it is counted so nobody wonders where it came from.
      this.queuedOutsideWindow++;
      this.ctx.log.warn('quiesce: write queued while no window is open; the sweep will replay it', {
        operation: op.name,
        intentId: r.intent.id,
        fenced: this.deps.fenced(),
      });
      this.deps.backfillDue();
    }
    return { ...r, statusUrl: this.ctx.options.statusUrl(r.intent.id) };
  }

  get(id: string): Promise<WriteIntent | null> {
    return this.ctx.queue.get(id);
  }

  list(options: { status?: IntentStatus; limit?: number } = {}): Promise<WriteIntent[]> {
    return this.ctx.queue.list(options);
  }

  handle(name: string, handler: IntentHandler): void {
    if (!name) throw new QuiesceError('INVALID_INPUT', 'handle: name is required', { field: 'name' });
    if (typeof handler !== 'function')
      throw new QuiesceError('INVALID_INPUT', `handle(${name}): handler must be a function`, {
        field: 'handler',
      });
    this.ctx.handlers.set(name, handler);
    // A restarted instance whose handlers come after start() resumes the backfill / the sweep.
    this.deps.backfillDue();
  }
}
