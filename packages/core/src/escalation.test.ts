import { describe, expect, it } from 'vitest';
import { createManualClock } from './clock.js';
import { createQuiesce } from './engine.js';
import { describeEscalation, type EscalationRecord, type RollbackContext } from './escalation.js';
import { createMemoryStore } from './memoryStore.js';
import type { Notifier, NotifierEvent } from './notifier.js';
import type { Operation } from './operation.js';
import type { ReadHealthReport } from './readHealth.js';

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
