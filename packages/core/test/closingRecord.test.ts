import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import type { AuditEntry } from '../src/audit.js';
import { emptyChecklist } from '../src/checklist.js';
import { buildClosingRecord, READ_HEALTH_KEY_PREFIX, versionGaps } from '../src/closingRecord.js';
import { createQuiesce } from '../src/engine.js';
import { createMemoryStore } from '../src/memoryStore.js';
import { silentLogger } from '../src/notifier.js';
import {
  bucketUpperMs,
  isReadSummary,
  mergeReadSummaries,
  ReadHistogram,
  readSummaryStats,
} from '../src/readSummary.js';

describe('read summaries', () => {
  it('percentiles are bucket upper bounds within 19% above the true value; merging adds up', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.array(fc.double({ min: 0.2, max: 50_000, noNaN: true }), { minLength: 1, maxLength: 200 }),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        (instances) => {
          const hs = instances.map((ds) => {
            const h = new ReadHistogram();
            for (const d of ds) h.record(d, d > 1000);
            return h.summary();
          });
          const merged = mergeReadSummaries(hs);
          expect(isReadSummary(merged)).toBe(true);
          const all = instances.flat().sort((a, b) => a - b);
          const stats = readSummaryStats(merged);
          expect(stats.count).toBe(all.length);
          expect(stats.errorRatio).toBe(all.filter((d) => d > 1000).length / all.length);
          for (const [p, got] of [
            [0.5, stats.p50Ms],
            [0.95, stats.p95Ms],
            [0.99, stats.p99Ms],
          ] as const) {
            const exact = all[Math.max(0, Math.ceil(p * all.length) - 1)]!;
            expect(got!).toBeGreaterThanOrEqual(exact - 1e-3);
            expect(got!).toBeLessThanOrEqual(exact * 2 ** 0.25 + 1e-3);
          }
        },
      ),
      { numRuns: Number(process.env.QUIESCE_PROPERTY_RUNS ?? 100) },
    );
  });

  it('an empty summary has no percentiles; malformed summaries are rejected', () => {
    expect(readSummaryStats(new ReadHistogram().summary())).toEqual({
      count: 0,
      p50Ms: null,
      p95Ms: null,
      p99Ms: null,
      errorRatio: null,
    });
    expect(isReadSummary({ count: 2, errors: 0, buckets: [[3, 1]] })).toBe(false);
    expect(isReadSummary({ count: 1, errors: 2, buckets: [[3, 1]] })).toBe(false);
    expect(isReadSummary({ count: 1, errors: 0, buckets: [[999, 1]] })).toBe(false);
    expect(bucketUpperMs(0)).toBe(0.1);
  });
});

