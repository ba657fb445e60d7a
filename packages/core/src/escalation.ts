import type { Clock } from './clock.js';
import { QuiesceError } from './errors.js';
import type { Logger } from './notifier.js';
import { advance } from './phases.js';
import type { ReadHealthReport } from './readHealth.js';
import type { ReadFinding } from './readSignals.js';
import type { QuiesceEngine } from './types.js';
import { isReadOnlyPhase, type MaintenanceWindow, type QuiesceState } from './window.js';

export * from './escalationDisplay.js';

/** What the app's rollback hook is given. */
export interface RollbackContext {
  window: MaintenanceWindow;
  /** The window's `rollbackPlan` text, if it has one. */
  rollbackPlan: string | null;
  /** The read-health report that triggered the escalation. */
  evidence: ReadHealthReport;
  /** Aborted when the hook runs past `rollbackTimeoutMs` or the engine closes. */
  signal: AbortSignal;
}

/**
 * What the engine does when reads degrade during a window (the `escalate` event). Without it the
 * event is all that happens.
 */
export interface EscalationOptions {
  /** Each escalation pushes the window's expected end this much later (ms); Retry-After follows. */
  extendBy: number;
  /** Extensions per window; escalations past it are recorded and change nothing. @default 1 */
  maxExtensions?: number;
  /**
   * The app's limited rollback, run at most once per window (across every instance sharing the
   * store), on the window's first escalation. What it returns is kept in the record.
   */
  rollback?: (context: RollbackContext) => unknown;
  /** A rollback still running after this is recorded as failed (it is told through `signal`). @default 60000 */
  rollbackTimeoutMs?: number;
}

/** One escalation, as kept in `window.report.escalation.events`. */
export interface EscalationEvent {
  at: string;
  instanceId: string;
  reasons: string[];
  /**
   * The evidence with its figures: each threshold the reads crossed (metric, baseline, during,
   * kind and limit, sample counts), one per reason. Absent in records written before it was kept.
   */
  findings?: ReadFinding[];
  /** `extended`: the window's end moved to `endsAt`; `limit`: maxExtensions was reached; `failed`: the extension could not be written. */
  outcome: 'extended' | 'limit' | 'failed';
  endsAt?: string | null;
  error?: string;
}

/** `window.report.escalation`: the closing record of escalations. */
export interface EscalationRecord {
  extensions: number;
  /**
   * The policy's limit and step (ms), as the instance that last wrote the record had them. Absent
   * in records written before they were kept.
   */
  maxExtensions?: number;
  extendBy?: number;
  events: EscalationEvent[];
  rollback?: {
    status: 'running' | 'ok' | 'failed';
    instanceId: string;
    startedAt: string;
    finishedAt?: string;
    plan: string | null;
    evidence: string[];
    result?: unknown;
    error?: string;
  };
}

/** What the engine lends the policy: its public API plus a compare-and-set on the state. */
export interface EscalationHost {
  engine: QuiesceEngine;
  clock: Clock;
  log: Logger;
  /**
   * Compare-and-set `mutate` on the stored state (retried on conflict), audited when `reason` is given.
   * `mutate` returns null to decline (the window moved on, the rollback is someone else's): nothing is
   * written and the result is null.
   */
  transition(
    reason: string | undefined,
    mutate: (s: QuiesceState) => QuiesceState | null,
  ): Promise<QuiesceState | null>;
}

const MAX_EVENTS = 50;
const iso = (ms: number) => new Date(ms).toISOString();
const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** A value fit for the record (JSON), or its string form, bounded. */
function recordable(v: unknown): unknown {
  if (v === undefined) return undefined;
  try {
    const json = JSON.stringify(v);
    if (json !== undefined && json.length <= 4000) return JSON.parse(json);
    return `${(json ?? String(v)).slice(0, 4000)}…`;
  } catch {
    return String(v).slice(0, 4000);
  }
}

