import { describe, expect, it } from 'vitest';
import { createManualClock } from '../src/clock.js';
import { createQuiesce } from '../src/engine.js';
import { createMemoryIntentQueue } from '../src/memoryIntentQueue.js';
import { createMemoryStore } from '../src/memoryStore.js';
import type { Notifier, NotifierEvent } from '../src/notifier.js';

// close() is a clean shutdown: work the engine already started finishes, nothing new starts, and
// nothing the engine started writes to the store after close() resolved (test:stress caught a
// backfill that wrote to a file store while the test removed its directory).
describe('close()', () => {
  it('waits for the backfill handler running now and starts no other intent', async () => {
    const store = createMemoryStore();
    const queue = createMemoryIntentQueue();
    const engine = createQuiesce({ store, intentQueue: queue, soakMs: 0, heartbeatMs: 50 });
    const order: string[] = [];
    let release!: () => void;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    engine.handle('slow', async (payload) => {
      order.push(`start ${payload}`);
      started();
      await new Promise<void>((r) => (release = r));
      order.push(`done ${payload}`);
    });
    await engine.begin({ reason: 'r', message: 'm' });
    await engine.waitForPhase('frozen', { timeoutMs: 5000 });
    await engine.enqueue({ surface: 'custom', name: 'slow', idempotencyKey: 'a' }, 'a');
    await engine.enqueue({ surface: 'custom', name: 'slow', idempotencyKey: 'b' }, 'b');
    await engine.end();
    await running; // the first intent's handler is running
    const closing = engine.close().then(() => order.push('closed'));
    release();
    await closing;
    expect(order).toEqual(['start a', 'done a', 'closed']);
    // The second intent stays queued for the next backfill (not counted as a failed attempt).
    const left = await queue.list({ status: 'queued' });
    expect(left.map((i) => [i.idempotencyKey, i.attempts])).toEqual([['b', 0]]);
  });

  it('ends a soak in progress at once, without sending the closure notice', async () => {
    const clock = createManualClock();
    const sent: string[] = [];
    const notifier: Notifier = {
      name: 'log',
      async notify(e: NotifierEvent) {
        sent.push(e.kind);
      },
    };
    const engine = createQuiesce({ clock, soakMs: 60_000, heartbeatMs: 1000, notifiers: [notifier] });
    await engine.begin({ reason: 'r', message: 'm' });
    await engine.waitForPhase('frozen', { timeoutMs: 5000 });
    await engine.end();
    await engine.waitForPhase('thawing', { timeoutMs: 5000 });
    // The clock never moves: close() must not wait the soak out.
    await engine.close();
    expect(sent).not.toContain('ended');
    expect(engine.window?.phase).toBe('thawing');
  });
});
