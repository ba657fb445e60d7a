import { describe, expect, it } from 'vitest';
import { isQuiesceError } from '../src/errors.js';
import { createStoreKit, reconnectDelay, type StoreKitWants } from '../src/storeKit.js';
import { INITIAL_STATE, type QuiesceState } from '../src/window.js';

const state = (version: number): QuiesceState => ({
  ...INITIAL_STATE,
  version,
  updatedAt: new Date(0).toISOString(),
});

describe('store kit', () => {
  it('nothing stored is the initial state until a version was seen, then an outage naming where', () => {
    const kit = createStoreKit({ name: 'test store', location: 'key s' });
    expect(kit.missing()).toEqual(INITIAL_STATE);
    kit.decode(JSON.stringify(state(3)), '3');
    kit.seen(state(2));
    expect(kit.highest).toBe(3);
    const err = (() => {
      try {
        kit.missing();
      } catch (e) {
        return e;
      }
    })();
    expect(isQuiesceError(err) && err.code === 'STORE_UNAVAILABLE').toBe(true);
    expect(String(err)).toMatch(/test store: the state \(key s\) is gone after version 3/);
  });

  it('decode names the field: text that is not JSON, a version that disagrees with the stored one', () => {
    const kit = createStoreKit({ name: 'test store', location: 'key s' });
    expect(() => kit.decode('{nope')).toThrow(/state payload: not JSON \(key s\)/);
    expect(() => kit.decode(state(2), 3)).toThrow(/version: 2 does not match the stored version 3 \(key s\)/);
    expect(kit.decode(state(2))).toEqual(state(2));
    expect(kit.highest).toBe(2);
  });

  it('prepareWrite refuses a bad expectedVersion or state before anything is written', () => {
    const kit = createStoreKit({ name: 'test store' });
    for (const bad of [-1, 1.5, Number.NaN]) {
      expect(() => kit.prepareWrite(bad, state(1))).toThrow(/expectedVersion must be a non-negative integer/);
    }
    expect(() => kit.prepareWrite(0, { mode: 'sideways' } as never)).toThrow();
    expect(kit.prepareWrite(0, state(1))).toEqual({ state: state(1), payload: JSON.stringify(state(1)) });
  });

  it('fans out copies, reports errors, and tells the store which feeds are wanted; nothing after close', () => {
    const wants: StoreKitWants[] = [];
    const kit = createStoreKit({ name: 'test store', follow: (w) => wants.push(w) });
    const got: QuiesceState[] = [];
    const errors: Error[] = [];
    const off = kit.subscribe(
      (s) => got.push(s),
      (e) => errors.push(e),
    );
    const offRegistry = kit.subscribeRegistry(() => errors.push(new Error('registry')));
    const sent = state(1);
    kit.stateNotice(() => sent);
    kit.stateNotice(() => {
      throw new Error('unreadable');
    });
    kit.registryNotice();
    expect(got).toEqual([sent]);
    expect(got[0]).not.toBe(sent);
    expect(errors.map((e) => e.message)).toEqual(['unreadable', 'registry']);
    expect(kit.received).toEqual({ state: 2, registry: 1 });
    off();
    off();
    offRegistry();
    expect(wants).toEqual([
      { state: true, registry: false },
      { state: true, registry: true },
      { state: false, registry: true },
      { state: false, registry: false },
    ]);
    kit.subscribe(() => got.push(state(9)));
    expect(kit.close()).toBe(true);
    expect(kit.close()).toBe(false);
    kit.deliver(state(2));
    expect(got).toHaveLength(1);
    expect(() => kit.assertOpen('read')).toThrow(/test store: read after close\(\)/);
  });

  it('listening: wanted and the feed up; coming up, the registry looks again and a reconnected state feed reads', async () => {
    const read = async () => state(7);
    const kit = createStoreKit({ name: 'test store', read, follow: () => {} });
    const got: number[] = [];
    let looks = 0;
    kit.subscribe((s) => got.push(s.version));
    const offRegistry = kit.subscribeRegistry(() => looks++);
    expect(kit.listening).toEqual({ state: false, registry: false });
    kit.feedUp('registry');
    expect(kit.listening).toEqual({ state: false, registry: true });
    expect(looks).toBe(1);
    kit.feedUp('state');
    expect(kit.listening).toEqual({ state: true, registry: true });
    kit.feedDown();
    expect(kit.listening).toEqual({ state: false, registry: false });
    kit.feedUp('state', true);
    await expect.poll(() => got).toEqual([7]);
    kit.feedUp('registry');
    offRegistry();
    expect(kit.listening).toEqual({ state: true, registry: false });
    // Without a feed of its own (memory), a subscription is in place as soon as it is made.
    const inProcess = createStoreKit({ name: 'memory' });
    expect(inProcess.listening).toEqual({ state: false, registry: false });
    inProcess.subscribeRegistry(() => {});
    expect(inProcess.listening).toEqual({ state: false, registry: true });
  });

  it('an unreadable registry record is reported and skipped', () => {
    const kit = createStoreKit({ name: 'test store' });
    const errors: Error[] = [];
    kit.subscribe(
      () => {},
      (e) => errors.push(e),
    );
    expect(kit.readRecord('{', 'registry record a')).toBeNull();
    expect(kit.readRecord({ id: '' }, 'registry record b')).toBeNull();
    const ok = { id: 'c', startedAt: 'x', lastSeen: 1, ackedVersion: 0, inFlight: 0 };
    expect(kit.readRecord(JSON.stringify(ok), 'registry record c')).toEqual(ok);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/registry record a: not JSON/),
      expect.stringMatching(/registry record b/),
    ]);
  });

  it('reconnectDelay grows exponentially, is capped, and jitters within [ceiling/2, ceiling]', () => {
    for (let attempt = 0; attempt < 30; attempt++) {
      const ceiling = Math.min(5000, 50 * 2 ** Math.min(attempt, 20));
      const d = reconnectDelay(attempt, 50, 5000);
      expect(d).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
      expect(d).toBeLessThanOrEqual(ceiling);
    }
  });
});
