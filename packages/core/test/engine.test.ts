import { describe, expect, it, vi } from 'vitest';
import { createBypassToken } from '../src/bypass.js';
import { createManualClock } from '../src/clock.js';
import { createQuiesce } from '../src/engine.js';
import { QuiesceError } from '../src/errors.js';
import { createMemoryStore } from '../src/memoryStore.js';
import type { Notifier, NotifierEvent } from '../src/notifier.js';
import type { Operation } from '../src/operation.js';
import type { StateStore } from '../src/store.js';

const post: Operation = { surface: 'http', name: 'POST /orders', method: 'POST', path: '/orders' };
const get: Operation = { surface: 'http', name: 'GET /orders', method: 'GET', path: '/orders' };
const inMinutes = (m: number, from = Date.now()) => new Date(from + m * 60_000).toISOString();

describe('engine: the basic window', () => {
  it('refuses writes with 503 + Retry-After + READ_ONLY_MODE, lets reads through, and lifts at end', async () => {
    const engine = createQuiesce({ soakMs: 0 });
    expect(engine.decide(post)).toMatchObject({
      outcome: 'proceed',
      reason: 'no-window',
      classification: 'write',
    });
    const w = await engine.begin({
      reason: 'migration',
      message: 'Upgrading the database',
      endsAt: inMinutes(10),
    });
    const d = engine.decide(post);
    expect(d.outcome).toBe('refuse');
    if (d.outcome !== 'refuse') throw new Error('unreachable');
    expect(d.status).toBe(503);
    expect(d.retryAfter).toBeGreaterThanOrEqual(598);
    expect(d.retryAfter).toBeLessThanOrEqual(606);
    expect(d.problem).toMatchObject({
      code: 'READ_ONLY_MODE',
      status: 503,
      detail: 'Upgrading the database',
      windowId: w.id,
      endsAt: w.endsAt,
    });
    expect(engine.decide(get)).toMatchObject({ outcome: 'proceed', reason: 'read' });
    await engine.waitForPhase('frozen', { timeoutMs: 1000 });
    await engine.end({ actor: 'alice' });
    expect(engine.decide(post).outcome).toBe('proceed');
    await engine.waitForPhase('closed', { timeoutMs: 1000 });
    const audit = await engine.audit();
    expect(audit.map((a) => `${a.action}:${a.to.phase}`)).toEqual([
      'begin:freezing',
      'phase:frozen',
      'end:thawing',
      'phase:backfilling',
      'phase:closed',
    ]);
    expect(audit[2]).toMatchObject({
      actor: 'alice',
      from: { mode: 'read-only' },
      to: { mode: 'read-write' },
    });
    await engine.close();
  });

  it('423 by option; queue and drop policies; allow', async () => {
    const engine = createQuiesce({
      refusalStatus: 423,
      rules: [
        { path: '/queue', policy: 'queue' },
        { path: '/drop', policy: 'drop' },
        { path: '/login', policy: 'allow' },
      ],
    });
    await engine.begin({ reason: 'r', message: 'm' });
    expect(engine.decide(post)).toMatchObject({ outcome: 'refuse', status: 423, problem: { status: 423 } });
    expect(engine.decide({ ...post, path: '/queue' })).toMatchObject({ outcome: 'enqueue', policy: 'queue' });
    expect(engine.decide({ ...post, path: '/drop' })).toMatchObject({ outcome: 'discard' });
    expect(engine.decide({ ...post, path: '/login' })).toMatchObject({ outcome: 'proceed', reason: 'allow' });
    const s = await engine.status();
    expect(s.counters).toMatchObject({ refused: { http: 1 }, queued: { http: 1 }, dropped: { http: 1 } });
    await engine.close();
  });

  it('proceed decisions are shared objects: no allocation on the proceed path', () => {
    const engine = createQuiesce();
    expect(engine.decide(post)).toBe(engine.decide({ ...post, path: '/other' }));
    void engine.close();
  });

  it('bad input names the field; a second begin conflicts', async () => {
    const engine = createQuiesce();
    await expect(engine.begin({ reason: '', message: 'm' })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      field: 'reason',
    });
    await expect(engine.begin({ reason: 'r', message: 'm', endsAt: 'tomorrow' })).rejects.toThrow(
      /endsAt: must be an RFC 3339 date-time with an offset/,
    );
    await expect(engine.begin({ reason: 'r', message: 'm', endsAt: inMinutes(-1) })).rejects.toMatchObject({
      field: 'endsAt',
    });
    await expect(engine.begin({ reason: 'r', message: 'm', colour: 'red' } as never)).rejects.toThrow(
      /unknown field "colour"/,
    );
    await engine.begin({ reason: 'r', message: 'm' });
    await expect(engine.begin({ reason: 'r', message: 'm' })).rejects.toMatchObject({
      code: 'WINDOW_CONFLICT',
    });
    await expect(engine.extend({})).rejects.toThrow(/give endsAt, byMs or message/);
    expect(() => createQuiesce({ refusalStatus: 500 as 503 })).toThrow(/refusalStatus/);
    await engine.close();
  });

  it('extend moves the end and the message; Retry-After follows', async () => {
    const engine = createQuiesce();
    await engine.begin({ reason: 'r', message: 'm', endsAt: inMinutes(10) });
    const w = await engine.extend({ byMs: 15 * 60_000, message: 'Taking longer' });
    expect(Date.parse(w.endsAt!)).toBeGreaterThan(Date.now() + 24 * 60_000);
    const d = engine.decide(post);
    expect(d).toMatchObject({ outcome: 'refuse', problem: { detail: 'Taking longer' } });
    if (d.outcome === 'refuse') expect(d.retryAfter).toBeGreaterThan(24 * 60);
    await expect(engine.extend({ endsAt: inMinutes(-5) })).rejects.toMatchObject({ field: 'endsAt' });
    await engine.close();
  });

  it('window scope limits which surfaces are read-only', async () => {
    const engine = createQuiesce();
    expect(engine.decide(post)).toMatchObject({ outcome: 'proceed', reason: 'no-window' });
    await engine.begin({ reason: 'r', message: 'm', scope: ['job'] });
    // A write outside the window's scope proceeds, and says why: not "no window".
    expect(engine.decide(post)).toMatchObject({
      outcome: 'proceed',
      classification: 'write',
      reason: 'out-of-scope',
    });
    expect(engine.decide({ surface: 'job', name: 'emails' }).outcome).toBe('refuse');
    expect(engine.decide({ surface: 'http', name: 'GET /x', method: 'GET' })).toMatchObject({
      reason: 'read',
    });
    await engine.close();
  });

  it('scope names known surfaces only: a mistyped one is 400 naming scope and the allowed values; nothing stored', async () => {
    const engine = createQuiesce();
    for (const attempt of [
      () => engine.begin({ reason: 'r', message: 'm', scope: ['http', 'htpp'] }),
      () =>
        engine.schedule({
          reason: 'r',
          message: 'm',
          scope: ['Job'],
          startsAt: new Date(Date.now() + 60_000).toISOString(),
        }),
    ]) {
      const e = await attempt().then(
        () => null,
        (err: unknown) => err,
      );
      expect(e).toMatchObject({ code: 'INVALID_INPUT', status: 400, field: 'scope' });
      expect((e as Error).message).toMatch(
        /scope: must list only known surfaces \(http, graphql, job, cron, tool, custom\); unknown: "(htpp|Job)"/,
      );
    }
    expect((await engine.status()).state).toMatchObject({ version: 0, window: null });
    expect(engine.decide(post).outcome).toBe('proceed');
    const w = await engine.begin({
      reason: 'r',
      message: 'm',
      scope: ['http', 'graphql', 'job', 'cron', 'tool', 'custom'],
    });
    expect(w.scope).toHaveLength(6);
    expect(engine.decide(post).outcome).toBe('refuse');
    await engine.close();
  });
});

