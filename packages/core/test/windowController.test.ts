import { describe, expect, it } from 'vitest';
import { createMemoryAuditLog } from '../src/audit.js';
import { createManualClock, type ManualClock } from '../src/clock.js';
import type { Drain } from '../src/drain.js';
import { QuiesceError } from '../src/errors.js';
import { createMemoryStore } from '../src/memoryStore.js';
import { silentLogger } from '../src/notifier.js';
import type { StateStore } from '../src/store.js';
import { Transitions } from '../src/transition.js';
import { INITIAL_STATE, type QuiesceState } from '../src/window.js';
import { enterFreezing, WindowController } from '../src/windowController.js';
import { WindowTimer } from '../src/windowTimer.js';
import { engineContext, testWindow } from './engineContext.js';

const MIN = 60_000;

/** One instance's controller on `store`, its replica reduced to "keep the newest state". */
function instance(id: string, store: StateStore, clock: ManualClock, auditLog = createMemoryAuditLog()) {
  const ctx = engineContext({ instanceId: id, soakMs: 5000, store, clock, auditLog });
  let state: QuiesceState = INITIAL_STATE;
  const apply = async (s: QuiesceState) => {
    if (s.version > state.version) state = s;
  };
  store.subscribe((s) => void apply(s));
  const transitions = new Transitions(ctx, { apply, synced: () => {} });
  const notices: string[] = [];
  let drives = 0;
  const controller = new WindowController(ctx, {
    start: async () => apply(await store.read()),
    state: () => state,
    transitions,
    drain: { pickLive: async () => null } as unknown as Drain,
    notify: async (kind) => {
      notices.push(kind);
    },
    drive: () => {
      drives++;
    },
    beforeThaw: async () => {},
  });
  const timer = new WindowTimer({
    clock,
    log: silentLogger,
    window: () => state.window,
    start: (windowId) => controller.startScheduled(windowId),
    end: () => controller.end({ actor: 'schedule' }),
  });
  store.subscribe(() => queueMicrotask(() => timer.arm()));
  return { controller, timer, notices, auditLog, state: () => state, drives: () => drives };
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: unknown) => (e instanceof QuiesceError ? e.code : String(e)),
  );

