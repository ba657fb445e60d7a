import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../src/clock.js';
import { createQuiesce } from '../src/engine.js';
import {
  describeEscalation,
  type EscalationEvent,
  EscalationPolicy,
  type EscalationRecord,
  escalationRows,
  type RollbackContext,
} from '../src/escalation.js';
import { createMemoryStore } from '../src/memoryStore.js';
import { type Notifier, type NotifierEvent, silentLogger } from '../src/notifier.js';
import type { Operation } from '../src/operation.js';
import type { ReadHealthReport } from '../src/readHealth.js';
import type { ReadFinding } from '../src/readSignals.js';
import type { QuiesceEngine } from '../src/types.js';
import type { MaintenanceWindow, QuiesceState } from '../src/window.js';

/** Property runs per property; CI runs QUIESCE_PROPERTY_RUNS=1000, the default keeps a local run short. */
const RUNS = Number(process.env.QUIESCE_PROPERTY_RUNS ?? 200);

const WRITE: Operation = { surface: 'http', name: 'POST /orders', method: 'POST', path: '/orders' };
const MIN = 60_000;

function recorder(): Notifier & { events: NotifierEvent[] } {
  const events: NotifierEvent[] = [];
  return {
    name: 'recorder',
    events,
    async notify(e) {
      events.push(e);
    },
  };
}