/** Validate the options once, naming the field that fails. */
export function resolveEscalationOptions(
  o: EscalationOptions,
): Required<Omit<EscalationOptions, 'rollback'>> & Pick<EscalationOptions, 'rollback'> {
  const bad = (field: string, why: string) =>
    new QuiesceError('INVALID_INPUT', `escalation.${field}: ${why}`, { field: `escalation.${field}` });
  if (!o || typeof o !== 'object') throw bad('', 'must be an object');
  if (!Number.isSafeInteger(o.extendBy) || o.extendBy <= 0)
    throw bad('extendBy', 'must be a positive integer (ms)');
  const maxExtensions = o.maxExtensions ?? 1;
  if (!Number.isSafeInteger(maxExtensions) || maxExtensions < 0)
    throw bad('maxExtensions', 'must be a non-negative integer');
  if (o.rollback !== undefined && typeof o.rollback !== 'function')
    throw bad('rollback', 'must be a function');
  const rollbackTimeoutMs = o.rollbackTimeoutMs ?? 60_000;
  if (!Number.isFinite(rollbackTimeoutMs) || rollbackTimeoutMs <= 0)
    throw bad('rollbackTimeoutMs', 'must be a positive number');
  return {
    extendBy: o.extendBy,
    maxExtensions,
    rollbackTimeoutMs,
    ...(o.rollback ? { rollback: o.rollback } : {}),
  };
}

/**
 * The escalation policy: on `escalate`, extend the window (audited, notifiers told, Retry-After
 * follows the new end) up to `maxExtensions` times, and run the app's rollback once per window.
 * Claims are compare-and-set on the window's record in the store, so the limits hold across every
 * instance sharing it, whichever instance escalates.
 */
export class EscalationPolicy {
  readonly #o: ReturnType<typeof resolveEscalationOptions>;
  readonly #host: EscalationHost;
  readonly #abort = new AbortController();
  #chain: Promise<void> = Promise.resolve();

  constructor(options: EscalationOptions, host: EscalationHost) {
    this.#o = resolveEscalationOptions(options);
    this.#host = host;
  }

