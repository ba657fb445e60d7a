import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createFileStore,
  createManualClock,
  createQuiesce,
  type EscalationRecord,
  escalationRows,
} from '@quiesce/core';
import { expect, it } from 'vitest';
import { escalationLines, windowLines } from '../src/render.js';
import { cli } from './helpers.js';

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

it('quiesce status and audit --window, on the store, show the limit and each rule’s figures from the record (#18)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'quiesce-cli-escalation-'));
  const path = join(dir, 'state.json');
  const store = createFileStore({ path });
  const clock = createManualClock();
  const engine = createQuiesce({
    clock,
    store,
    readHealth: { minSamples: 20 },
    escalation: { extendBy: 600_000, maxExtensions: 1, rollback: () => 'done' },
  });
  try {
    await engine.start();
    for (let i = 0; i < 100; i++) engine.reportRead({ surface: 'http', durationMs: 5, error: false });
    const w = await engine.begin({ reason: 'r', message: 'm', rollbackPlan: 'use the replica' });
    const record = () => engine.window!.report.escalation as EscalationRecord | undefined;
    for (let round = 1; round <= 2; round++) {
      for (let i = 0; i < 64; i++) engine.reportRead({ surface: 'http', durationMs: 90, error: false });
      await expect.poll(() => record()?.events.length).toBe(round);
    }
    await expect.poll(() => record()?.rollback?.status).toBe('ok');
    const [first, second] = record()!.events;
    const rb = record()!.rollback!;
    const evidence =
      '              read p95 90 ms during (64 reads) vs 5 ms before (100 reads) · limit: above 2× the baseline (ratio)';
    const block = [
      '  escal.   2 escalations: extended 1×, at the limit 1× (last: read p95 90.0ms is over 2x the baseline 5.0ms) · rollback ok',
      '           extensions 1 / 1 · extended by 10 min per escalation, at most 1 time',
      `           #1 ${first!.at} on ${engine.instanceId} · extended: now ends ${first!.endsAt}`,
      evidence,
      `           #2 ${second!.at} on ${engine.instanceId} · none: extended 1 of 1 times already`,
      evidence,
      `           rollback ok on ${engine.instanceId}, started ${rb.startedAt}, finished ${rb.finishedAt} · plan: use the replica · evidence: read p95 90.0ms is over 2x the baseline 5.0ms · result: "done"`,
    ];

    const status = await cli(['status', '--store', `file:${path}`]);
    expect(status.code).toBe(0);
    const lines = status.stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith('  escal.'));
    expect(lines.slice(at, at + block.length)).toEqual(block);

    const audit = await cli(['audit', '--window', w.id, '--store', `file:${path}`]);
    expect(audit.code).toBe(0);
    expect(audit.stdout).toContain(block.join('\n'));
    const json = await cli(['audit', '--window', w.id, '--store', `file:${path}`, '--json']);
    expect(json.json.escalation).toEqual(escalationRows(engine.window));
    expect(json.json.escalation.rows[0].findings[0]).toMatchObject({
      metric: 'reads',
      stat: 'p95Ms',
      kind: 'ratio',
      limit: 2,
      baseline: 5,
      during: 90,
      baselineSamples: 100,
      duringSamples: 64,
    });
  } finally {
    await engine.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

it('status keeps the newest three escalations; an old-shape record (reasons only, no limit) still renders', () => {
  const event = (i: number) => ({
    at: `2026-11-29T10:0${i}:00.000Z`,
    instanceId: 'a',
    reasons: [`read p95 9${i}.0ms is over 2x the baseline 5.0ms`],
    outcome: i === 1 ? 'extended' : 'limit',
    ...(i === 1 ? { endsAt: '2026-11-29T11:00:00.000Z' } : {}),
  });
  const w = { report: { escalation: { extensions: 1, events: [1, 2, 3, 4, 5].map(event) } } };
  expect(escalationLines(escalationRows(w), 3)).toEqual([
    '  escal.   5 escalations: extended 1×, at the limit 4× (last: read p95 95.0ms is over 2x the baseline 5.0ms)',
    '           extensions 1',
    '           (2 earlier)',
    '           #3 2026-11-29T10:03:00.000Z on a · none: extended 1 time already',
    '              read p95 93.0ms is over 2x the baseline 5.0ms',
    '           #4 2026-11-29T10:04:00.000Z on a · none: extended 1 time already',
    '              read p95 94.0ms is over 2x the baseline 5.0ms',
    '           #5 2026-11-29T10:05:00.000Z on a · none: extended 1 time already',
    '              read p95 95.0ms is over 2x the baseline 5.0ms',
  ]);
  expect(escalationLines(escalationRows({ report: {} }))).toEqual([]);
});
