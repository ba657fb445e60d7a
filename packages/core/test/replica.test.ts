import { describe, expect, it } from 'vitest';
import { StateReplica } from '../src/replica.js';
import type { QuiesceOptions } from '../src/types.js';
import { INITIAL_STATE, type Phase, type QuiesceState } from '../src/window.js';
import { engineContext, testWindow } from './engineContext.js';

function replica(options: Omit<QuiesceOptions, 'clock'> = {}) {
  const ctx = engineContext({ instanceId: 'i', ...options });
  const log: string[] = [];
  const r = new StateReplica(ctx, {
    runPhaseHooks: async (phase) => {
      log.push(`hook ${phase}`);
    },
    readsInWindow: () => {},
    writesStopped: () => log.push('stopped'),
    applied: (s, prevPhase) => log.push(`applied v${s.version} (from ${prevPhase})`),
  });
  r.onWritable(() => log.push('writable'));
  return { r, ctx, log };
}

function stateAt(version: number, phase: Phase | null, scope?: string[]): QuiesceState {
  return {
    ...INITIAL_STATE,
    version,
    mode: phase === 'freezing' || phase === 'frozen' ? 'read-only' : 'read-write',
    window: phase ? testWindow(phase, { message: 'Back soon', ...(scope ? { scope } : {}) }) : null,
  };
}

describe('state replica', () => {
  it('applies states in order, once each, versions only growing; hooks run before the acknowledgement', async () => {
    const { r, log } = replica();
    await Promise.all([
      r.apply(stateAt(1, 'freezing')),
      r.apply(stateAt(2, 'frozen')),
      r.apply(stateAt(1, 'freezing')),
    ]);
    await r.apply(stateAt(3, 'thawing'));
    expect(r.state.version).toBe(3);
    expect(r.ackedVersion).toBe(3);
    expect(log).toEqual([
      'hook freezing',
      'stopped',
      'applied v1 (from null)',
      'hook frozen',
      'applied v2 (from freezing)',
      'hook thawing',
      'writable',
      'applied v3 (from frozen)',
    ]);
  });

  it('refuses with the window while it is read-only, within its scope', async () => {
    const { r } = replica();
    await r.apply(stateAt(1, 'freezing', ['http']));
    expect(r.view).toMatchObject({ readOnly: true, template: { windowId: 'w', message: 'Back soon' } });
    expect([...r.view.template!.scope!]).toEqual(['http']);
  });

  it('a fenced instance refuses every surface; the store fallback decides when the store is gone', async () => {
    const { r } = replica({ storeFallback: 'read-only' });
    await r.apply(stateAt(1, 'freezing', ['http']));
    r.fenced = true;
    r.recompute();
    expect(r.view.template).toMatchObject({ windowId: 'w', scope: null });
    r.fenced = false;
    await r.apply(stateAt(2, null));
    expect(r.view.readOnly).toBe(false);
    r.applyFallback();
    expect(r.view).toMatchObject({ readOnly: true, template: { windowId: 'store-unavailable' } });
    r.recover();
    expect(r.view.readOnly).toBe(false);
    r.view.leaseUntil = Number.NEGATIVE_INFINITY; // no lease yet
    r.recompute();
    expect(r.view.template).toMatchObject({ windowId: 'lease-expired' });
  });
});
