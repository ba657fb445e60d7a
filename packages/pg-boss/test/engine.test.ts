import { createQuiesce, type Operation } from '@quiesce/core';
import { waitFor, waitForHeartbeats } from '@quiesce/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PgBossIntentQueue } from '../src/index.js';
import { type Backend, describeEachBackend } from './backends.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const window = { reason: 'orders migration', message: 'Orders are queued until the migration is done.' };
const createOrder = (key: string): Operation => ({
  surface: 'http',
  name: 'POST /orders',
  method: 'POST',
  path: '/orders',
  idempotencyKey: key,
  annotation: { classification: 'write', policy: 'queue' },
});

describeEachBackend('the engine backfills from the pg-boss queue on %s', (_name, make) => {
  let backend: Backend;
  let queue: PgBossIntentQueue;
  beforeAll(async () => {
    backend = await make();
    queue = await backend.open();
  }, 30_000);
  afterAll(() => backend?.cleanup(), 30_000);

  it('keeps queued writes during the window and replays them in the backfilling phase', async () => {
    const engine = createQuiesce({ intentQueue: queue, heartbeatMs: 25, soakMs: 0, logger: silent });
    const applied: Array<{ key: string; payload: unknown }> = [];
    engine.handle('orders.create', (payload, ctx) => void applied.push({ key: ctx.idempotencyKey, payload }));

    await engine.begin(window);
    await engine.waitForPhase('frozen', { timeoutMs: 5000 });
    expect(engine.decide(createOrder('o-1')).outcome).toBe('enqueue');
    const accepted = await engine.enqueue(
      createOrder('o-1'),
      { sku: 'A', qty: 1 },
      { name: 'orders.create' },
    );
    expect(accepted).toMatchObject({ created: true, statusUrl: `/quiesce/intents/${accepted.intent.id}` });
    expect(await engine.getIntent(accepted.intent.id)).toMatchObject({
      status: 'queued',
      windowId: engine.window!.id,
    });
    await expect(engine.backfill()).rejects.toMatchObject({ code: 'WINDOW_CONFLICT' });
    expect(applied).toEqual([]);

    await engine.end();
    await engine.waitForPhase('closed', { timeoutMs: 10_000 });
    expect(applied).toEqual([{ key: 'o-1', payload: { sku: 'A', qty: 1 } }]);
    expect(await queue.get(accepted.intent.id)).toMatchObject({ status: 'applied' });
    expect(engine.window?.report.backfill).toMatchObject({
      applied: 1,
      failed: 0,
      paused: false,
      remaining: 0,
    });
    await engine.close();
  }, 30_000);

  it('a new window during the backfill pauses it; the next backfill finishes without applying twice', async () => {
    const engine = createQuiesce({ intentQueue: queue, heartbeatMs: 25, soakMs: 0, logger: silent });
    const applied: string[] = [];
    const started: string[] = [];
    // Four intents apply; the ones started after them are held until the next window has begun.
    let secondWindowBegun!: () => void;
    const secondWindow = new Promise<void>((r) => (secondWindowBegun = r));
    engine.handle('orders.create', async (_p, ctx) => {
      started.push(ctx.idempotencyKey);
      if (started.length > 4) await secondWindow;
      applied.push(ctx.idempotencyKey);
    });
    const progress: number[] = [];
    engine.on('backfill-progress', (p) => progress.push(p.done));

    await engine.begin(window);
    await engine.waitForPhase('frozen', { timeoutMs: 5000 });
    for (let i = 0; i < 32; i++)
      await engine.enqueue(createOrder(`p-${i}`), { i }, { name: 'orders.create' });
    await engine.end();
    await engine.waitForPhase('backfilling', { timeoutMs: 5000 });
    await vi.waitFor(() => expect(applied.length).toBeGreaterThanOrEqual(4), { timeout: 5000 });
    await engine.begin({ ...window, reason: 'second migration' });
    secondWindowBegun();
    await engine.waitForPhase('frozen', { timeoutMs: 5000 });
    // Handlers already running finish; no new one starts while writes are refused.
    await waitFor('the running handlers to finish', () => applied.length === started.length);
    const pausedAt = started.length;
    expect(pausedAt).toBeLessThan(32);
    await waitForHeartbeats(engine, 3, 'while frozen', () => true);
    expect(started.length).toBe(pausedAt);
    expect((await queue.stats()).replaying).toBe(0);

    await engine.end();
    await engine.waitForPhase('closed', { timeoutMs: 15_000 });
    expect(applied.sort()).toEqual(Array.from({ length: 32 }, (_, i) => `p-${i}`).sort());
    expect(started).toHaveLength(32); // each intent's handler ran once
    expect(engine.window?.report.backfill).toMatchObject({ paused: false, remaining: 0 });
    expect(progress.length).toBeGreaterThan(0);
    expect(await queue.stats()).toMatchObject({ depth: 0, replaying: 0 });
    await engine.close();
  }, 30_000);
});