describe('window controller (manual clock, memory store)', () => {
  it('begin enters freezing at the version it writes, audited, announced and driven once', async () => {
    const clock = createManualClock();
    const store = createMemoryStore();
    const a = instance('a', store, clock);
    const w = await a.controller.begin({ reason: 'migration', message: 'Back soon', actor: 'ops' });
    const s = await store.read();
    expect(w).toMatchObject({
      phase: 'freezing',
      freezeVersion: s.version,
      startsAt: new Date(clock.now()).toISOString(),
    });
    expect(w.checklist?.controller).toBe('a');
    expect(s.mode).toBe('read-only');
    expect(a.notices).toEqual(['started']);
    expect(a.drives()).toBe(1);
    expect(await a.auditLog.list()).toMatchObject([
      {
        action: 'begin',
        actor: 'ops',
        windowId: w.id,
        from: { phase: null },
        to: { mode: 'read-only', phase: 'freezing' },
      },
    ]);
    // A second begin while it is open is a conflict, and writes nothing.
    expect(await code(a.controller.begin({ reason: 'r', message: 'm' }))).toBe('WINDOW_CONFLICT');
    expect((await store.read()).version).toBe(s.version);
  });

  it('a compare-and-set that loses to a concurrent write is decided again on the fresh state', async () => {
    const clock = createManualClock();
    const inner = createMemoryStore();
    const b = instance('b', inner, clock);
    // Instance b begins a window between a's read and a's write.
    let race: (() => Promise<unknown>) | null = () => b.controller.begin({ reason: 'b first', message: 'm' });
    const racing: StateStore = {
      ...inner,
      registry: undefined,
      read: () => inner.read(),
      subscribe: (l, e) => inner.subscribe(l, e),
      async compareAndSet(version, next) {
        const r = race;
        race = null;
        await r?.();
        return inner.compareAndSet(version, next);
      },
    };
    const a = instance('a', racing, clock);
    expect(await code(a.controller.begin({ reason: 'a', message: 'm' }))).toBe('WINDOW_CONFLICT');
    expect((await inner.read()).window).toMatchObject({ reason: 'b first', phase: 'freezing' });
    // An extend that races the same way is applied on top of the other change.
    race = () => b.controller.extend({ message: 'from b' });
    const extended = await a.controller.extend({ byMs: 10 * MIN, actor: 'ops' });
    const s = await inner.read();
    expect(s.window).toEqual(extended);
    expect(extended.message).toBe('from b');
    expect(s.version).toBe(3);
  });

  it('gives up with VERSION_CONFLICT when the state keeps changing', async () => {
    const clock = createManualClock();
    const inner = createMemoryStore();
    const never: StateStore = {
      ...inner,
      registry: undefined,
      read: () => inner.read(),
      subscribe: (l, e) => inner.subscribe(l, e),
      compareAndSet: async () => ({ ok: false, current: await inner.read() }),
    };
    const a = instance('a', never, clock);
    expect(await code(a.controller.begin({ reason: 'r', message: 'm' }))).toBe('VERSION_CONFLICT');
  });

  it('a scheduled start enters freezing exactly once, whichever instances fire it', async () => {
    const clock = createManualClock();
    const store = createMemoryStore();
    const auditLog = createMemoryAuditLog();
    const fleet = ['a', 'b', 'c'].map((id) => instance(id, store, clock, auditLog));
    const startsAt = new Date(clock.now() + 5 * MIN).toISOString();
    const w = await fleet[0]!.controller.schedule({ reason: 'r', message: 'm', startsAt });
    await clock.advance(0);
    expect(fleet.map((i) => i.state().window?.phase)).toEqual(['scheduled', 'scheduled', 'scheduled']);
    await clock.advance(5 * MIN);
    await expect
      .poll(() => fleet.map((i) => i.state().window?.phase))
      .toEqual(['freezing', 'freezing', 'freezing']);
    // Every timer fired once more by hand: the window has moved on, nothing is written.
    await Promise.all(fleet.map((i) => i.controller.startScheduled(w.id)));
    const s = await store.read();
    expect(s.window).toMatchObject({ id: w.id, phase: 'freezing', freezeVersion: s.version, startsAt });
    expect(fleet.flatMap((i) => i.notices)).toEqual(['scheduled', 'started']);
    expect((await auditLog.list()).map((e) => [e.action, e.actor])).toEqual([
      ['schedule', 'a'],
      ['begin', 'schedule'],
    ]);
  });

  it('extend and end leave audit entries and keep the window whole', async () => {
    const clock = createManualClock();
    const store = createMemoryStore();
    const a = instance('a', store, clock);
    const endsAt = new Date(clock.now() + 30 * MIN).toISOString();
    const w = await a.controller.begin({ reason: 'r', message: 'm', endsAt });
    expect(await code(a.controller.extend({ byMs: MIN, windowId: 'win_other' }))).toBe('NO_ACTIVE_WINDOW');
    const x = await a.controller.extend({ byMs: 10 * MIN, message: 'Longer', actor: 'ops', reason: 'slow' });
    expect(x).toMatchObject({
      id: w.id,
      endsAt: new Date(clock.now() + 40 * MIN).toISOString(),
      message: 'Longer',
    });
    await clock.advance(MIN);
    const e = await a.controller.end({ actor: 'ops', message: 'Done' });
    const s = await store.read();
    expect(e).toMatchObject({ phase: 'thawing', endedAt: new Date(clock.now()).toISOString() });
    expect(e.checklist).toMatchObject({ controller: 'a', thawVersion: s.version, soakMs: 5000 });
    expect(e.report).toMatchObject({ closingMessage: 'Done' });
    expect(
      (await a.auditLog.list()).map(({ action, actor, reason, version, to }) => ({
        action,
        actor,
        reason,
        version,
        phase: to.phase,
      })),
    ).toEqual([
      { action: 'begin', actor: 'a', reason: 'r', version: 1, phase: 'freezing' },
      { action: 'extend', actor: 'ops', reason: 'slow', version: 2, phase: 'freezing' },
      { action: 'end', actor: 'ops', reason: undefined, version: 3, phase: 'thawing' },
    ]);
    expect(a.notices).toEqual(['started', 'extended']);
    // Ended: nothing left to extend or end, but a forced end still closes it.
    expect(await code(a.controller.extend({ byMs: MIN }))).toBe('NO_ACTIVE_WINDOW');
    const f = await a.controller.end({ force: true, actor: 'ops', reason: 'stuck' });
    expect(f).toMatchObject({ phase: 'closed', checklist: { forced: { by: 'ops', fromPhase: 'thawing' } } });
    expect((await a.auditLog.list()).at(-1)).toMatchObject({ action: 'end', reason: 'forced: stuck' });
    expect(await code(a.controller.end({ force: true }))).toBe('NO_ACTIVE_WINDOW');
  });

  it('ending a scheduled window cancels it (closed at once, announced as ended)', async () => {
    const clock = createManualClock();
    const store = createMemoryStore();
    const a = instance('a', store, clock);
    const startsAt = new Date(clock.now() + 5 * MIN).toISOString();
    await a.controller.schedule({ reason: 'r', message: 'm', startsAt });
    const e = await a.controller.end({});
    expect(e).toMatchObject({ phase: 'closed', closedAt: new Date(clock.now()).toISOString() });
    expect(a.notices).toEqual(['scheduled', 'ended']);
    await clock.advance(10 * MIN);
    expect((await store.read()).window?.phase).toBe('closed');
  });

  it('enterFreezing: begun at once or at its scheduled start, the same shape', () => {
    const now = Date.UTC(2026, 0, 1);
    const base = testWindow('scheduled', { startsAt: new Date(now + MIN).toISOString() });
    const scheduled: QuiesceState = { ...INITIAL_STATE, version: 4, window: { ...base, phase: 'scheduled' } };
    const fromSchedule = enterFreezing(scheduled, scheduled.window!, 'start', now, 'schedule', 'a');
    const begun = enterFreezing(
      { ...INITIAL_STATE, version: 4 },
      { ...base, phase: 'scheduled' },
      'begin',
      now,
      'schedule',
      'a',
    );
    expect(fromSchedule).toEqual(begun);
    expect(begun).toMatchObject({
      mode: 'read-only',
      version: 5,
      window: { phase: 'freezing', freezeVersion: 5 },
    });
    expect(begun.window!.startsAt).toBe(new Date(now).toISOString());
    expect(() => enterFreezing(begun, begun.window!, 'start', now, undefined, 'a')).toThrow();
  });
});