describe('engine: bypass and dry-run', () => {
  it('bypass by token, CIDR and principal is counted and logged', async () => {
    const info = vi.fn();
    const engine = createQuiesce({
      bypass: { secret: 'k', allow: ['10.0.0.0/8'], principal: (p) => p === 'ops-bot' },
      logger: { debug() {}, info, warn() {}, error() {} },
    });
    await engine.begin({ reason: 'r', message: 'm' });
    const token = createBypassToken('k', { sub: 'alice', expiresInMs: 60_000 });
    expect(engine.decide({ ...post, bypassToken: token })).toMatchObject({
      outcome: 'proceed',
      reason: 'bypass',
    });
    expect(engine.decide({ ...post, ip: '10.1.2.3' })).toMatchObject({ reason: 'bypass' });
    expect(engine.decide({ ...post, principal: 'ops-bot' })).toMatchObject({ reason: 'bypass' });
    expect(engine.decide({ ...post, bypassToken: `${token}x` }).outcome).toBe('refuse');
    expect((await engine.status()).counters.bypassed).toEqual({ http: 3 });
    expect(info.mock.calls.filter(([m]) => /bypassed/.test(m))).toHaveLength(3);
    await engine.close();
  });

  it('dry-run computes, counts and logs, and refuses nothing', async () => {
    const engine = createQuiesce({ dryRun: true, rules: [{ path: '/q', policy: 'queue' }] });
    await engine.begin({ reason: 'r', message: 'm' });
    expect(engine.decide(post)).toMatchObject({ outcome: 'proceed', reason: 'dry-run', wouldBe: 'refuse' });
    expect(engine.decide({ ...post, path: '/q' })).toMatchObject({ outcome: 'proceed', wouldBe: 'enqueue' });
    expect((await engine.status()).counters).toMatchObject({ dryRun: { http: 2 }, refused: {} });
    await engine.close();
  });
});

