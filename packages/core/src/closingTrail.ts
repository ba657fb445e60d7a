import type { AuditEntry } from './audit.js';
import type { ReadSummary } from './readSummary.js';
import type { QuiesceEngine } from './types.js';
import type { MaintenanceWindow, QuiesceState } from './window.js';

/**
 * What each instance writes into a window's closing record while the window runs: the who/when/why
 * of every state change (`withTrail`, in the same write as the change) and its read-health summary
 * at the thaw (`recordReadHealth`). closingRecord.ts reads them back.
 */

/** Prefix of the report members that keep who moved the window, when and why (one per version). */
export const PHASE_KEY_PREFIX = 'phase@v';

/** Prefix of the report members each instance adds with its read-health summary at the thaw. */
export const READ_HEALTH_KEY_PREFIX = 'readHealth@';

/** What one instance adds to the record at the thaw. */
export interface InstanceReadHealth {
  instanceId: string;
  /** When the instance took it (its clock). */
  at: string;
  before: ReadSummary;
  during: ReadSummary;
}

export interface PhaseRecord {
  action: AuditEntry['action'];
  /** The phase (or mode, without a window) it went to. */
  to: string;
  at: string;
  actor: string;
  reason: string | null;
  version: number;
}

/**
 * Each instance adds its read-health summary (reads before the window and during it, as histograms)
 * to the window's record under `readHealth@<instanceId>`: the instance that ends the window just
 * before writes come back on (`beforeThaw`, so the record has it before the window moves on), every
 * other one when it applies `thawing`. The record then adds up every instance's reads. Instances
 * that timed no read add nothing. Returns the detach function. `createQuiesce` calls it for every
 * engine.
 */
export function recordReadHealth(
  engine: Pick<QuiesceEngine, 'onPhase' | 'beforeThaw' | 'status' | 'addToReport' | 'window' | 'instanceId'>,
  onError: (error: Error) => void = () => {},
): () => void {
  const key = `${READ_HEALTH_KEY_PREFIX}${engine.instanceId}`;
  const add = async (w: MaintenanceWindow) => {
    const summary = (await engine.status()).readHealth.summary;
    if (!summary || summary.before.count + summary.during.count === 0) return;
    if (engine.window?.id !== w.id) return;
    const value: InstanceReadHealth = {
      instanceId: engine.instanceId,
      at: new Date().toISOString(),
      before: summary.before,
      during: summary.during,
    };
    await engine.addToReport(key, value);
  };
  const fail = (err: unknown) => onError(err instanceof Error ? err : new Error(String(err)));
  const offBefore = engine.beforeThaw((w) => add(w).catch(fail));
  const offThawing = engine.onPhase('thawing', (w) => {
    if (w.report[key]) return; // added before the thaw (this instance ended the window)
    // Detached: a phase hook must not hold the engine's state application.
    void add(w).catch(fail);
  });
  return () => {
    offBefore();
    offThawing();
  };
}

const TRAIL_ACTIONS = new Set<string>(['schedule', 'begin', 'extend', 'end', 'phase', 'takeover']);

/**
 * The state with the change's who/when/why added to its window's record under `phase@v<version>`,
 * in the same write as the change itself: so a change made by the CLI or another instance is in
 * every instance's record, and keeping the trail costs no version of its own. The engine applies it
 * to each audited state change.
 */
export function withTrail(
  next: QuiesceState,
  action: AuditEntry['action'],
  actor: string,
  reason: string | undefined,
  at: string,
): QuiesceState {
  const w = next.window;
  if (!w || !TRAIL_ACTIONS.has(action)) return next;
  const entry: PhaseRecord = {
    action,
    to: w.phase,
    at,
    actor,
    reason: reason ?? null,
    version: next.version,
  };
  return {
    ...next,
    window: { ...w, report: { ...w.report, [`${PHASE_KEY_PREFIX}${next.version}`]: entry } },
  };
}
