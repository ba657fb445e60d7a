import { createManualClock, createQuiesce } from '@quiesce/core';
import { expect, it } from 'vitest';
import { windowLines } from '../src/render.js';

it('quiesce status shows the escalations of a window (#18)', async () => {
  const clock = createManualClock();
  const engine = createQuiesce({
    clock,
    readHealth: { minSamples: 20 },
    escalation: { extendBy: 600_000, maxExtensions: 1, rollback: () => 'done' },
  });
  try {
    await engine.start();
    for (let i = 0; i < 100; i++) engine.reportRead({ surface: 'http', durationMs: 5, error: false });
    await engine.begin({ reason: 'r', message: 'm', rollbackPlan: 'use the replica' });
    expect(windowLines(engine.window!, clock.now()).join('\n')).not.toMatch(/escal/);
    for (let i = 0; i < 64; i++) engine.reportRead({ surface: 'http', durationMs: 90, error: false });
    await expect
      .poll(() => windowLines(engine.window!, clock.now()).find((l) => l.startsWith('  escal.')))
      .toMatch(/^ {2}escal\. {3}1 escalation: extended 1× \(last: read p95 90\.0ms .*\) · rollback ok$/);
  } finally {
    await engine.close();
  }
});