describe('engine: drain and acknowledgements', () => {
  it('freezing holds until in-flight writes finish', async () => {
    const clock = createManualClock();
    const engine = createQuiesce({ clock });
    await engine.start();
    const h = engine.track(post);
    await engine.begin({ reason: 'r', message: 'm' });
    await clock.advance(5_000); // five heartbeats and many confirmation rounds, the write still running
    expect(engine.phase).toBe('freezing');
    expect((await engine.status()).inFlight).toMatchObject({ count: 1, oldest: { name: 'POST /orders' } });
    h.done();
    await clock.advance(1_000); // the next heartbeat reports it
    const w = await engine.waitForPhase('frozen', { timeoutMs: 1000 });
    expect(w.stragglers).toEqual([]);
    await engine.close();
  });

  it('waitForPhase times out on the engine clock, not on wall time', async () => {
    const clock = createManualClock();
    const engine = createQuiesce({ clock, drainDeadlineMs: 60_000 });
    await engine.start();
    const h = engine.track(post); // holds freezing
    await engine.begin({ reason: 'r', message: 'm' });
    let outcome: unknown = 'pending';
    void engine.waitForPhase('frozen', { timeoutMs: 10_000 }).then(
      (w) => {
        outcome = w;
      },
      (err: unknown) => {
        outcome = err;
      },
    );
    await clock.advance(9_999);
    expect(outcome).toBe('pending');
    await clock.advance(1);
    await expect
      .poll(() => outcome)
      .toMatchObject({
        code: 'INTERNAL',
        message: expect.stringMatching(/did not reach "frozen" within 10000 ms \(now freezing\)/),
      });
    // A wait that is met clears its timer: advancing past its timeout later rejects nothing.
    const met = engine.waitForPhase('frozen', { timeoutMs: 5_000 });
    h.done();
    await clock.advance(1_000);
    await expect(met).resolves.toMatchObject({ phase: 'frozen' });
    await clock.advance(10_000);
    await engine.close();
  });

  it('past the drain deadline the stragglers are named', async () => {
    const engine = createQuiesce({ drainDeadlineMs: 100 });
    await engine.start();
    const h = engine.track({ surface: 'job', name: 'job reindex' });
    const timeouts: unknown[] = [];
    engine.on('drain-timeout', (s) => timeouts.push(s));
    await engine.begin({ reason: 'r', message: 'm' });
    const w = await engine.waitForPhase('frozen', { timeoutMs: 2000 });
    expect(w.stragglers).toEqual([
      expect.objectContaining({
        instanceId: engine.instanceId,
        inFlight: 1,
        oldestOperation: 'job reindex',
        reason: 'in-flight',
      }),
    ]);
    expect(timeouts).toHaveLength(1);
    h.done();
    await engine.close();
  });

  it('two instances on one store: both refuse; the other instance’s in-flight write holds freezing', async () => {
    const store = createMemoryStore();
    const clock = createManualClock();
    const a = createQuiesce({ store, clock, instanceId: 'a', heartbeatMs: 20 });
    const b = createQuiesce({ store, clock, instanceId: 'b', heartbeatMs: 20 });
    await Promise.all([a.start(), b.start()]);
    const h = b.track(post);
    await a.begin({ reason: 'r', message: 'm' });
    await vi.waitFor(() => expect(b.decide(post).outcome).toBe('refuse'));
    await clock.advance(100); // five heartbeats of both instances, b's write still running
    expect(a.phase).toBe('freezing');
    const st = await a.status();
    expect(st.instances.find((i) => i.id === 'b')).toMatchObject({ inFlight: 1, live: true });
    h.done();
    await clock.advance(20);
    await a.waitForPhase('frozen', { timeoutMs: 1000 });
    await vi.waitFor(() => expect(b.phase).toBe('frozen'));
    await a.close();
    await b.close();
  });

  it('an instance that stops heartbeating is dropped and named', async () => {
    const store = createMemoryStore();
    await store.registry!.upsert({
      id: 'ghost',
      startedAt: new Date().toISOString(),
      lastSeen: Date.now() - 60_000,
      ackedVersion: 0,
      inFlight: 2,
    });
    const a = createQuiesce({ store, instanceId: 'a', leaseTtlMs: 2000 });
    await a.begin({ reason: 'r', message: 'm' });
    const w = await a.waitForPhase('frozen', { timeoutMs: 1000 });
    // Its lease (lastSeen + TTL: a record without one) expired long ago: fenced, named, dropped.
    expect(w.stragglers).toEqual([expect.objectContaining({ instanceId: 'ghost', reason: 'fenced' })]);
    expect(w.checklist?.freeze).toMatchObject({
      confirmed: 1,
      confirmedIds: ['a'],
      fenced: [{ instanceId: 'ghost' }],
    });
    await vi.waitFor(async () => expect((await store.registry!.list()).map((r) => r.id)).toEqual(['a']));
    await a.close();
  });
});

