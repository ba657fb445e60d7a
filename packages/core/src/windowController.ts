import { emptyChecklist } from './checklist.js';
import { canBackfill, type EngineContext } from './context.js';
import type { Drain } from './drain.js';
import { QuiesceError } from './errors.js';
import { errorMessage, iso } from './events.js';
import type { NotifierEventKind } from './notifier.js';
import { advance, modeOf, requirePhase } from './phases.js';
import type { TransitionOptions, Transitions } from './transition.js';
import {
  type BeginInput,
  beginInputSchema,
  type EndInput,
  type ExtendInput,
  endInputSchema,
  extendInputSchema,
  isReadOnlyPhase,
  type MaintenanceWindow,
  type Phase,
  parseOrThrow,
  type QuiesceState,
  type ScheduleInput,
  scheduleInputSchema,
} from './window.js';

export interface ControllerDeps {
  /** The engine has read the store and started (begin etc. wait for it). */
  start(): Promise<void>;
  state(): QuiesceState;
  transitions: Transitions;
  drain: Drain;
  notify(kind: NotifierEventKind, window: MaintenanceWindow): Promise<void>;
  /** Run whatever the window now needs from its controller. */
  drive(): void;
  /** The app's beforeThaw hooks, awaited on the instance that ends a window. */
  beforeThaw(window: MaintenanceWindow): Promise<void>;
}

type NewWindowInput = {
  reason: string;
  message: string;
  startsAt: string;
  endsAt?: string;
  contact?: string;
  rollbackPlan?: string;
  scope?: string[];
  actor?: string;
  autoEnd?: boolean;
};

/**
 * A window entering `freezing` now — begun at once, or its scheduled start: writes stop from the
 * version this writes, and this instance's checklist is the window's until it hands it on.
 */
export function enterFreezing(
  s: QuiesceState,
  window: MaintenanceWindow,
  event: 'begin' | 'start',
  now: number,
  actor: string | undefined,
  controller: string,
): QuiesceState {
  const phase = requirePhase(s.window?.phase ?? null, event);
  return advance(s, now, (version) => ({
    mode: modeOf(phase),
    updatedBy: actor,
    window: {
      ...window,
      startsAt: iso(now),
      phase,
      freezeVersion: version,
      checklist: emptyChecklist(controller),
    },
  }));
}

