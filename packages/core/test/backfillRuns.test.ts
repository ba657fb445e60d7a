import { expect, it } from 'vitest';
import { createQuiesce } from '../src/engine.js';
import { createMemoryIntentQueue } from '../src/memoryIntentQueue.js';

// One run over an instance's queue at a time: the window's own backfill share and an app's
// engine.backfill() at the same moment replay each intent once, and both see the same report.
it("engine.backfill() during the window's own backfill joins it: each intent replayed once", async () => {
  const queue = createMemoryIntentQueue();
  const engine = createQuiesce({ intentQueue: queue, soakMs: 0, heartbeatMs: 50 });
  const replayed: string[] = [];
  let release!: () => void;
  let started!: () => void;
  const first = new Promise<void>((r) => (started = r));
  const gate = new Promise<void>((r) => (release = r));
  engine.handle('n', async (payload: string) => {
    replayed.push(payload);
    started();
    await gate;
  });
  await engine.begin({ reason: 'r', message: 'm' });
  await engine.waitForPhase('frozen', { timeoutMs: 5000 });
  for (const k of ['a', 'b', 'c'])
    await engine.enqueue({ surface: 'custom', name: 'n', idempotencyKey: k }, k);
  await engine.end();
  await first; // the window's share is replaying
  const manual = engine.backfill();
  release();
  const report = await manual;
  expect(report).toMatchObject({ total: 3, applied: 3, failed: 0, paused: false });
  await engine.waitForPhase('closed', { timeoutMs: 5000 });
  expect(replayed).toEqual(['a', 'b', 'c']);
  await engine.close();
});