describe('engine: schedules and the checklist on a fake clock', () => {
  it('a scheduled window begins by itself at startsAt, and ends at endsAt only when asked', async () => {
    const clock = createManualClock(Date.UTC(2026, 5, 1, 12));
    const engine = createQuiesce({ clock, soakMs: 60_000, heartbeatMs: 5_000 });
    await engine.start();
    const startsAt = new Date(clock.now() + 3_600_000).toISOString();
    const endsAt = new Date(clock.now() + 7_200_000).toISOString();
    await engine.schedule({ reason: 'upgrade', message: 'Planned upgrade', startsAt, endsAt });
    expect(engine.phase).toBe('scheduled');
    expect(engine.decide(post).outcome).toBe('proceed');
    await clock.advance(3_599_000);
    expect(engine.phase).toBe('scheduled');
    await clock.advance(1_000);
    expect(engine.readOnly).toBe(true);
    expect(engine.window?.startsAt).toBe(startsAt);
    await clock.advance(3_700_000);
    expect(engine.readOnly).toBe(true); // autoEnd not asked
    await engine.close();

    const clock2 = createManualClock(Date.UTC(2026, 5, 1, 12));
    const auto = createQuiesce({ clock: clock2, soakMs: 0, heartbeatMs: 5_000 });
    await auto.start();
    await auto.schedule({
      reason: 'u',
      message: 'm',
      startsAt: new Date(clock2.now() + 1000).toISOString(),
      endsAt: new Date(clock2.now() + 61_000).toISOString(),
      autoEnd: true,
    });
    await clock2.advance(1000);
    expect(auto.readOnly).toBe(true);
    await clock2.advance(60_000);
    expect(auto.readOnly).toBe(false);
    await clock2.advance(1);
    await auto.waitForPhase('closed', { timeoutMs: 1000 });
    await auto.close();
  });

  it('end runs writes-on → soak → closure notice → backfill → closed, in that order', async () => {
    const clock = createManualClock();
    const log: string[] = [];
    const notifier: Notifier = {
      name: 'log',
      async notify(e: NotifierEvent) {
        log.push(`notice:${e.kind}`);
      },
    };
    const engine = createQuiesce({
      clock,
      soakMs: 30_000,
      heartbeatMs: 10_000,
      notifiers: [notifier],
      rules: [{ path: '/orders', policy: 'queue' }],
    });
    engine.on('phase', (p) => log.push(`phase:${p}`));
    engine.handle(
      'orders.create',
      (payload, ctx) => void log.push(`replay:${payload.sku}:${ctx.idempotencyKey}`),
    );
    await engine.begin({ reason: 'r', message: 'm' });
    await clock.advance(10);
    expect(engine.decide(post).outcome).toBe('enqueue');
    const { intent } = await engine.enqueue(
      { ...post, idempotencyKey: 'k-1' },
      { sku: 'A' },
      { name: 'orders.create' },
    );
    await engine.end();
    expect(engine.decide(post).outcome).toBe('proceed');
    await clock.advance(29_000);
    expect(engine.phase).toBe('thawing');
    expect(log).not.toContain('notice:ended');
    await clock.advance(1_000);
    await engine.waitForPhase('closed', { timeoutMs: 1000 });
    await clock.advance(10);
    expect(log).toEqual([
      'phase:freezing',
      'notice:started',
      'phase:frozen',
      'phase:thawing',
      'notice:ended',
      'phase:backfilling',
      'replay:A:k-1',
      'phase:closed',
      'notice:closed',
    ]);
    expect(await engine.getIntent(intent.id)).toMatchObject({ status: 'applied' });
    expect(engine.window?.report.backfill).toMatchObject({ applied: 1, failed: 0, total: 1 });
    expect(engine.window?.notices.log).toMatchObject({ status: 'ok', lastEvent: 'closed' });
    await engine.close();
  });

  it('a new window during the backfill pauses it; the rest replays after', async () => {
    let paused = false;
    const info = (message: string) => {
      if (message.includes('backfill paused')) paused = true;
    };
    const engine = createQuiesce({
      soakMs: 0,
      replay: { concurrency: 1 },
      logger: { debug() {}, info, warn() {}, error() {} },
    });
    let release!: () => void;
    let started!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const firstStarted = new Promise<void>((r) => (started = r));
    const applied: number[] = [];
    engine.handle('n', async (p: number) => {
      if (p === 0) {
        started();
        await gate;
      }
      applied.push(p);
    });
    await engine.begin({ reason: 'r', message: 'm' });
    for (let i = 0; i < 5; i++)
      await engine.enqueue({ surface: 'custom', name: 'n', idempotencyKey: String(i) }, i);
    await engine.end();
    await firstStarted;
    await engine.begin({ reason: 'again', message: 'm2' });
    release();
    // The running replay finishes its intent, sees the new window and returns paused.
    await expect
      .poll(() => paused, { timeout: 4000, message: 'the backfill to report it paused' })
      .toBe(true);
    expect(applied).toEqual([0]);
    await engine.end();
    await engine.waitForPhase('closed', { timeoutMs: 2000 });
    expect(applied.sort()).toEqual([0, 1, 2, 3, 4]);
    await engine.close();
  });

  it('a failing notifier is recorded and never stops the freeze', async () => {
    const failing: Notifier = {
      name: 'statuspage',
      async notify() {
        throw new Error('HTTP 500 after 3 attempts');
      },
    };
    const engine = createQuiesce({ notifiers: [failing] });
    const failures: unknown[] = [];
    engine.on('notifier-failed', (f) => failures.push(f));
    await engine.begin({ reason: 'r', message: 'm' });
    expect(engine.decide(post).outcome).toBe('refuse');
    await vi.waitFor(() =>
      expect(engine.window?.notices.statuspage).toMatchObject({
        status: 'failed',
        lastError: 'HTTP 500 after 3 attempts',
      }),
    );
    expect(failures).toEqual([
      { notifier: 'statuspage', event: 'started', error: 'HTTP 500 after 3 attempts' },
    ]);
    await engine.close();
  });
});