describe('escalation policy', () => {
  it('extends twice, then stops at the limit; the rollback runs once with the plan and the evidence', async () => {
    const clock = createManualClock();
    const notifier = recorder();
    const rollbacks: RollbackContext[] = [];
    const escalations: ReadHealthReport[] = [];
    const engine = createQuiesce({
      clock,
      notifiers: [notifier],
      retryAfter: { jitterSeconds: 0, capSeconds: 24 * 3600 },
      readHealth: { minSamples: 20 },
      escalation: {
        extendBy: 10 * MIN,
        maxExtensions: 2,
        rollback: async (ctx) => {
          rollbacks.push(ctx);
          return { switchedTo: 'replica-2' };
        },
      },
    });
    engine.on('escalate', (r) => escalations.push(r));
    try {
      await engine.start();
      for (let i = 0; i < 200; i++) engine.reportRead({ surface: 'http', durationMs: 5, error: false });
      const start = clock.now();
      const w = await engine.begin({
        reason: 'migration',
        message: 'read-only',
        endsAt: new Date(start + 30 * MIN).toISOString(),
        rollbackPlan: 'point reads at replica-2',
      });
      const retryAfter = () => {
        const d = engine.decide(WRITE);
        return d.outcome === 'refuse' ? d.retryAfter : null;
      };
      expect(retryAfter()).toBe(30 * 60);
      const record = () => engine.window!.report.escalation as EscalationRecord | undefined;
      const slowReads = (n: number) => {
        for (let i = 0; i < n; i++) engine.reportRead({ surface: 'http', durationMs: 80, error: true });
      };

      slowReads(64); // first check: degraded → escalation 1
      await expect.poll(() => record()?.rollback?.status).toBe('ok');
      expect(record()!.events).toMatchObject([
        { outcome: 'extended', endsAt: new Date(start + 40 * MIN).toISOString() },
      ]);
      expect(retryAfter()).toBe(40 * 60);

      slowReads(64); // still degraded since the extension → escalation 2
      await expect.poll(() => record()?.events.length).toBe(2);
      expect(engine.window!.endsAt).toBe(new Date(start + 50 * MIN).toISOString());
      expect(retryAfter()).toBe(50 * 60);

      slowReads(64); // escalation 3: the limit
      await expect.poll(() => record()?.events.length).toBe(3);
      expect(escalations).toHaveLength(3);
      expect(record()).toMatchObject({
        extensions: 2,
        events: [{ outcome: 'extended' }, { outcome: 'extended' }, { outcome: 'limit' }],
        rollback: {
          status: 'ok',
          instanceId: engine.instanceId,
          plan: 'point reads at replica-2',
          result: { switchedTo: 'replica-2' },
        },
      });
      expect(engine.window!.endsAt).toBe(new Date(start + 50 * MIN).toISOString());

      expect(rollbacks).toHaveLength(1);
      expect(rollbacks[0]).toMatchObject({ rollbackPlan: 'point reads at replica-2', window: { id: w.id } });
      expect(rollbacks[0]!.evidence.reasons.join()).toMatch(/read p95 80.0ms is over 2x the baseline 5.0ms/);

      const audit = await engine.audit({ windowId: w.id });
      expect(audit.filter((e) => e.action === 'extend').map((e) => e.actor)).toEqual([
        'escalation',
        'escalation',
      ]);
      expect(audit.filter((e) => e.action === 'extend')[0]!.reason).toMatch(/^reads degraded: read p95/);
      expect(audit.map((e) => e.reason)).toEqual(
        expect.arrayContaining(['escalation: rollback started', 'escalation: rollback ran']),
      );
      await expect.poll(() => notifier.events.filter((e) => e.kind === 'extended').length).toBe(2);
      expect(describeEscalation(engine.window!)).toMatch(
        /^3 escalations: extended 2×, at the limit 1× \(last: read p95 80.0ms is over 2x .*\) · rollback ok$/,
      );

      // The record keeps the limit and, per escalation, the figures each rule compared.
      expect(record()).toMatchObject({ maxExtensions: 2, extendBy: 10 * MIN });
      const latency: ReadFinding = {
        metric: 'reads',
        stat: 'p95Ms',
        kind: 'ratio',
        direction: 'above',
        limit: 2,
        baseline: 5,
        during: 80,
        baselineSamples: 200,
        duringSamples: 64,
        reason: 'read p95 80.0ms is over 2x the baseline 5.0ms',
      };
      const errors: ReadFinding = {
        metric: 'reads',
        stat: 'errorRatio',
        kind: 'delta',
        direction: 'above',
        limit: 0.05,
        baseline: 0,
        during: 1,
        baselineSamples: 200,
        duringSamples: 64,
        reason: 'read error ratio 100.0% is above the baseline 0.0%',
      };
      for (const e of record()!.events) {
        expect(e.findings).toEqual([latency, errors]);
        expect(e.reasons).toEqual([latency.reason, errors.reason]);
      }
      expect(rollbacks[0]!.evidence.findings).toEqual([latency, errors]);
      const view = escalationRows(engine.window)!;
      expect(view).toMatchObject({
        extensions: 2,
        maxExtensions: 2,
        extendBy: 10 * MIN,
        extensionsFigure: '2 / 2',
        policy: 'extended by 10 min per escalation, at most 2 times',
        summary: describeEscalation(engine.window!),
      });
      expect(view.rows.map((r) => [r.outcome, r.extension])).toEqual([
        ['extended', `extended: now ends ${new Date(start + 40 * MIN).toISOString()}`],
        ['extended', `extended: now ends ${new Date(start + 50 * MIN).toISOString()}`],
        ['limit', 'none: extended 2 of 2 times already'],
      ]);
      expect(view.rows[0]!.evidence).toEqual([
        'read p95 80 ms during (64 reads) vs 5 ms before (200 reads) · limit: above 2× the baseline (ratio)',
        'read errors 100% during (64 reads) vs 0% before (200 reads) · limit: above the baseline + 5% (delta)',
      ]);
      expect(view.rollback).toMatch(
        new RegExp(
          `^ok on ${engine.instanceId}, started \\S+, finished \\S+ · plan: point reads at replica-2 · evidence: read p95 80.0ms .* · result: {"switchedTo":"replica-2"}$`,
        ),
      );
    } finally {
      await engine.close();
    }
  });

  it('the limits hold across two engines sharing a store; a failing rollback is recorded', async () => {
    const clock = createManualClock();
    const store = createMemoryStore();
    let runs = 0;
    const make = (id: string) =>
      createQuiesce({
        clock,
        store,
        instanceId: id,
        readHealth: { minSamples: 20 },
        escalation: {
          extendBy: 5 * MIN,
          maxExtensions: 1,
          rollback: () => {
            runs++;
            throw new Error('replica unreachable');
          },
        },
      });
    const a = make('a');
    const b = make('b');
    try {
      await Promise.all([a.start(), b.start()]);
      for (const e of [a, b])
        for (let i = 0; i < 100; i++) e.reportRead({ surface: 'http', durationMs: 5, error: false });
      await a.begin({ reason: 'r', message: 'm', endsAt: new Date(clock.now() + 30 * MIN).toISOString() });
      await expect.poll(() => b.readOnly).toBe(true);
      for (const e of [a, b])
        for (let i = 0; i < 64; i++) e.reportRead({ surface: 'http', durationMs: 90, error: false });
      const record = () => a.window?.report.escalation as EscalationRecord | undefined;
      await expect.poll(() => record()?.events.length).toBe(2);
      await expect.poll(() => record()?.rollback?.status).toBe('failed');
      expect(record()!.extensions).toBe(1);
      expect(
        record()!
          .events.map((e) => e.outcome)
          .sort(),
      ).toEqual(['extended', 'limit']);
      expect(record()!.rollback!.error).toBe('replica unreachable');
      expect(runs).toBe(1);
    } finally {
      await a.close();
      await b.close();
      await store.close();
    }
  });

  it('extend({ windowId }) extends only that window (what an escalation claimed for)', async () => {
    const engine = createQuiesce({ clock: createManualClock() });
    try {
      const w = await engine.begin({ reason: 'r', message: 'm' });
      await expect(engine.extend({ windowId: 'win_other', byMs: MIN })).rejects.toMatchObject({
        code: 'NO_ACTIVE_WINDOW',
      });
      expect(engine.window!.endsAt).toBeNull();
      expect((await engine.extend({ windowId: w.id, byMs: MIN })).endsAt).not.toBeNull();
    } finally {
      await engine.close();
    }
  });

  it('without the option an escalation is an event only; bad options name the field', async () => {
    const clock = createManualClock();
    const engine = createQuiesce({ clock, readHealth: { minSamples: 20 } });
    try {
      await engine.start();
      for (let i = 0; i < 100; i++) engine.reportRead({ surface: 'http', durationMs: 5, error: false });
      await engine.begin({ reason: 'r', message: 'm' });
      let fired = 0;
      engine.on('escalate', () => fired++);
      for (let i = 0; i < 256; i++) engine.reportRead({ surface: 'http', durationMs: 90, error: false });
      expect(fired).toBe(1); // once per window, as before
      expect(engine.window!.endsAt).toBeNull();
      expect(engine.window!.report.escalation).toBeUndefined();
    } finally {
      await engine.close();
    }
    expect(() => createQuiesce({ escalation: { extendBy: 0 } })).toThrow(
      expect.objectContaining({ field: 'escalation.extendBy' }),
    );
    expect(() => createQuiesce({ escalation: { extendBy: 1000, maxExtensions: -1 } })).toThrow(
      expect.objectContaining({ field: 'escalation.maxExtensions' }),
    );
    expect(() => createQuiesce({ escalation: { extendBy: 1000, rollback: 'yes' as never } })).toThrow(
      expect.objectContaining({ field: 'escalation.rollback' }),
    );
  });
});

