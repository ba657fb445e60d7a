import { describe, expect, it } from 'vitest';
import { createManualClock } from '../src/clock.js';
import { createQuiesce } from '../src/engine.js';
import type { Operation } from '../src/operation.js';

const post: Operation = { surface: 'http', name: 'POST /notes', method: 'POST', path: '/notes' };

describe('backfill pacing', () => {
  it('keeps to replay.ratePerSecond on the engine clock (a manual clock holds the next intent)', async () => {
    const clock = createManualClock();
    const engine = createQuiesce({ clock, heartbeatMs: 600_000, replay: { ratePerSecond: 0.01 } });
    await engine.start();
    const applied: number[] = [];
    engine.handle('note', async (payload) => {
      applied.push((payload as { n: number }).n);
    });
    await engine.enqueue(post, { n: 1 }, { name: 'note' });
    await engine.enqueue(post, { n: 2 }, { name: 'note' });
    const run = engine.backfill();
    await expect.poll(() => applied).toEqual([1]);
    await clock.advance(0);
    expect(applied).toEqual([1]); // the second waits for the clock, not for wall time
    await clock.advance(100_000); // one intent per 100 s: wall time alone would never get there
    await expect.poll(() => applied).toEqual([1, 2]);
    expect(await run).toMatchObject({ total: 2, applied: 2, failed: 0 });
    await engine.close();
  });
});