describe('closing record', () => {
  it('adds up read health and shows the real end from two instances on one store', async () => {
    const store = createMemoryStore();
    const a = createQuiesce({ store, instanceId: 'a', heartbeatMs: 20, soakMs: 10, logger: silentLogger });
    const b = createQuiesce({ store, instanceId: 'b', heartbeatMs: 20, soakMs: 10, logger: silentLogger });
    await Promise.all([a.start(), b.start()]);
    for (let i = 0; i < 100; i++) a.reportRead({ surface: 'http', durationMs: 2, error: false });
    for (let i = 0; i < 50; i++) b.reportRead({ surface: 'http', durationMs: 3, error: i < 5 });
    const w = await a.begin({
      reason: 'migration',
      message: 'Back soon',
      actor: 'ops',
      endsAt: new Date(Date.now() + 3_600_000).toISOString(),
    });
    await a.waitForPhase('frozen', { timeoutMs: 5000 });
    await vi.waitFor(() => expect(b.phase).toBe('frozen'));
    for (let i = 0; i < 40; i++) a.reportRead({ surface: 'http', durationMs: 20, error: false });
    for (let i = 0; i < 60; i++) b.reportRead({ surface: 'graphql', durationMs: 30, error: i < 6 });
    await a.end({ actor: 'ops', reason: 'migration done' });
    await a.waitForPhase('closed', { timeoutMs: 5000 });
    await vi.waitFor(() =>
      expect(Object.keys(a.window!.report).filter((k) => k.startsWith(READ_HEALTH_KEY_PREFIX))).toHaveLength(
        2,
      ),
    );
    const record = buildClosingRecord(a.window!, await a.audit({ windowId: w.id }));
    expect(record.readHealth.source).toBe('instances');
    expect(record.readHealth.before).toMatchObject({ count: 150, errorRatio: 5 / 150 });
    expect(record.readHealth.during).toMatchObject({ count: 100, errorRatio: 6 / 100 });
    expect(record.readHealth.during.p50Ms).toBeGreaterThanOrEqual(20);
    expect(record.readHealth.during.p99Ms).toBeGreaterThanOrEqual(30);
    expect(record.readHealth.instances.map((i) => [i.instanceId, i.before.count, i.during.count])).toEqual([
      ['a', 100, 40],
      ['b', 50, 60],
    ]);
    // The real end, not the planned one.
    expect(record.endedAt).not.toBeNull();
    expect(Date.parse(record.endedAt!)).toBeLessThan(Date.parse(record.plannedEnd!));
    expect(record.readOnlyMs).toBeGreaterThanOrEqual(0);
    expect(record.phases[0]).toMatchObject({ action: 'begin', actor: 'ops', reason: 'migration' });
    expect(record.phases.find((p) => p.action === 'end')).toMatchObject({
      actor: 'ops',
      reason: 'migration done',
      to: 'thawing',
    });
    expect(record.phases.at(-1)).toMatchObject({ to: 'closed' });
    // Every gap between audited versions has its reason.
    for (const g of record.versions.gaps) expect(g.reason).toMatch(/record updates/);
    expect(record.versions.contiguous).toBe(record.versions.gaps.length === 0);
    // The other instance made none of these changes, yet its view of the record has them all.
    await vi.waitFor(() => expect(b.window?.phase).toBe('closed'));
    await vi.waitFor(() => {
      const fromB = buildClosingRecord(b.window!, []);
      expect(fromB.phases.map((p) => `${p.action}:${p.to}:${p.actor}:${p.reason ?? ''}`)).toEqual([
        'begin:freezing:ops:migration',
        'phase:frozen:controller:all instances confirmed',
        'end:thawing:ops:migration done',
        'phase:backfilling:controller:soak complete',
        'phase:closed:controller:backfill complete',
      ]);
    });
    await a.close();
    await b.close();
  });

  it('a window whose reads were never summarized says so instead of showing zeros as data', () => {
    const record = buildClosingRecord({
      id: 'w',
      reason: 'r',
      message: 'm',
      startsAt: '2026-01-01T00:00:00.000Z',
      endsAt: null,
      phase: 'closed',
      autoEnd: false,
      freezeVersion: 1,
      frozenAt: null,
      endedAt: '2026-01-01T00:00:01.000Z',
      closedAt: '2026-01-01T00:00:02.000Z',
      stragglers: [],
      notices: {},
      report: { [`${READ_HEALTH_KEY_PREFIX}x`]: { before: 'junk', during: {} } },
    });
    expect(record.readHealth.source).toBe('none');
    expect(record.backfill).toBeNull();
    expect(record.readOnlyMs).toBe(1000);
    expect(record.instances).toEqual({
      confirmedFreeze: null,
      confirmedThaw: null,
      fenced: [],
      lost: [],
      takeovers: [],
    });
  });

  it('fenced and lost instances, takeovers and per-instance backfill come from the checklist', () => {
    const window = {
      id: 'w',
      reason: 'r',
      message: 'm',
      startsAt: '2026-01-01T00:00:00.000Z',
      endsAt: null,
      phase: 'closed' as const,
      autoEnd: false,
      freezeVersion: 1,
      frozenAt: '2026-01-01T00:00:00.500Z',
      endedAt: '2026-01-01T00:00:01.000Z',
      closedAt: '2026-01-01T00:00:02.000Z',
      stragglers: [{ instanceId: 'c', inFlight: 0, ackedVersion: 1, reason: 'lost' as const }],
      notices: {},
      report: {},
      // The checklist as the engine keeps it (core/src/checklist.ts).
      checklist: {
        ...emptyChecklist('a'),
        freeze: {
          version: 1,
          at: '2026-01-01T00:00:00.500Z',
          tookMs: 500,
          confirmed: 2,
          fenced: [{ instanceId: 'd', leaseUntil: '2026-01-01T00:00:00.400Z', ackedVersion: 0, inFlight: 0 }],
          unconfirmed: [],
        },
        thawVersion: 2,
        thaw: {
          version: 2,
          at: '2026-01-01T00:00:01.100Z',
          tookMs: 100,
          confirmed: 2,
          fenced: [],
          unconfirmed: [],
        },
        takeovers: [{ from: 'a', by: 'b', at: '2026-01-01T00:00:01.500Z', phase: 'backfilling' }],
        backfill: {
          startedAt: '2026-01-01T00:00:01.600Z',
          updatedAt: '2026-01-01T00:00:01.900Z',
          done: 5,
          total: 5,
          applied: 4,
          failed: 1,
          byInstance: {
            a: { done: 2, total: 2, applied: 2, failed: 0 },
            b: { done: 3, total: 3, applied: 2, failed: 1 },
          },
        },
      },
    };
    const record = buildClosingRecord(window);
    expect(record.instances).toEqual({
      confirmedFreeze: 2,
      confirmedThaw: 2,
      fenced: [{ instanceId: 'd', leaseUntil: '2026-01-01T00:00:00.400Z' }],
      lost: ['c'],
      takeovers: [{ from: 'a', by: 'b', at: '2026-01-01T00:00:01.500Z', phase: 'backfilling' }],
    });
    expect(record.backfill).toMatchObject({ applied: 4, failed: 1, done: 5, total: 5 });
    expect(record.backfill!.byInstance.b).toEqual({ done: 3, total: 3, applied: 2, failed: 1 });
  });

  it('version gaps are listed with their reason', () => {
    const entry = (version: number): AuditEntry => ({
      at: 'x',
      actor: 'a',
      action: 'phase',
      windowId: 'w',
      from: { mode: 'read-only', phase: 'freezing' },
      to: { mode: 'read-only', phase: 'frozen' },
      version,
    });
    expect(versionGaps([entry(5), entry(6), entry(9), entry(11)]).map((g) => [g.from, g.to])).toEqual([
      [7, 8],
      [10, 10],
    ]);
    expect(versionGaps([entry(1), entry(2)])).toEqual([]);
  });
});
