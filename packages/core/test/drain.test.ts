import { describe, expect, it } from 'vitest';
import { Drain } from '../src/drain.js';
import type { InstanceRecord } from '../src/store.js';
import { Transitions } from '../src/transition.js';
import { INITIAL_STATE, type QuiesceState } from '../src/window.js';
import { engineContext, testWindow } from './engineContext.js';

const record = (id: string, over: Partial<InstanceRecord>): InstanceRecord => ({
  id,
  startedAt: new Date(0).toISOString(),
  lastSeen: 0,
  ackedVersion: 0,
  inFlight: 0,
  ...over,
});

function drain(state: () => QuiesceState = () => INITIAL_STATE) {
  const ctx = engineContext({
    instanceId: 'me',
    drainDeadlineMs: 1000,
    heartbeatMs: 100,
    leaseTtlMs: 500,
    clockSkewMs: 50,
  });
  const transitions = new Transitions(ctx, { apply: async () => {}, synced: () => {} });
  return { ctx, drain: new Drain(ctx, { state, ackedVersion: () => 7, transitions }) };
}

describe('drain: where every instance stands against a version', () => {
  it('confirmed, fenced by its own lease, or blocking (and why)', async () => {
    const { ctx, drain: d } = drain();
    const now = ctx.clock.now();
    const registry = ctx.store.registry!;
    await registry.upsert(record('acked', { ackedVersion: 7, leaseUntil: now + 500 }));
    await registry.upsert(
      record('busy', { ackedVersion: 7, inFlight: 2, leaseUntil: now + 500, oldestOperation: 'POST /x' }),
    );
    await registry.upsert(record('behind', { ackedVersion: 6, leaseUntil: now + 500 }));
    await registry.upsert(record('gone', { ackedVersion: 3, leaseUntil: now - 51, lastSeen: now - 600 }));
    await registry.upsert(record('skewed', { ackedVersion: 3, leaseUntil: now - 50 })); // within the skew margin
    const freeze = await d.assess('freeze', 7);
    expect(freeze.confirmed.sort()).toEqual(['acked', 'me']);
    expect(freeze.fenced.map((f) => [f.instanceId, f.reason])).toEqual([['gone', 'fenced']]);
    expect(freeze.blocking.map((b) => [b.instanceId, b.reason]).sort()).toEqual([
      ['behind', 'not-acknowledged'],
      ['busy', 'in-flight'],
      ['skewed', 'not-acknowledged'],
    ]);
    // A thaw does not wait for writes in flight.
    expect((await d.assess('thaw', 7)).confirmed.sort()).toEqual(['acked', 'busy', 'me']);
    // This instance's own writes hold a freeze.
    const h = ctx.inflight.track({ surface: 'http', name: 'POST /mine' });
    expect((await d.assess('freeze', 7)).blocking).toContainEqual(
      expect.objectContaining({
        instanceId: 'me',
        reason: 'in-flight',
        oldestOperation: 'POST /mine',
        ackedVersion: 7,
      }),
    );
    h.done();
    expect(await d.pickLive(false)).toBe('acked');
    expect(await d.pickLive(true)).toBeNull(); // nobody has handlers
  });

  it('confirm waits on the engine clock: past the drain deadline the stragglers are named', async () => {
    const window = testWindow('freezing', { freezeVersion: 7 });
    const state: QuiesceState = { ...INITIAL_STATE, version: 7, mode: 'read-only', window };
    const { ctx, drain: d } = drain(() => state);
    const now = ctx.clock.now();
    // Acknowledged, but a write that never ends: named once the deadline passes.
    await ctx.store.registry!.upsert(
      record('busy', { ackedVersion: 7, inFlight: 1, leaseUntil: now + 60_000 }),
    );
    let result: Awaited<ReturnType<Drain['confirm']>> | undefined;
    void d.confirm('freeze', 'w', 7, 'freezing', now).then((r) => {
      result = r;
    });
    await ctx.clock.advance(900);
    expect(result).toBeUndefined();
    await ctx.clock.advance(200);
    await expect.poll(() => result).toBeDefined();
    expect(result!.confirmation).toMatchObject({
      version: 7,
      confirmed: 1,
      confirmedIds: ['me'],
      unconfirmed: ['busy'],
    });
    expect(result!.stragglers.map((s) => s.instanceId)).toEqual(['busy']);
  });
});