describe('engine: guards', () => {
  it('guardTool refuses a mutating tool with a readable answer and runs read-only tools', async () => {
    const engine = createQuiesce();
    const del = engine.guardTool('deleteUser', async (id: string) => `deleted ${id}`);
    const look = engine.guardTool('lookupUser', async (id: string) => `user ${id}`, { readOnly: true });
    expect(await del('1')).toBe('deleted 1');
    await engine.begin({ reason: 'r', message: 'Back at noon', endsAt: inMinutes(5) });
    expect(await del('1')).toMatchObject({
      ok: false,
      refused: true,
      code: 'READ_ONLY_MODE',
      message: 'Back at noon',
    });
    expect(await look('2')).toBe('user 2');
    expect(engine.inventory().map((e) => [e.name, e.classification, e.explicit])).toEqual([
      ['tool deleteUser', 'write', false],
      ['tool lookupUser', 'read', true],
    ]);
    await engine.close();
  });

  it.each([
    ['skip', 0],
    ['coalesce', 1],
    ['replay', 3],
  ] as const)('guardJob missed ticks: %s runs %i at thaw', async (missed, expected) => {
    const clock = createManualClock();
    const engine = createQuiesce({ clock, soakMs: 0, heartbeatMs: 60_000 });
    const runs: number[] = [];
    const tick = engine.guardJob('nightly', (n: number) => void runs.push(n), { missed });
    await tick(0);
    await engine.begin({ reason: 'r', message: 'm' });
    await tick(1);
    await tick(2);
    await tick(3);
    expect(runs).toEqual([0]);
    await engine.end();
    await clock.advance(10);
    expect(runs.length - 1).toBe(expected);
    if (missed === 'coalesce') expect(runs).toEqual([0, 3]);
    if (missed === 'replay') expect(runs).toEqual([0, 1, 2, 3]);
    await engine.close();
  });

  it('a running tick is an in-flight write', async () => {
    const engine = createQuiesce();
    let finish!: () => void;
    const tick = engine.guardJob('long', () => new Promise<void>((r) => (finish = r)));
    const running = tick();
    await engine.begin({ reason: 'r', message: 'm' });
    expect((await engine.status()).inFlight.count).toBe(1);
    finish();
    await running;
    await engine.waitForPhase('frozen', { timeoutMs: 1000 });
    await engine.close();
  });
});

