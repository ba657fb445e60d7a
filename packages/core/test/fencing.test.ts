import { describe, expect, it, vi } from 'vitest';
import { createMemoryAuditLog } from '../src/audit.js';
import { createManualClock } from '../src/clock.js';
import { createQuiesce } from '../src/engine.js';
import { createMemoryIntentQueue } from '../src/memoryIntentQueue.js';
import { createMemoryStore } from '../src/memoryStore.js';
import type { Notifier } from '../src/notifier.js';
import type { Operation } from '../src/operation.js';
import type { InstanceRegistry, StateStore } from '../src/store.js';
import type { QuiesceState } from '../src/window.js';

const post: Operation = { surface: 'http', name: 'POST /orders', method: 'POST', path: '/orders' };

/**
 * One instance's handle on a shared memory store, which the test can cut (every call fails and no
 * notification arrives, as across a partition) and restore.
 */
function cuttable(inner: StateStore): StateStore & { cut: boolean } {
  const fail = () => Promise.reject(new Error('connection refused (cut)'));
  const reg = inner.registry!;
  const registry: InstanceRegistry = {
    upsert: (r, o) => (h.cut ? fail() : reg.upsert(r, o)),
    list: () => (h.cut ? fail() : reg.list()),
    get: (id) => (h.cut ? fail() : reg.get!(id)),
    remove: (id) => (h.cut ? fail() : reg.remove(id)),
    subscribe: (l) => reg.subscribe!(() => !h.cut && l()),
  };
  const h = {
    cut: false,
    kind: 'memory-cuttable',
    writable: true,
    registry,
    read: () => (h.cut ? fail() : inner.read()),
    compareAndSet: (v: number, n: QuiesceState) => (h.cut ? fail() : inner.compareAndSet(v, n)),
    subscribe: (l: (s: QuiesceState) => void, e?: (err: Error) => void) =>
      inner.subscribe((s) => !h.cut && l(s), e),
    close: async () => {},
  };
  return h as StateStore & { cut: boolean };
}

describe('lease fencing', () => {
  it('a cut-off instance fences itself when its lease lapses; frozen only after that, naming it fenced', async () => {
    const clock = createManualClock();
    const shared = createMemoryStore();
    const sa = cuttable(shared);
    const sb = cuttable(shared);
    const opts = {
      clock,
      heartbeatMs: 1000,
      leaseTtlMs: 5000,
      clockSkewMs: 1000,
      storeFallback: 'keep' as const,
    };
    const a = createQuiesce({ ...opts, store: sa, instanceId: 'a' });
    const b = createQuiesce({ ...opts, store: sb, instanceId: 'b' });
    await Promise.all([a.start(), b.start()]);
    const leaseB = (await b.status()).lease.until!;
    sb.cut = true;
    const w = await a.begin({ reason: 'migration', message: 'Back soon' });
    expect(w.phase).toBe('freezing');
    // b never hears of the window; with fallback keep it still writes while its lease runs.
    expect(b.decide(post).outcome).toBe('proceed');
    await clock.set(Date.parse(leaseB));
    expect(b.decide(post).outcome).toBe('proceed');
    expect(a.phase).toBe('freezing');
    await clock.set(Date.parse(leaseB) + 1);
    expect(b.decide(post)).toMatchObject({ outcome: 'refuse', windowId: 'lease-expired' });
    // The controller waits for the skew margin too: b's clock may run behind.
    await clock.set(Date.parse(leaseB) + 1000);
    expect(a.phase).toBe('freezing');
    await clock.advance(1000);
    const frozen = await a.waitForPhase('frozen', { timeoutMs: 1000 });
    expect(Date.parse(frozen.frozenAt!)).toBeGreaterThan(Date.parse(leaseB) + 1000);
    expect(frozen.stragglers).toEqual([
      expect.objectContaining({ instanceId: 'b', reason: 'fenced', leaseUntil: leaseB }),
    ]);
    expect(frozen.checklist?.freeze).toMatchObject({
      confirmed: 1,
      confirmedIds: ['a'],
      fenced: [{ instanceId: 'b', leaseUntil: leaseB }],
      unconfirmed: [],
    });
    // b stays fenced (not writing) until it sees the store again, then follows the window.
    await clock.advance(10_000);
    expect(b.decide(post).outcome).toBe('refuse');
    sb.cut = false;
    await clock.advance(1100);
    expect(b.phase).toBe('frozen');
    expect(b.decide(post)).toMatchObject({ outcome: 'refuse', windowId: frozen.id });
    await a.end();
    await clock.advance(1100);
    expect(b.decide(post).outcome).toBe('proceed');
    await a.close();
    await b.close();
  });

  it('an instance never seen by the store starts no write (fail closed)', async () => {
    const clock = createManualClock();
    const s = cuttable(createMemoryStore());
    s.cut = true;
    const e = createQuiesce({ clock, store: s, instanceId: 'e', heartbeatMs: 1000 });
    await e.start();
    expect(e.decide(post)).toMatchObject({ outcome: 'refuse', windowId: 'lease-expired' });
    expect((await e.status()).lease).toMatchObject({ held: true, until: null, fenced: true });
    s.cut = false;
    await clock.advance(1100);
    expect(e.decide(post).outcome).toBe('proceed');
    await e.close();
  });

  it('a busy instance that renews its lease is waited for, not dropped: its late acknowledgement counts', async () => {
    const clock = createManualClock();
    const store = createMemoryStore();
    const a = createQuiesce({ clock, store, instanceId: 'a', heartbeatMs: 1000, drainDeadlineMs: 60_000 });
    const b = createQuiesce({ clock, store, instanceId: 'b', heartbeatMs: 1000 });
    await Promise.all([a.start(), b.start()]);
    const h = b.track(post);
    await a.begin({ reason: 'r', message: 'm' });
    await clock.advance(30_000);
    expect(a.phase).toBe('freezing');
    h.done();
    const frozen = await a.waitForPhase('frozen', { timeoutMs: 1000 });
    expect(frozen.stragglers).toEqual([]);
    expect(frozen.checklist?.freeze).toMatchObject({ confirmed: 2, fenced: [] });
    await a.close();
    await b.close();
  });

  it('an instance that dies during frozen is dropped and named by the controller within the lease TTL', async () => {
    const clock = createManualClock();
    const shared = createMemoryStore();
    const sb = cuttable(shared);
    const auditLog = createMemoryAuditLog();
    const a = createQuiesce({ clock, store: shared, instanceId: 'a', heartbeatMs: 1000, auditLog });
    const b = createQuiesce({ clock, store: sb, instanceId: 'b', heartbeatMs: 1000 });
    const lost: string[] = [];
    a.on('instance-lost', (s) => lost.push(s.instanceId));
    await Promise.all([a.start(), b.start()]);
    await a.begin({ reason: 'r', message: 'm' });
    await a.waitForPhase('frozen', { timeoutMs: 1000 });
    sb.cut = true;
    const diedAt = clock.now();
    for (let i = 0; i < 100 && lost.length === 0; i++) await clock.advance(500);
    expect(lost).toEqual(['b']);
    // TTL (5 s) + skew (1 s) + one heartbeat of the controller.
    expect(clock.now() - diedAt).toBeLessThanOrEqual(5000 + 1000 + 1100 + 500);
    expect(a.window?.stragglers).toEqual([expect.objectContaining({ instanceId: 'b', reason: 'lost' })]);
    expect((await a.status()).instances.map((i) => i.id)).toEqual(['a']);
    expect((await auditLog.list()).filter((e) => e.action === 'lease')).toEqual([
      expect.objectContaining({ reason: expect.stringMatching(/^instance b lost/) }),
    ]);
    await a.close();
    await b.close();
  });
});

