import type { Mode, Phase, QuiesceState } from './window.js';

/**
 * The window's phase machine as a pure table. A window moves forward along
 * scheduled → freezing → frozen → thawing → backfilling → closed; the only shortcuts are
 * `end` while still freezing (straight to thawing), `cancel` (a scheduled window ended before it
 * started) and `force-end` (any unclosed phase). `schedule`/`begin` open a *new* window.
 */
export type PhaseEvent =
  /** No open window (none, closed, thawing or backfilling): open a new, scheduled window. */
  | 'schedule'
  /** No open window (none, closed, thawing or backfilling): open a new window, refusing writes now. */
  | 'begin'
  /** A scheduled window's start time arrived. */
  | 'start'
  /** Every instance confirmed (or was fenced), or the drain deadline passed. */
  | 'confirm-frozen'
  /** `end()` of an active window: writes proceed again, the soak starts. */
  | 'end'
  /** `end()` of a scheduled window that never started. */
  | 'cancel'
  /** The soak is over: queued writes are replayed. */
  | 'soak-complete'
  /** The replay is done: the window is over. */
  | 'backfill-complete'
  /** `end({ force: true })`: close at once from any phase but `closed`. */
  | 'force-end';

/** `null` stands for "no window, or the last one closed". */
type From = Phase | null;

const TABLE: Record<PhaseEvent, Partial<Record<Phase | 'none', Phase>>> = {
  // A new window may open once writes proceed again: it replaces a thawing or backfilling one
  // (whose backfill pauses and resumes after), as well as a closed one.
  schedule: { none: 'scheduled', closed: 'scheduled', thawing: 'scheduled', backfilling: 'scheduled' },
  begin: { none: 'freezing', closed: 'freezing', thawing: 'freezing', backfilling: 'freezing' },
  start: { scheduled: 'freezing' },
  'confirm-frozen': { freezing: 'frozen' },
  end: { freezing: 'thawing', frozen: 'thawing' },
  cancel: { scheduled: 'closed' },
  'soak-complete': { thawing: 'backfilling' },
  'backfill-complete': { backfilling: 'closed' },
  'force-end': {
    scheduled: 'closed',
    freezing: 'closed',
    frozen: 'closed',
    thawing: 'closed',
    backfilling: 'closed',
  },
};

export const PHASE_EVENTS = Object.keys(TABLE) as PhaseEvent[];

/** The phase `event` leads to from `from`, or `null` when the table does not allow it. */
export function nextPhase(from: From, event: PhaseEvent): Phase | null {
  return TABLE[event][from ?? 'none'] ?? null;
}

/** Writes are refused in these phases only. */
export function modeOf(phase: Phase | null): Mode {
  return phase === 'freezing' || phase === 'frozen' ? 'read-only' : 'read-write';
}

/** Like `nextPhase`, for callers that checked the phase already: a disallowed move is a bug. */
export function requirePhase(from: From, event: PhaseEvent): Phase {
  const to = nextPhase(from, event);
  if (to === null)
    throw new Error(`quiesce: phase table: "${event}" is not allowed from ${from ?? 'no window'}`);
  return to;
}

/**
 * The one place a new state version is made: `version + 1` and `updatedAt = now`, over the
 * fields `change` returns (given the new version, e.g. for the freeze or thaw version).
 */
export function advance(
  s: QuiesceState,
  now: number | string,
  change: (version: number) => Partial<Omit<QuiesceState, 'version' | 'updatedAt'>>,
): QuiesceState {
  const version = s.version + 1;
  return {
    ...s,
    ...change(version),
    version,
    updatedAt: typeof now === 'string' ? now : new Date(now).toISOString(),
  };
}

/**
 * `(state, event, now) → state`: the phase step alone (phase and mode), or `null` when the table
 * does not allow `event` from the current phase. The engine adds its own fields (confirmations,
 * checklist, report) on top through `advance` and `requirePhase`.
 */
export function step(s: QuiesceState, event: PhaseEvent, now: number): QuiesceState | null {
  // The phase step of an existing window record: a new one (schedule/begin with no window) is
  // built by the engine.
  const w = s.window;
  if (w === null) return null;
  const to = nextPhase(w.phase, event);
  if (to === null) return null;
  return advance(s, now, () => ({ mode: modeOf(to), window: { ...w, phase: to } }));
}

/** The phases of an open window: from `freezing` through `backfilling` (driven by a controller). */
export const OPEN_PHASES: ReadonlySet<Phase> = new Set<Phase>([
  'freezing',
  'frozen',
  'thawing',
  'backfilling',
]);

/** The id of the window that is open (freezing through backfilling), or `null`. */
export function openWindowId(s: QuiesceState): string | null {
  const w = s.window;
  return w !== null && w.phase !== 'scheduled' && w.phase !== 'closed' ? w.id : null;
}
