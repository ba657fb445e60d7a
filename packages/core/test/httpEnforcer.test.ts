import { afterEach, describe, expect, it } from 'vitest';
import { createQuiesce } from '../src/engine.js';
import { HttpEnforcer, isTrackedWrite } from '../src/httpEnforcer.js';
import type { QuiesceEngine } from '../src/types.js';

let engine: QuiesceEngine;
afterEach(async () => {
  await engine?.close();
});

async function frozen() {
  engine = createQuiesce({ soakMs: 0, retryAfter: { jitterSeconds: 0 } });
  await engine.start();
  await engine.begin({ reason: 'r', message: 'Paused', endsAt: new Date(Date.now() + 60_000).toISOString() });
  return engine;
}

const silent = { warn: () => {} };

describe('HttpEnforcer', () => {
  it('proceeds outside a window and takes the in-flight handle for a tracked write only', async () => {
    engine = createQuiesce();
    await engine.start();
    const e = new HttpEnforcer(engine, { reportReads: false });
    const write = e.enforce({ method: 'POST', target: '/orders', headers: {} });
    expect(write).toMatchObject({ respond: null, inFlight: expect.any(Object) });
    expect((await engine.status()).inFlight.count).toBe(1);
    if (!(write instanceof Promise) && write.respond === null) write.inFlight?.done();
    const allowed = e.enforce({
      method: 'POST',
      target: '/login',
      headers: {},
      route: { annotation: { classification: 'write', policy: 'allow' } },
    });
    expect(allowed).toMatchObject({ respond: null, inFlight: null });
  });

  it('refuses with the normal refusal when the principal function throws, and logs why', async () => {
    const warned: unknown[] = [];
    const e = new HttpEnforcer(await frozen(), { logger: { warn: (m, f) => void warned.push([m, f]) } });
    const v = e.enforce({
      method: 'POST',
      target: '/orders',
      headers: {},
      principal: () => {
        throw new Error('session store down');
      },
    });
    expect(v).toMatchObject({ respond: { status: 503, headers: { 'retry-after': expect.any(String) } } });
    expect(JSON.stringify(warned)).toMatch(/session store down/);
  });

  it('refuses when a handler disagrees with an early pass, and reuses an agreeing one without deciding twice', async () => {
    const e = new HttpEnforcer(await frozen(), { logger: silent });
    const facts = {
      method: 'POST',
      target: '/orders/5',
      headers: {},
      route: { annotation: { classification: 'write', policy: 'allow' } as const },
    };
    const early = e.precheck(facts);
    expect(early).toMatchObject({ respond: null, decision: { outcome: 'proceed', policy: 'allow' } });
    if (early.respond !== null) throw new Error('unreachable');
    // The handler that actually runs has no policy: refused.
    expect(e.enforce({ method: 'POST', target: '/orders/5', headers: {}, earlier: early })).toMatchObject({
      respond: { status: 503 },
    });
    expect(e.enforce({ ...facts, earlier: early })).toMatchObject({ respond: null });
    expect((await engine.status()).counters.refused.http).toBe(1);
  });

  it('answers a refused or dropped write from precheck, before any body is read', async () => {
    const e = new HttpEnforcer(await frozen(), { logger: silent });
    expect(e.precheck({ method: 'POST', target: '/orders', headers: {} })).toMatchObject({
      respond: { status: 503 },
      unreadBody: true,
    });
  });

  it('isTrackedWrite: a proceeding write that is not allowed', () => {
    const base = { outcome: 'proceed', reason: 'no-window' } as const;
    expect(isTrackedWrite({ ...base, classification: 'write', policy: 'block' })).toBe(true);
    expect(isTrackedWrite({ ...base, classification: 'write', policy: 'allow' })).toBe(false);
    expect(isTrackedWrite({ ...base, classification: 'read', policy: 'allow' })).toBe(false);
  });
});