describe('durable checklist and takeover', () => {
  it('the controller dies during the soak: another instance takes over, sends the closure notice once, replays, closes', async () => {
    const clock = createManualClock();
    const shared = createMemoryStore();
    const sa = cuttable(shared);
    const queue = createMemoryIntentQueue(); // shared queue (stands for pg-boss)
    const notices: string[] = [];
    const notifier = (who: string): Notifier => ({
      name: 'status',
      async notify(e) {
        notices.push(`${who}:${e.kind}`);
      },
    });
    const common = { clock, heartbeatMs: 1000, soakMs: 30_000, intentQueue: queue };
    const a = createQuiesce({ ...common, store: sa, instanceId: 'a', notifiers: [notifier('a')] });
    const b = createQuiesce({ ...common, store: shared, instanceId: 'b', notifiers: [notifier('b')] });
    const applied: string[] = [];
    for (const e of [a, b]) e.handle('orders.create', (p: { sku: string }) => void applied.push(p.sku));
    await Promise.all([a.start(), b.start()]);
    await a.begin({ reason: 'r', message: 'm' });
    await a.waitForPhase('frozen', { timeoutMs: 1000 });
    await b.enqueue({ ...post, idempotencyKey: 'k1' }, { sku: 'A' }, { name: 'orders.create' });
    const ended = await a.end();
    expect(ended.checklist).toMatchObject({ controller: 'a', soakStartedAt: ended.endedAt, soakMs: 30_000 });
    await clock.advance(10_000);
    sa.cut = true; // a is gone (as after kill -9): no renewal, no more progress
    const took: string[] = [];
    b.on('takeover', (t) => took.push(`${t.from}->b@${t.phase}`));
    // Manual time: step until closed (bounded), then check how it got there.
    for (let i = 0; i < 200 && b.phase !== 'closed'; i++) await clock.advance(1000);
    expect(b.phase).toBe('closed');
    expect(took).toEqual(['a->b@thawing']);
    const w = b.window!;
    // Soak measured from the stored start, not restarted by the new controller.
    expect(Date.parse(w.checklist!.closureNotice!.claimedAt)).toBeGreaterThanOrEqual(
      Date.parse(ended.endedAt!) + 30_000,
    );
    expect(notices.filter((n) => n.endsWith(':ended'))).toEqual(['b:ended']);
    expect(notices.filter((n) => n.endsWith(':closed'))).toEqual(['b:closed']);
    expect(applied).toEqual(['A']);
    expect(w.checklist).toMatchObject({
      controller: 'b',
      takeovers: [{ from: 'a', by: 'b', phase: 'thawing' }],
      thaw: { confirmed: 2 },
      backfill: { applied: 1, byInstance: { b: { applied: 1 } } },
    });
    await a.close();
    await b.close();
  });

  it('a closure notice claimed by a live controller is not sent again by anyone else', async () => {
    const clock = createManualClock();
    const store = createMemoryStore();
    const sent: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: Notifier = {
      name: 'status',
      async notify(e) {
        if (e.kind === 'ended') await gate;
        sent.push(e.kind);
      },
    };
    const a = createQuiesce({
      clock,
      store,
      instanceId: 'a',
      soakMs: 0,
      heartbeatMs: 1000,
      notifiers: [slow],
    });
    const b = createQuiesce({
      clock,
      store,
      instanceId: 'b',
      soakMs: 0,
      heartbeatMs: 1000,
      notifiers: [slow],
    });
    a.handle('x', () => {});
    b.handle('x', () => {});
    await Promise.all([a.start(), b.start()]);
    await a.begin({ reason: 'r', message: 'm' });
    await a.waitForPhase('frozen', { timeoutMs: 1000 });
    await a.end();
    await clock.advance(20_000);
    expect(a.window?.checklist?.closureNotice).toMatchObject({ by: 'a', sentAt: null });
    release();
    for (let i = 0; i < 200 && a.phase !== 'closed'; i++) await clock.advance(100);
    expect(a.phase).toBe('closed');
    expect(sent.filter((k) => k === 'ended')).toHaveLength(1);
    await a.close();
    await b.close();
  });

  it('end --force closes a window stuck in the backfill, audited', async () => {
    const auditLog = createMemoryAuditLog();
    const engine = createQuiesce({ soakMs: 0, auditLog });
    let release: (() => void) | undefined;
    engine.handle('stuck', () => new Promise<void>((r) => (release = r)));
    await engine.begin({ reason: 'r', message: 'm' });
    await engine.enqueue({ surface: 'custom', name: 'stuck', idempotencyKey: '1' }, 1);
    await engine.end();
    await engine.waitForPhase('backfilling', { timeoutMs: 1000 });
    await expect(engine.end()).rejects.toMatchObject({ code: 'NO_ACTIVE_WINDOW' });
    const w = await engine.end({ force: true, actor: 'ops', reason: 'replay hangs' });
    expect(w).toMatchObject({
      phase: 'closed',
      checklist: { forced: { by: 'ops', fromPhase: 'backfilling' } },
    });
    expect((await auditLog.list()).at(-1)).toMatchObject({
      action: 'end',
      actor: 'ops',
      reason: 'forced: replay hangs',
      from: { phase: 'backfilling' },
      to: { phase: 'closed' },
    });
    await expect(engine.end({ force: true })).rejects.toMatchObject({ code: 'NO_ACTIVE_WINDOW' });
    release?.();
    await engine.close();
  });

  it('a restarted instance resumes the backfill even when its handlers are registered after start()', async () => {
    const store = createMemoryStore();
    const queue = createMemoryIntentQueue();
    const cli = createQuiesce({ store, participant: false, soakMs: 0, heartbeatMs: 20 });
    const first = createQuiesce({ store, intentQueue: queue, instanceId: 'first', heartbeatMs: 20 });
    first.handle('n', () => {
      throw new Error('crash before applying');
    });
    await first.start();
    await cli.begin({ reason: 'r', message: 'm' });
    await cli.waitForPhase('frozen', { timeoutMs: 2000 });
    await first.enqueue({ surface: 'custom', name: 'n', idempotencyKey: '1' }, 1);
    await first.close(); // gone before the window ends
    await cli.end();
    // Nobody can replay: the window waits in the checklist (or closes saying so) — here a new instance starts.
    const second = createQuiesce({ store, intentQueue: queue, instanceId: 'second', heartbeatMs: 20 });
    await second.start();
    const applied: number[] = [];
    second.handle('n', (p: number) => void applied.push(p));
    await vi.waitFor(() => expect(applied).toEqual([1]), { timeout: 3000 });
    await second.close();
    await cli.close();
  });

  it('an intent queued while no window is open (a stale instance) is replayed by the sweep and counted', async () => {
    const engine = createQuiesce({ heartbeatMs: 20, sweepMs: 50 });
    const applied: string[] = [];
    engine.handle('n', (p: string) => void applied.push(p));
    await engine.start();
    await engine.enqueue({ surface: 'custom', name: 'n', idempotencyKey: 'late' }, 'late');
    await vi.waitFor(() => expect(applied).toEqual(['late']), { timeout: 3000 });
    expect((await engine.status()).queuedOutsideWindow).toBe(1);
    await engine.close();
  });
});