describe('the escalation record', () => {
  it('keeps the figures of an absolute and a ratio signal rule: the baseline and during numbers, the limits, the samples', async () => {
    const clock = createManualClock();
    const engine = createQuiesce({
      clock,
      readHealth: {
        minSamples: 20,
        signals: {
          deltaS: [
            { kind: 'absolute', above: 0.6 },
            { kind: 'ratio', factor: 2 },
          ],
        },
      },
      escalation: { extendBy: 5 * MIN, maxExtensions: 1 },
    });
    try {
      await engine.start();
      // Baseline: 40 answers, deltaS 0 and 0.5 in turn (mean 0.25); latency stays 5 ms throughout.
      for (let i = 0; i < 40; i++)
        engine.reportRead({
          surface: 'http',
          durationMs: 5,
          error: false,
          signals: { deltaS: (i % 2) * 0.5 },
        });
      await engine.begin({
        reason: 'r',
        message: 'm',
        endsAt: new Date(clock.now() + 30 * MIN).toISOString(),
      });
      const drift = () => {
        for (let i = 0; i < 64; i++)
          engine.reportRead({ surface: 'http', durationMs: 5, error: false, signals: { deltaS: 1 } });
      };
      const record = () => engine.window!.report.escalation as EscalationRecord | undefined;
      drift();
      await expect.poll(() => record()?.events.length).toBe(1);
      drift();
      await expect.poll(() => record()?.events.length).toBe(2);

      const figures = { metric: 'deltaS', stat: 'mean', direction: 'above', baseline: 0.25, during: 1 };
      const samples = { baselineSamples: 40, duringSamples: 64 };
      const expected = [
        { ...figures, ...samples, kind: 'absolute', limit: 0.6, reason: 'deltaS mean 1 is above 0.600' },
        {
          ...figures,
          ...samples,
          kind: 'ratio',
          limit: 2,
          reason: 'deltaS mean 1 is over 2x the baseline 0.250',
        },
      ];
      expect(record()).toMatchObject({
        extensions: 1,
        maxExtensions: 1,
        extendBy: 5 * MIN,
        events: [
          { outcome: 'extended', findings: expected },
          { outcome: 'limit', findings: expected },
        ],
      });
      const view = escalationRows(engine.window)!;
      expect(view.extensionsFigure).toBe('1 / 1');
      expect(view.policy).toBe('extended by 5 min per escalation, at most 1 time');
      expect(view.rows.map((r) => r.evidence)).toEqual([
        [
          'deltaS mean 1 during (64 reads) vs 0.25 before (40 reads) · limit: above 0.6 (absolute)',
          'deltaS mean 1 during (64 reads) vs 0.25 before (40 reads) · limit: above 2× the baseline (ratio)',
        ],
        [
          'deltaS mean 1 during (64 reads) vs 0.25 before (40 reads) · limit: above 0.6 (absolute)',
          'deltaS mean 1 during (64 reads) vs 0.25 before (40 reads) · limit: above 2× the baseline (ratio)',
        ],
      ]);
      expect(view.rows[1]!.extension).toBe('none: extended 1 of 1 times already');
      expect(view.rows[1]!.findings).toEqual(record()!.events[1]!.findings);
      expect(view.rollback).toBeNull();
    } finally {
      await engine.close();
    }
  });

  it("before the first escalation the rows show this instance's limits; the record's win once written", async () => {
    const engine = createQuiesce({ escalation: { extendBy: 600_000, maxExtensions: 2 } });
    expect(engine.options.escalation).toEqual({ maxExtensions: 2, extendBy: 600_000 });
    expect(createQuiesce({}).options.escalation).toBeNull();
    const w = { report: {} } as Pick<MaintenanceWindow, 'report'>;
    expect(escalationRows(w)).toBeNull();
    expect(escalationRows(null, engine.options.escalation)).toBeNull();
    expect(escalationRows(w, engine.options.escalation)).toMatchObject({
      recorded: false,
      extensionsFigure: '0 / 2',
      policy: 'extended by 10 min per escalation, at most 2 times',
      summary: null,
      rows: [],
      rollback: null,
    });
    const recorded = {
      report: { escalation: { extensions: 1, events: [], maxExtensions: 3, extendBy: 60_000 } },
    };
    expect(escalationRows(recorded, engine.options.escalation)).toMatchObject({
      recorded: true,
      extensionsFigure: '1 / 3',
      policy: 'extended by 1 min per escalation, at most 3 times',
    });
    await engine.close();
  });

  it('a record of the old shape (no limit, reasons only) still renders, with the same summary line', () => {
    const old = {
      extensions: 1,
      events: [
        {
          at: '2026-11-29T10:00:00.000Z',
          instanceId: 'a',
          reasons: ['read p95 90.0ms is over 2x the baseline 5.0ms'],
          outcome: 'extended',
          endsAt: '2026-11-29T11:10:00.000Z',
        },
        {
          at: '2026-11-29T10:05:00.000Z',
          instanceId: 'b',
          reasons: ['read p95 95.0ms is over 2x the baseline 5.0ms'],
          outcome: 'limit',
        },
      ],
      rollback: {
        status: 'failed',
        instanceId: 'a',
        startedAt: '2026-11-29T10:00:00.000Z',
        finishedAt: '2026-11-29T10:00:01.000Z',
        plan: null,
        evidence: ['read p95 90.0ms is over 2x the baseline 5.0ms'],
        error: 'replica unreachable',
      },
    };
    const w = { report: { escalation: old } };
    expect(describeEscalation(w)).toBe(
      '2 escalations: extended 1×, at the limit 1× (last: read p95 95.0ms is over 2x the baseline 5.0ms) · rollback failed: replica unreachable',
    );
    expect(escalationRows(w)).toEqual({
      recorded: true,
      extensions: 1,
      maxExtensions: null,
      extendBy: null,
      extensionsFigure: '1',
      policy: null,
      summary: describeEscalation(w),
      rows: [
        {
          at: '2026-11-29T10:00:00.000Z',
          instanceId: 'a',
          outcome: 'extended',
          extension: 'extended: now ends 2026-11-29T11:10:00.000Z',
          evidence: ['read p95 90.0ms is over 2x the baseline 5.0ms'],
          findings: [],
        },
        {
          at: '2026-11-29T10:05:00.000Z',
          instanceId: 'b',
          outcome: 'limit',
          extension: 'none: extended 1 time already',
          evidence: ['read p95 95.0ms is over 2x the baseline 5.0ms'],
          findings: [],
        },
      ],
      rollback:
        'failed on a, started 2026-11-29T10:00:00.000Z, finished 2026-11-29T10:00:01.000Z · plan: none · evidence: read p95 90.0ms is over 2x the baseline 5.0ms · error: replica unreachable',
    });
    expect(escalationRows({ report: {} })).toBeNull();
    expect(escalationRows(null)).toBeNull();
  });
});