describe('engine: store failure', () => {
  function flakyStore(): StateStore & { down: boolean } {
    const inner = createMemoryStore();
    const s = {
      down: false,
      kind: 'flaky',
      writable: true,
      registry: inner.registry,
      read: () => (s.down ? Promise.reject(new Error('connection refused')) : inner.read()),
      compareAndSet: (v: number, n: Parameters<StateStore['compareAndSet']>[1]) =>
        s.down ? Promise.reject(new Error('connection refused')) : inner.compareAndSet(v, n),
      subscribe: inner.subscribe.bind(inner),
      close: inner.close.bind(inner),
    };
    return s;
  }

  it.each([
    ['read-only', 'refuse'],
    ['read-write', 'proceed'],
    ['keep', 'proceed'],
  ] as const)(
    'past the staleness bound, fallback %s; past the lease, fenced whatever the fallback; recovers when the store returns',
    async (fallback, outcome) => {
      const clock = createManualClock();
      const store = flakyStore();
      const events: string[] = [];
      const engine = createQuiesce({
        store,
        clock,
        heartbeatMs: 1000,
        stalenessMs: 5000,
        leaseTtlMs: 10_000,
        storeFallback: fallback,
      });
      engine.on('store-fallback', (f) => events.push(`fallback:${f.fallback}`));
      engine.on('store-recovered', () => events.push('recovered'));
      engine.on('fenced', () => events.push('fenced'));
      engine.on('unfenced', () => events.push('unfenced'));
      await engine.start();
      const leaseFrom = clock.now();
      store.down = true;
      await clock.advance(4000);
      expect(engine.decide(post).outcome).toBe('proceed');
      await clock.advance(3000);
      expect(engine.decide(post).outcome).toBe(outcome);
      expect((await engine.status()).store).toMatchObject({
        healthy: false,
        fallback,
        lastError: 'connection refused',
      });
      await expect(engine.begin({ reason: 'r', message: 'm' })).rejects.toMatchObject({
        code: 'STORE_UNAVAILABLE',
      });
      // The lease taken at start runs out: no write starts, whatever the fallback says.
      await clock.set(leaseFrom + 10_000);
      expect(engine.decide(post).outcome).toBe(outcome);
      await clock.set(leaseFrom + 10_001);
      const d = engine.decide(post);
      expect(d).toMatchObject({ outcome: 'refuse', windowId: 'lease-expired' });
      expect((await engine.status()).lease).toMatchObject({ held: true, fenced: true });
      store.down = false;
      // Heartbeats come every heartbeatMs ± 10% (jitter).
      await clock.advance(1100);
      expect(engine.decide(post).outcome).toBe('proceed');
      expect((await engine.status()).lease).toMatchObject({ held: true, fenced: false });
      expect(events).toEqual([`fallback:${fallback}`, 'fenced', 'recovered', 'unfenced']);
      const audit = await engine.audit();
      expect(audit.filter((e) => e.action === 'lease').map((e) => e.reason)).toEqual([
        expect.stringMatching(/^lease expired at /),
        'lease renewed; writes allowed again',
      ]);
      await engine.close();
    },
  );

  it('keeps the last known state when the store goes away mid-window', async () => {
    const clock = createManualClock();
    const store = flakyStore();
    const engine = createQuiesce({
      store,
      clock,
      heartbeatMs: 1000,
      stalenessMs: 5000,
      storeFallback: 'read-write',
    });
    await engine.begin({ reason: 'r', message: 'm' });
    store.down = true;
    await clock.advance(3000);
    expect(engine.decide(post).outcome).toBe('refuse');
    await engine.close();
  });
});

