import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlagdProvider } from '@openfeature/flagd-provider';
import {
  type EvaluationContext,
  InMemoryProvider,
  OpenFeature,
  OpenFeatureEventEmitter,
  type Provider,
  ProviderEvents,
  type ResolutionDetails,
} from '@openfeature/server-sdk';
import { createManualClock, createQuiesce, type Operation, type QuiesceEngine } from '@quiesce/core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type FlagFollower, followFlag } from '../src/index.js';

const WRITE: Operation = { surface: 'http', name: 'POST /orders', method: 'POST', path: '/orders' };

const flag = (on: boolean, disabled = false) => ({
  read_only: { variants: { on: true, off: false }, defaultVariant: on ? 'on' : 'off', disabled },
});

/** A real Provider whose answers the test controls: it can fail, or change without telling anyone. */
class ControlledProvider implements Provider {
  readonly metadata = { name: 'controlled' } as const;
  readonly runsOn = 'server';
  readonly events = new OpenFeatureEventEmitter();
  value = false;
  failing: string | null = null;
  async resolveBooleanEvaluation(
    _key: string,
    _d: boolean,
    _c: EvaluationContext,
  ): Promise<ResolutionDetails<boolean>> {
    if (this.failing) throw new Error(this.failing);
    return { value: this.value, reason: 'STATIC', variant: this.value ? 'on' : 'off' };
  }
  async resolveStringEvaluation(): Promise<ResolutionDetails<string>> {
    throw new Error('not used');
  }
  async resolveNumberEvaluation(): Promise<ResolutionDetails<number>> {
    throw new Error('not used');
  }
  async resolveObjectEvaluation<T>(): Promise<ResolutionDetails<T>> {
    throw new Error('not used');
  }
}

let seq = 0;
const open: Array<{ engine: QuiesceEngine; follower: FlagFollower }> = [];
afterEach(async () => {
  for (const { engine, follower } of open.splice(0)) {
    follower.close();
    await engine.close();
  }
});
afterAll(() => OpenFeature.close());

async function setup(provider: Provider, opts: Partial<Parameters<typeof followFlag>[0]> = {}) {
  const domain = `test-${++seq}`;
  await OpenFeature.setProviderAndWait(domain, provider);
  const clock = createManualClock();
  const engine = createQuiesce({ clock, soakMs: 10, heartbeatMs: 60_000 });
  await engine.start();
  const follower = followFlag({
    engine,
    client: OpenFeature.getClient(domain),
    window: { message: 'Read-only while we move the database.', contact: 'ops@example.com' },
    ...opts,
  });
  await follower.start();
  open.push({ engine, follower });
  return { engine, follower, clock };
}

describe('followFlag with the in-memory provider', () => {
  it('flag on begins a window named after the flag and the provider; flag off ends it', async () => {
    const provider = new InMemoryProvider(flag(false));
    const { engine } = await setup(provider);
    expect(engine.window).toBeNull();
    expect(engine.decide(WRITE).outcome).toBe('proceed');

    provider.putConfiguration(flag(true));
    await expect.poll(() => engine.decide(WRITE).outcome).toBe('refuse');
    const w = engine.window!;
    expect(w).toMatchObject({
      message: 'Read-only while we move the database.',
      contact: 'ops@example.com',
      openedBy: 'openfeature:read_only@in-memory',
    });
    const begin = (await engine.audit()).find((e) => e.action === 'begin')!;
    expect(begin).toMatchObject({
      actor: 'openfeature:read_only@in-memory',
      reason: 'flag read_only turned on',
    });

    provider.putConfiguration(flag(false));
    await expect.poll(() => engine.decide(WRITE).outcome).toBe('proceed');
    expect(engine.window).toMatchObject({
      id: w.id,
      phase: expect.stringMatching(/thawing|backfilling|closed/),
    });
    const end = (await engine.audit()).find((e) => e.action === 'end')!;
    expect(end).toMatchObject({
      actor: 'openfeature:read_only@in-memory',
      reason: 'flag read_only turned off',
    });
  });

  it('a disabled flag counts as off', async () => {
    const provider = new InMemoryProvider(flag(true));
    const { engine } = await setup(provider);
    expect(engine.readOnly).toBe(true);
    provider.putConfiguration(flag(true, true));
    await expect.poll(() => engine.readOnly).toBe(false);
  });

  it('leaves a window opened by someone else alone, and never opens a second one', async () => {
    const provider = new InMemoryProvider(flag(false));
    const { engine, follower } = await setup(provider);
    const manual = await engine.begin({ reason: 'index rebuild', message: 'Rebuilding', actor: 'alice' });
    provider.putConfiguration(flag(true));
    await expect.poll(() => follower.status().applied).toBe(true);
    provider.putConfiguration(flag(false));
    await expect.poll(() => follower.status().applied).toBe(false);
    expect(engine.window).toMatchObject({ id: manual.id, openedBy: 'alice' });
    expect(engine.readOnly).toBe(true);
    expect((await engine.audit()).filter((e) => e.action === 'begin')).toHaveLength(1);
    expect((await engine.audit()).filter((e) => e.action === 'end')).toHaveLength(0);
  });
});

