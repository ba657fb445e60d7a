import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  advance,
  modeOf,
  nextPhase,
  openWindowId,
  PHASE_EVENTS,
  type PhaseEvent,
  requirePhase,
  step,
} from '../src/phases.js';
import { INITIAL_STATE, isReadOnlyPhase, PHASES, type Phase, type QuiesceState } from '../src/window.js';
import { testWindow } from './engineContext.js';

const RUNS = Number(process.env.QUIESCE_PROPERTY_RUNS ?? 200);
const ORDER = new Map<Phase, number>(PHASES.map((p, i) => [p, i]));

function windowIn(phase: Phase): QuiesceState {
  return {
    mode: modeOf(phase),
    version: 7,
    updatedAt: new Date(0).toISOString(),
    window: testWindow(phase, { id: 'w1' }),
  };
}

describe('the phase table', () => {
  it('lists every move the engine makes, and nothing else', () => {
    const moves: string[] = [];
    for (const e of PHASE_EVENTS)
      for (const from of [null, ...PHASES]) {
        const to = nextPhase(from, e);
        if (to !== null) moves.push(`${from ?? '-'} ${e} ${to}`);
      }
    expect(moves.sort()).toEqual(
      [
        '- begin freezing',
        '- schedule scheduled',
        ...['closed', 'thawing', 'backfilling'].flatMap((p) => [
          `${p} begin freezing`,
          `${p} schedule scheduled`,
        ]),
        'scheduled start freezing',
        'freezing confirm-frozen frozen',
        'freezing end thawing',
        'frozen end thawing',
        'scheduled cancel closed',
        'thawing soak-complete backfilling',
        'backfilling backfill-complete closed',
        ...['scheduled', 'freezing', 'frozen', 'thawing', 'backfilling'].map((p) => `${p} force-end closed`),
      ].sort(),
    );
  });

  it('writes are refused exactly in the read-only phases', () => {
    for (const p of PHASES) expect(modeOf(p) === 'read-only').toBe(isReadOnlyPhase(p));
    expect(modeOf(null)).toBe('read-write');
  });

  it('a disallowed move is refused by requirePhase', () => {
    expect(() => requirePhase('closed', 'end')).toThrow(/"end" is not allowed from closed/);
    expect(() => requirePhase(null, 'start')).toThrow(/from no window/);
    expect(requirePhase('frozen', 'end')).toBe('thawing');
  });

  it('advance: version + 1 and updatedAt = now, other fields kept unless changed', () => {
    const s = windowIn('frozen');
    const next = advance(s, Date.UTC(2030, 0, 1), (v) => ({ updatedBy: `v${v}` }));
    expect(next).toEqual({ ...s, version: 8, updatedAt: '2030-01-01T00:00:00.000Z', updatedBy: 'v8' });
    expect(advance(s, '2031-01-01T00:00:00.000Z', () => ({})).updatedAt).toBe('2031-01-01T00:00:00.000Z');
  });

  it('property: phases only move forward (but a cancel or a forced end), one version per change', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Phase>(...PHASES),
        fc.array(fc.tuple(fc.constantFrom<PhaseEvent>(...PHASE_EVENTS), fc.nat(1_000_000)), {
          maxLength: 40,
        }),
        (start, events) => {
          let s = windowIn(start);
          let now = 0;
          for (const [event, dt] of events) {
            now += dt;
            const from = s.window!.phase;
            const next = step(s, event, now);
            if (next === null) {
              expect(nextPhase(from, event)).toBeNull();
              continue;
            }
            const to = next.window!.phase;
            if (event === 'schedule' || event === 'begin') {
              // A new window: only once writes proceed again (no window open), never over an open one.
              expect(['closed', 'thawing', 'backfilling']).toContain(from);
            } else {
              // The same window: forward only, one step at a time except these shortcuts.
              expect(ORDER.get(to)!).toBeGreaterThan(ORDER.get(from)!);
              if (ORDER.get(to)! > ORDER.get(from)! + 1) {
                const shortcut =
                  (to === 'closed' &&
                    (event === 'force-end' || (from === 'scheduled' && event === 'cancel'))) ||
                  (from === 'freezing' && to === 'thawing' && event === 'end');
                expect(shortcut, `${from} -${event}-> ${to}`).toBe(true);
              }
            }
            expect(next.version).toBe(s.version + 1);
            expect(next.updatedAt).toBe(new Date(now).toISOString());
            expect(next.mode).toBe(modeOf(to));
            expect({ ...next.window, phase: from }).toEqual(s.window);
            s = next;
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('openWindowId: the window from freezing through backfilling, else null (lease bookkeeping is pruned)', () => {
    for (const p of PHASES)
      expect(openWindowId(windowIn(p))).toBe(p === 'scheduled' || p === 'closed' ? null : 'w1');
    expect(openWindowId(INITIAL_STATE)).toBeNull();
  });

  it('step leaves a state without a window alone (the engine builds new windows)', () => {
    expect(step(INITIAL_STATE, 'begin', 0)).toBeNull();
  });
});