describe('engine: read health', () => {
  it('escalates when reads during the window are much slower than before', async () => {
    const engine = createQuiesce({ readHealth: { minSamples: 32 } });
    const escalations: string[][] = [];
    engine.on('escalate', (r) => escalations.push(r.reasons));
    for (let i = 0; i < 200; i++)
      engine.reportRead({ surface: 'http', durationMs: 5 + (i % 3), error: false });
    await engine.begin({ reason: 'r', message: 'm' });
    for (let i = 0; i < 31; i++) engine.reportRead({ surface: 'http', durationMs: 6, error: false });
    expect(escalations).toEqual([]);
    for (let i = 0; i < 64; i++) engine.reportRead({ surface: 'http', durationMs: 40, error: i % 2 === 0 });
    expect(escalations).toHaveLength(1);
    expect(escalations[0]!.join(' ')).toMatch(/p95/);
    const h = (await engine.status()).readHealth;
    expect(h.healthy).toBe(false);
    expect(h.baseline.count).toBe(200);
    await engine.close();
  });
});

describe('errors', () => {
  it('one table from code to status', () => {
    expect(new QuiesceError('IDEMPOTENCY_CONFLICT', 'x').status).toBe(422);
    expect(new QuiesceError('PAYLOAD_TOO_LARGE', 'x').status).toBe(413);
  });
});

describe('engine: beforeThaw', () => {
  it('runs on the ending instance while writes are still refused', async () => {
    const engine = createQuiesce({ soakMs: 0 });
    const seen: string[] = [];
    engine.beforeThaw((w) => void seen.push(`${w.phase}:${engine.decide(post).outcome}`));
    await engine.begin({ reason: 'r', message: 'm' });
    await engine.waitForPhase('frozen', { timeoutMs: 1000 });
    await engine.end();
    expect(seen).toEqual(['frozen:refuse']);
    await engine.close();
  });
});

describe('engine: far-future schedules', () => {
  it('a window scheduled beyond setTimeout’s 24.8-day limit does not start early', async () => {
    const clock = createManualClock(Date.UTC(2026, 0, 1));
    const engine = createQuiesce({ clock, heartbeatMs: 3_600_000 });
    await engine.start();
    const startsAt = new Date(clock.now() + 60 * 86_400_000).toISOString();
    await engine.schedule({ reason: 'r', message: 'm', startsAt });
    await clock.advance(30 * 86_400_000);
    expect(engine.phase).toBe('scheduled');
    await clock.advance(30 * 86_400_000);
    expect(engine.phase).not.toBe('scheduled');
    expect(engine.readOnly).toBe(true);
    await engine.close();
  });

  it('close() aborts notifiers still retrying', async () => {
    let aborted = false;
    const slow: Notifier = {
      name: 'slow',
      notify: (_e, { signal }) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(new Error('aborted'));
          }),
        ),
    };
    const engine = createQuiesce({ notifiers: [slow] });
    await engine.begin({ reason: 'r', message: 'm' });
    await engine.close();
    expect(aborted).toBe(true);
  });
});