describe('the conditional end a follower relies on', () => {
  it('engine.end({ windowId }) ends only that window', async () => {
    const engine = createQuiesce({ soakMs: 10 });
    try {
      const w = await engine.begin({ reason: 'r', message: 'm' });
      await expect(engine.end({ windowId: 'win_someone_else' })).rejects.toMatchObject({
        code: 'NO_ACTIVE_WINDOW',
      });
      expect(engine.readOnly).toBe(true);
      await engine.end({ windowId: w.id });
      expect(engine.readOnly).toBe(false);
    } finally {
      await engine.close();
    }
  });
});

describe('followFlag when the provider misbehaves', () => {
  it('without an event, the periodic evaluation catches the change (safety net)', async () => {
    const provider = new ControlledProvider();
    const { engine, clock } = await setup(provider, { pollMs: 5000 });
    provider.value = true; // no ConfigurationChanged event
    await clock.advance(4999);
    expect(engine.readOnly).toBe(false);
    await clock.advance(1);
    await expect.poll(() => engine.readOnly).toBe(true);
  });

  it('a provider that errors keeps the last decision; past stalenessMs the fallback applies; it recovers', async () => {
    const provider = new ControlledProvider();
    provider.value = true;
    const logs: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn: (m: string) => logs.push(m),
      error: (m: string) => logs.push(m),
    };
    const { engine, follower, clock } = await setup(provider, {
      pollMs: 1000,
      stalenessMs: 3000,
      fallback: 'read-write',
      logger,
    });
    expect(engine.readOnly).toBe(true);

    provider.failing = 'flag service unreachable';
    provider.events.emit(ProviderEvents.Error, { message: 'connection lost' });
    await expect.poll(() => follower.status().lastError).toMatch(/flag service unreachable|ERROR|GENERAL/);
    expect(engine.readOnly).toBe(true); // last decision kept
    expect(logs.some((m) => m.includes('keeping the last one'))).toBe(true);

    await clock.advance(2000);
    expect(engine.readOnly).toBe(true);
    expect(follower.status().fallback).toBeNull();
    await clock.advance(2000); // past stalenessMs
    await expect.poll(() => follower.status().fallback).toBe('read-write');
    await expect.poll(() => engine.readOnly).toBe(false);
    expect((await engine.audit()).find((e) => e.action === 'end')?.reason).toMatch(/fallback read-write/);

    // The provider comes back with the flag still on: the next good evaluation reopens.
    provider.failing = null;
    provider.events.emit(ProviderEvents.Ready);
    await expect.poll(() => engine.readOnly).toBe(true);
    expect(follower.status()).toMatchObject({ fallback: null, lastError: null, flag: true, applied: true });
  });

  it('with the default fallback (keep) a provider that disappears changes nothing', async () => {
    const provider = new InMemoryProvider(flag(true));
    const { engine, follower, clock } = await setup(provider, { pollMs: 1000, stalenessMs: 2000 });
    const w = engine.window!;
    expect(engine.readOnly).toBe(true);
    // The provider is gone: the domain falls back to the SDK's no-op provider, which answers the default.
    await OpenFeature.clearProviders();
    await clock.advance(5000);
    await expect.poll(() => follower.status().fallback).toBe('keep');
    expect(follower.status().lastError).toMatch(/no-op|not ready|NOT_READY/i);
    expect(engine.readOnly).toBe(true);
    expect(engine.window?.id).toBe(w.id);
  });

  it('a real provider that cannot start (flagd, flag file missing) gives no decision: no window', async () => {
    const provider = new FlagdProvider({
      resolverType: 'in-process',
      offlineFlagSourcePath: join(tmpdir(), `quiesce-no-such-flags-${process.pid}.json`),
    });
    const domain = `missing-${++seq}`;
    await OpenFeature.setProviderAndWait(domain, provider).catch(() => {}); // initialization fails
    const clock = createManualClock();
    const engine = createQuiesce({ clock });
    const follower = followFlag({ engine, client: OpenFeature.getClient(domain), fallback: 'read-only' });
    open.push({ engine, follower });
    await follower.start();
    expect(follower.status()).toMatchObject({ provider: 'flagd', flag: null, applied: null });
    expect(follower.status().lastError).toMatch(
      /FLAG_NOT_FOUND|PROVIDER_FATAL|GENERAL|not ready|is ERROR|is FATAL/,
    );
    expect(engine.window).toBeNull();
    // Past stalenessMs without a decision the configured fallback applies (here: read-only).
    await clock.advance(40_000);
    await expect.poll(() => engine.readOnly).toBe(true);
    expect(engine.window?.reason).toMatch(/flag provider unavailable .*fallback read-only/);
  });

  it('rejects bad options naming the field', async () => {
    const engine = createQuiesce();
    const client = OpenFeature.getClient('bad-options');
    try {
      expect(() => followFlag({ engine, client, pollMs: 0 })).toThrow(
        expect.objectContaining({ field: 'pollMs' }),
      );
      expect(() => followFlag({ engine, client, flagKey: '' })).toThrow(
        expect.objectContaining({ field: 'flagKey' }),
      );
      expect(() => followFlag({ engine, client, fallback: 'maybe' as never })).toThrow(
        expect.objectContaining({ field: 'fallback' }),
      );
      expect(() => followFlag({ engine, client: {} as never })).toThrow(
        expect.objectContaining({ field: 'client' }),
      );
    } finally {
      await engine.close();
    }
  });
});