  /** Called with each `escalate` report; escalations are handled one at a time, in order. */
  onEscalate(report: ReadHealthReport): Promise<void> {
    const run = this.#chain.then(() => this.#handle(report));
    this.#chain = run.catch((err) =>
      this.#host.log.error('quiesce: escalation failed', { error: errorMessage(err) }),
    );
    return this.#chain;
  }

  /** Resolves when every escalation so far has been handled (rollbacks included). */
  idle(): Promise<void> {
    return this.#chain;
  }

  close(): void {
    this.#abort.abort();
  }

  async #handle(report: ReadHealthReport): Promise<void> {
    const { engine, clock, log } = this.#host;
    const w = engine.window;
    if (!w || !isReadOnlyPhase(w.phase) || this.#abort.signal.aborted) return;
    const reasons = report.reasons.slice(0, 10);
    // Older watchers (or a hand-made report) may have no findings: the reasons still say it.
    const findings = Array.isArray(report.findings) ? report.findings.slice(0, 10) : [];
    const evidence = findings.length > 0 ? { reasons, findings } : { reasons };
    const instanceId = engine.instanceId;

    // Claim an extension (or record that the limit is reached) in the window's record.
    let claimed = false;
    await this.#patch(w.id, undefined, (rec) => {
      claimed = rec.extensions < this.#o.maxExtensions;
      if (claimed) return { ...rec, extensions: rec.extensions + 1 };
      return this.#withEvent(rec, { at: iso(clock.now()), instanceId, ...evidence, outcome: 'limit' });
    });
    if (claimed) {
      let event: EscalationEvent;
      try {
        const extended = await engine.extend({
          windowId: w.id,
          byMs: this.#o.extendBy,
          actor: 'escalation',
          reason: `reads degraded: ${reasons.join('; ')}`,
        });
        event = {
          at: iso(clock.now()),
          instanceId,
          ...evidence,
          outcome: 'extended',
          endsAt: extended.endsAt,
        };
        log.warn('quiesce: reads degraded; window extended', {
          windowId: w.id,
          endsAt: extended.endsAt,
          reasons,
        });
      } catch (err) {
        event = {
          at: iso(clock.now()),
          instanceId,
          ...evidence,
          outcome: 'failed',
          error: errorMessage(err),
        };
        log.error('quiesce: escalation could not extend the window', { windowId: w.id, error: event.error });
      }
      await this.#patch(w.id, undefined, (rec) => this.#withEvent(rec, event));
    } else {
      log.warn('quiesce: reads degraded; the window was extended as often as allowed', {
        windowId: w.id,
        maxExtensions: this.#o.maxExtensions,
        reasons,
      });
    }

    if (this.#o.rollback) await this.#rollback(w.id, report);
  }

  async #rollback(windowId: string, report: ReadHealthReport): Promise<void> {
    const { engine, clock, log } = this.#host;
    const instanceId = engine.instanceId;
    let mine = false;
    const plan = engine.window?.rollbackPlan ?? null;
    await this.#patch(windowId, 'escalation: rollback started', (rec) => {
      mine = rec.rollback === undefined;
      if (!mine) return null; // someone else's
      return {
        ...rec,
        rollback: {
          status: 'running',
          instanceId,
          startedAt: iso(clock.now()),
          plan,
          evidence: report.reasons.slice(0, 10),
        },
      };
    });
    if (!mine) return;
    const window = engine.window!;
    const ctrl = new AbortController();
    const onClose = () => ctrl.abort();
    this.#abort.signal.addEventListener('abort', onClose);
    let timer: unknown;
    const timeout = new Promise<never>((_, reject) => {
      timer = clock.setTimeout(() => {
        ctrl.abort();
        reject(new Error(`rollback still running after ${this.#o.rollbackTimeoutMs} ms`));
      }, this.#o.rollbackTimeoutMs);
    });
    let outcome: { status: 'ok'; result?: unknown } | { status: 'failed'; error: string };
    try {
      const result = await Promise.race([
        Promise.resolve().then(() =>
          this.#o.rollback!({ window, rollbackPlan: plan, evidence: report, signal: ctrl.signal }),
        ),
        timeout,
      ]);
      const r = recordable(result);
      outcome = { status: 'ok', ...(r !== undefined ? { result: r } : {}) };
      log.warn('quiesce: rollback ran', { windowId });
    } catch (err) {
      outcome = { status: 'failed', error: errorMessage(err) };
      log.error('quiesce: rollback failed', { windowId, error: outcome.error });
    } finally {
      clock.clearTimeout(timer);
      this.#abort.signal.removeEventListener('abort', onClose);
    }
    await this.#patch(
      windowId,
      outcome.status === 'ok' ? 'escalation: rollback ran' : `escalation: rollback failed: ${outcome.error}`,
      (rec) => ({ ...rec, rollback: { ...rec.rollback!, ...outcome, finishedAt: iso(clock.now()) } }),
    );
  }

  #withEvent(rec: EscalationRecord, e: EscalationEvent): EscalationRecord {
    const events = [...rec.events, e];
    return { ...rec, events: events.length > MAX_EVENTS ? events.slice(-MAX_EVENTS) : events };
  }

  /** Compare-and-set the window's escalation record; nothing written when the window moved on or `patch` declined (null). */
  async #patch(
    windowId: string,
    auditReason: string | undefined,
    patch: (rec: EscalationRecord) => EscalationRecord | null,
  ): Promise<void> {
    const now = this.#host.clock.now();
    await this.#host.transition(auditReason, (s) => {
      const w = s.window;
      if (!w || w.id !== windowId) return null; // the window moved on
      const before = (w.report.escalation as EscalationRecord | undefined) ?? { extensions: 0, events: [] };
      const patched = patch(before);
      if (!patched) return null;
      // The limit goes into the record, so whoever reads it (CLI, admin page) needs no policy of its own.
      const escalation: EscalationRecord = {
        ...patched,
        maxExtensions: this.#o.maxExtensions,
        extendBy: this.#o.extendBy,
      };
      return advance(s, now, () => ({ window: { ...w, report: { ...w.report, escalation } } }));
    });
  }
}