describe('engine: classify and close', () => {
  it('classify() reports explicitness; close emits "close"', async () => {
    const engine = createQuiesce({ rules: [{ path: '/q', policy: 'queue' }], bypass: { header: 'X-Ops' } });
    expect(engine.classify({ ...post, path: '/q' })).toEqual({
      classification: 'write',
      policy: 'queue',
      explicit: true,
    });
    expect(engine.classify(post)).toEqual({ classification: 'write', policy: 'block', explicit: false });
    expect(engine.options).toMatchObject({ bypassHeader: 'x-ops', bypassCookie: 'quiesce_bypass' });
    let closed = 0;
    engine.on('close', () => closed++);
    await engine.close();
    expect(closed).toBe(1);
  });
});

describe('engine: phase hooks', () => {
  it('a hook may add to the closing record without deadlocking', async () => {
    const engine = createQuiesce();
    engine.onPhase('frozen', async () => {
      await engine.addToReport('writeAudit', { written: [] });
    });
    await engine.begin({ reason: 'r', message: 'm' });
    await engine.waitForPhase('frozen', { timeoutMs: 1000 });
    await vi.waitFor(() => expect(engine.window?.report.writeAudit).toEqual({ written: [] }));
    await engine.close();
  });
});

describe('engine: backfill by the participants', () => {
  it('a controller without handlers (a CLI) ends the window; the app instance replays and closes it', async () => {
    const store = createMemoryStore();
    const app = createQuiesce({ store, instanceId: 'app', soakMs: 0, heartbeatMs: 20 });
    const cli = createQuiesce({ store, participant: false, soakMs: 0, heartbeatMs: 20 });
    const applied: string[] = [];
    app.handle('notes.create', (p: { text: string }) => void applied.push(p.text));
    await cli.begin({ reason: 'r', message: 'm' });
    await vi.waitFor(() => expect(app.readOnly).toBe(true));
    await app.enqueue(
      { surface: 'http', name: 'POST /notes', idempotencyKey: 'k' },
      { text: 'hello' },
      { name: 'notes.create' },
    );
    await cli.waitForPhase('frozen', { timeoutMs: 2000 });
    await cli.end();
    await vi.waitFor(() => expect(cli.phase).toBe('closed'), { timeout: 2000 });
    expect(applied).toEqual(['hello']);
    expect(cli.window?.report.backfill).toMatchObject({ applied: 1, remaining: 0 });
    await app.close();
    await cli.close();
  });

  it('replayed intents are in-flight writes', async () => {
    const engine = createQuiesce({ soakMs: 0 });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let running = false;
    engine.handle('slow', async () => {
      running = true;
      await gate;
    });
    await engine.begin({ reason: 'r', message: 'm' });
    await engine.enqueue({ surface: 'custom', name: 'slow', idempotencyKey: '1' }, 1);
    await engine.end();
    await vi.waitFor(() => expect(running).toBe(true));
    expect((await engine.status()).inFlight).toMatchObject({ count: 1, oldest: { name: 'replay slow' } });
    release();
    await engine.waitForPhase('closed', { timeoutMs: 1000 });
    expect(engine.clock.now()).toBeGreaterThan(0);
    await engine.close();
  });
});

describe('engine: nobody to replay', () => {
  it('a CLI end with no replaying instance closes the window and says why', async () => {
    const store = createMemoryStore();
    const app = createQuiesce({ store, instanceId: 'app', soakMs: 0, heartbeatMs: 20 });
    const cli = createQuiesce({ store, participant: false, soakMs: 0, heartbeatMs: 20 });
    await cli.begin({ reason: 'r', message: 'm' });
    await cli.waitForPhase('frozen', { timeoutMs: 2000 });
    await cli.end();
    await vi.waitFor(() => expect(cli.phase).toBe('closed'), { timeout: 2000 });
    expect(cli.window?.report.backfill).toMatchObject({ skipped: 'no live instance has replay handlers' });
    await app.close();
    await cli.close();
  });
});
