import { createQuiesce } from '@quiesce/core';
import { describe, expect, it } from 'vitest';
import { waitFor, waitForHeartbeats } from '../src/waitFor.js';

describe('waitFor', () => {
  it('returns the first truthy value the check gives', async () => {
    let calls = 0;
    const value = await waitFor('the third call', () => (++calls >= 3 ? { calls } : undefined), {
      interval: 1,
    });
    expect(value).toEqual({ calls: 3 });
  });

  it('keeps checking while the check throws, and awaits async checks', async () => {
    let calls = 0;
    const value = await waitFor(
      'a check that stops throwing',
      async () => {
        if (++calls < 3) throw new Error('not yet');
        return 'ready';
      },
      { interval: 1 },
    );
    expect(value).toBe('ready');
  });

  it('fails naming what it waited for, with the last value', async () => {
    const err = await waitFor('the moon', () => 0, { timeout: 50, interval: 5 }).catch((e: unknown) => e);
    expect(String(err)).toContain('timed out after 50 ms waiting for the moon');
    expect(String(err)).toContain('0');
  });
});

describe('waitForHeartbeats', () => {
  it('resolves after that many heartbeats matched, and names them on timeout', async () => {
    const engine = createQuiesce({ heartbeatMs: 10 });
    try {
      await engine.start();
      await waitForHeartbeats(engine, 3, 'with nothing in flight', (self) => self.inFlight === 0);
      const err = await waitForHeartbeats(
        engine,
        2,
        'with a write in flight',
        (self) => self.inFlight === 1,
        {
          timeout: 100,
        },
      ).catch((e: unknown) => e);
      expect(String(err)).toContain('waiting for 2 heartbeats with a write in flight');
    } finally {
      await engine.close();
    }
  });
});