/** The operator's commands on windows (begin, schedule, extend, end), each one audited compare-and-set. */
export class WindowController {
  #announcing = 0;

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: ControllerDeps,
  ) {}

  /** A window is being begun here: its confirmation waits until the announcement is out. */
  get announcing(): boolean {
    return this.#announcing > 0;
  }

  async begin(input: BeginInput): Promise<MaintenanceWindow> {
    const v = parseOrThrow(beginInputSchema, input, 'begin');
    await this.deps.start();
    const now = this.ctx.clock.now();
    if (v.endsAt && Date.parse(v.endsAt) <= now) {
      throw new QuiesceError('INVALID_INPUT', 'begin: endsAt: must be in the future', { field: 'endsAt' });
    }
    const w = await this.#freeze({ action: 'begin', actor: v.actor, reason: v.reason }, 'begin', now, (s) => {
      this.#assertNoOpenWindow(s);
      return this.#newWindow({ ...v, startsAt: iso(now) }, 'scheduled');
    });
    return w!;
  }

  /** The scheduled start of window `windowId` (its timer fired); nothing when it started or was cancelled meanwhile. */
  async startScheduled(windowId: string): Promise<void> {
    if (this.ctx.life.closed) return;
    try {
      const opts = { action: 'begin', actor: 'schedule', reason: 'scheduled start' } as const;
      await this.#freeze(opts, 'start', this.ctx.clock.now(), (s) =>
        s.window?.id === windowId && s.window.phase === 'scheduled' ? s.window : null,
      );
    } catch (err) {
      this.ctx.log.error('quiesce: scheduled start failed', { error: errorMessage(err) });
    }
  }

  /** Enter `freezing` (the one place that does), announce it, and start confirming it. Null if declined. */
  async #freeze(
    options: TransitionOptions,
    event: 'begin' | 'start',
    now: number,
    pick: (s: QuiesceState) => MaintenanceWindow | null,
  ): Promise<MaintenanceWindow | null> {
    this.#announcing++;
    const state = await this.deps.transitions
      .transition(options, (s) => {
        const w = pick(s);
        return w ? enterFreezing(s, w, event, now, options.actor, this.ctx.instanceId) : null;
      })
      .finally(() => this.#announcing--);
    if (!state) return null;
    void this.deps.notify('started', state.window!);
    this.deps.drive();
    return state.window!;
  }

  async schedule(input: ScheduleInput): Promise<MaintenanceWindow> {
    const v = parseOrThrow(scheduleInputSchema, input, 'schedule');
    await this.deps.start();
    const now = this.ctx.clock.now();
    const startsAt = Date.parse(v.startsAt);
    if (startsAt <= now) {
      throw new QuiesceError(
        'INVALID_INPUT',
        'schedule: startsAt: must be in the future (use begin to start now)',
        {
          field: 'startsAt',
        },
      );
    }
    if (v.endsAt && Date.parse(v.endsAt) <= startsAt) {
      throw new QuiesceError('INVALID_INPUT', 'schedule: endsAt: must be after startsAt', {
        field: 'endsAt',
      });
    }
    const state = await this.deps.transitions.transition(
      { action: 'schedule', actor: v.actor, reason: v.reason },
      (s) => {
        this.#assertNoOpenWindow(s);
        const phase = requirePhase(s.window?.phase ?? null, 'schedule');
        return advance(s, now, () => ({
          mode: modeOf(phase),
          updatedBy: v.actor,
          window: this.#newWindow(v, phase),
        }));
      },
    );
    void this.deps.notify('scheduled', state.window!);
    return state.window!;
  }

  async extend(input: ExtendInput): Promise<MaintenanceWindow> {
    const v = parseOrThrow(extendInputSchema, input, 'extend');
    await this.deps.start();
    const now = this.ctx.clock.now();
    const state = await this.deps.transitions.transition(
      { action: 'extend', actor: v.actor, reason: v.reason },
      (s) => {
        const w = this.#openWindow(s, 'extend', v.windowId, 'there is no scheduled or active window');
        let endsAt = w.endsAt;
        if (v.endsAt !== undefined) endsAt = v.endsAt;
        else if (v.byMs !== undefined)
          endsAt = iso(Math.max(now, w.endsAt ? Date.parse(w.endsAt) : now) + v.byMs);
        if (endsAt !== null && endsAt !== w.endsAt) {
          if (Date.parse(endsAt) <= now)
            throw new QuiesceError('INVALID_INPUT', 'extend: endsAt: must be in the future', {
              field: 'endsAt',
            });
          if (Date.parse(endsAt) <= Date.parse(w.startsAt)) {
            throw new QuiesceError('INVALID_INPUT', 'extend: endsAt: must be after the window starts', {
              field: 'endsAt',
            });
          }
        }
        return advance(s, now, () => ({
          updatedBy: v.actor,
          window: { ...w, endsAt, message: v.message ?? w.message },
        }));
      },
    );
    void this.deps.notify('extended', state.window!);
    return state.window!;
  }

  async end(input: EndInput = {}): Promise<MaintenanceWindow> {
    const v = parseOrThrow(endInputSchema, input, 'end');
    await this.deps.start();
    if (v.force) return this.#forceEnd(v);
    const current = this.deps.state().window;
    if (current && isReadOnlyPhase(current.phase)) await this.deps.beforeThaw(current);
    // The checklist is driven by an instance that can backfill: this one, or a live one it hands it to.
    const heir = canBackfill(this.ctx) ? null : await this.deps.drain.pickLive(true);
    const now = this.ctx.clock.now();
    let cancelled = false;
    const state = await this.deps.transitions.transition(
      { action: 'end', actor: v.actor, reason: v.reason },
      (s) => {
        const w = this.#openWindow(s, 'end', v.windowId, 'there is no scheduled or active window to end');
        cancelled = w.phase === 'scheduled';
        const phase = requirePhase(w.phase, cancelled ? 'cancel' : 'end');
        const c = w.checklist ?? emptyChecklist(null);
        return advance(s, now, (version) => ({
          mode: modeOf(phase),
          updatedBy: v.actor,
          window: {
            ...w,
            phase,
            endedAt: iso(now),
            closedAt: cancelled ? iso(now) : null,
            ...(v.message ? { report: { ...w.report, closingMessage: v.message } } : {}),
            ...(cancelled
              ? {}
              : {
                  checklist: {
                    ...c,
                    controller: heir ?? this.ctx.instanceId,
                    thawVersion: version,
                    soakStartedAt: iso(now),
                    soakMs: this.ctx.timing.soakMs,
                  },
                }),
          },
        }));
      },
    );
    const w = state.window!;
    if (cancelled) void this.deps.notify('ended', w);
    else this.deps.drive();
    return w;
  }

  /** `end({ force: true })`: close the window at once from any phase (a stuck thaw or backfill). */
  async #forceEnd(v: { actor?: string; reason?: string; message?: string }): Promise<MaintenanceWindow> {
    const now = iso(this.ctx.clock.now());
    let fromPhase = 'closed' as Phase;
    const reason = v.reason ? `forced: ${v.reason}` : 'forced end';
    const state = await this.deps.transitions.transition({ action: 'end', actor: v.actor, reason }, (s) => {
      const w = s.window;
      if (!w || w.phase === 'closed')
        throw new QuiesceError('NO_ACTIVE_WINDOW', 'end: there is no window to end (the last one is closed)');
      fromPhase = w.phase;
      const phase = requirePhase(w.phase, 'force-end');
      const c = w.checklist ?? emptyChecklist(null);
      return advance(s, now, () => ({
        mode: modeOf(phase),
        updatedBy: v.actor,
        window: {
          ...w,
          phase,
          endedAt: w.endedAt ?? now,
          closedAt: now,
          ...(v.message ? { report: { ...w.report, closingMessage: v.message } } : {}),
          checklist: { ...c, forced: { by: v.actor ?? this.ctx.instanceId, at: now, fromPhase: w.phase } },
        },
      }));
    });
    this.ctx.log.warn('quiesce: window ended by force', {
      windowId: state.window!.id,
      fromPhase,
      actor: v.actor,
    });
    void this.deps.notify(fromPhase === 'scheduled' ? 'ended' : 'closed', state.window!);
    return state.window!;
  }

  async addToReport(key: string, value: unknown): Promise<void> {
    const w = this.deps.state().window;
    if (!w) throw new QuiesceError('NO_ACTIVE_WINDOW', 'addToReport: there is no window');
    await this.deps.transitions.updateWindow(w.id, (win) => ({
      ...win,
      report: { ...win.report, [key]: value },
    }));
  }

  /** The scheduled or read-only window a command acts on (the one it names, when it names one). */
  #openWindow(
    s: QuiesceState,
    command: string,
    windowId: string | undefined,
    none: string,
  ): MaintenanceWindow {
    const w = s.window;
    if (!w || !(w.phase === 'scheduled' || isReadOnlyPhase(w.phase)))
      throw new QuiesceError('NO_ACTIVE_WINDOW', `${command}: ${none}`);
    // Conditional extend/end (#18: escalation, flag follower): act only on the window the caller names.
    if (windowId !== undefined && w.id !== windowId)
      throw new QuiesceError(
        'NO_ACTIVE_WINDOW',
        `${command}: window ${windowId} is no longer the open window`,
      );
    return w;
  }

  #assertNoOpenWindow(s: QuiesceState): void {
    const w = s.window;
    if (w && (w.phase === 'scheduled' || isReadOnlyPhase(w.phase))) {
      throw new QuiesceError(
        'WINDOW_CONFLICT',
        `window ${w.id} is already ${w.phase}; extend or end it first`,
        {
          details: { windowId: w.id, phase: w.phase },
        },
      );
    }
  }

  #newWindow(v: NewWindowInput, phase: Phase): MaintenanceWindow {
    return {
      id: this.ctx.options.generateId(),
      reason: v.reason,
      message: v.message,
      startsAt: v.startsAt,
      endsAt: v.endsAt ?? null,
      ...(v.contact ? { contact: v.contact } : {}),
      ...(v.rollbackPlan ? { rollbackPlan: v.rollbackPlan } : {}),
      ...(v.scope ? { scope: v.scope } : {}),
      ...(v.actor ? { openedBy: v.actor } : {}),
      phase,
      autoEnd: v.autoEnd ?? false,
      freezeVersion: null,
      frozenAt: null,
      endedAt: null,
      closedAt: null,
      stragglers: [],
      notices: {},
      report: {},
    };
  }
}