describe('escalation limits (properties)', () => {
  /**
   * Instances sharing one stored state: each runs the policy as the engine wires it, with a
   * compare-and-set that applies `mutate` to the newest state (what the engine's retried
   * transition amounts to) and an extend that may fail.
   */
  function fleet(instances: number, maxExtensions: number, extendFails: (call: number) => boolean) {
    const clock = createManualClock();
    const start = clock.now();
    let state = {
      version: 1,
      window: {
        id: 'win_p',
        phase: 'frozen',
        endsAt: new Date(start + 30 * MIN).toISOString(),
        rollbackPlan: 'plan',
        report: {},
      },
    } as unknown as QuiesceState;
    const yieldSome = async (n: number) => {
      for (let i = 0; i < n; i++) await Promise.resolve();
    };
    let extendCalls = 0;
    let rollbacks = 0;
    const policies = Array.from({ length: instances }, (_, i) => {
      const engine = {
        instanceId: `i${i}`,
        get window() {
          return state.window;
        },
        async extend({ windowId, byMs }: { windowId: string; byMs: number }) {
          await yieldSome(i + 1);
          if (extendFails(extendCalls++)) throw new Error('store unreachable');
          const w = state.window!;
          if (w.id !== windowId) throw new Error('NO_ACTIVE_WINDOW');
          const endsAt = new Date(Date.parse(w.endsAt!) + byMs).toISOString();
          state = { ...state, version: state.version + 1, window: { ...w, endsAt } };
          return state.window as MaintenanceWindow;
        },
      };
      return new EscalationPolicy(
        {
          extendBy: MIN,
          maxExtensions,
          rollback: async () => {
            rollbacks++;
            await yieldSome(3);
            return 'done';
          },
        },
        {
          engine: engine as unknown as QuiesceEngine,
          clock,
          log: silentLogger,
          async transition(_reason, mutate) {
            await yieldSome(i + 1);
            const next = mutate(state);
            if (next) state = next;
            return next;
          },
        },
      );
    });
    return {
      policies,
      start,
      state: () => state,
      rollbacks: () => rollbacks,
    };
  }

  const report = {
    healthy: false,
    reasons: ['deltaS mean 1 is above 0.600'],
    findings: [
      {
        metric: 'deltaS',
        stat: 'mean',
        kind: 'absolute',
        direction: 'above',
        limit: 0.6,
        baseline: 0.25,
        during: 1,
        baselineSamples: 40,
        duringSamples: 64,
        reason: 'deltaS mean 1 is above 0.600',
      },
    ],
  } as unknown as ReadHealthReport;

  it('for any sequence of escalate events across instances: extensions never exceed maxExtensions, the rollback runs at most once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 4 }),
        fc.array(fc.record({ instance: fc.nat(2), settle: fc.boolean() }), { maxLength: 12 }),
        fc.func(fc.boolean()),
        async (instances, maxExtensions, sequence, fails) => {
          const f = fleet(instances, maxExtensions, (call) => fails(call));
          for (const step of sequence) {
            void f.policies[step.instance % instances]!.onEscalate(report);
            if (step.settle) await Promise.all(f.policies.map((p) => p.idle()));
          }
          await Promise.all(f.policies.map((p) => p.idle()));
          // A rollback may still be settling after the escalation that claimed it.
          await Promise.all(f.policies.map((p) => p.idle()));

          const w = f.state().window!;
          const rec = w.report.escalation as EscalationRecord | undefined;
          const n = sequence.length;
          if (n === 0) {
            expect(rec).toBeUndefined();
            expect(f.rollbacks()).toBe(0);
            return;
          }
          const count = (o: EscalationEvent['outcome']) => rec!.events.filter((e) => e.outcome === o).length;
          expect(rec!.extensions).toBeLessThanOrEqual(maxExtensions);
          expect(rec!.extensions).toBe(Math.min(n, maxExtensions));
          expect(count('extended') + count('failed')).toBe(rec!.extensions);
          expect(count('limit')).toBe(n - rec!.extensions);
          expect(rec!.maxExtensions).toBe(maxExtensions);
          expect(Date.parse(w.endsAt!) - (f.start + 30 * MIN)).toBe(count('extended') * MIN);
          expect(f.rollbacks()).toBe(1);
          expect(rec!.rollback).toMatchObject({ status: 'ok', result: 'done' });
          for (const e of rec!.events) expect(e.findings).toEqual(report.findings);
          const view = escalationRows(w)!;
          expect(view.extensionsFigure).toBe(`${rec!.extensions} / ${maxExtensions}`);
          expect(view.rows).toHaveLength(n);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
