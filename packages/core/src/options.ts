import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { QuiesceError } from './errors.js';
import { type EscalationLimits, resolveEscalationOptions } from './escalation.js';
import type { Notifier } from './notifier.js';
import type { EngineSettings, QuiesceOptions, StoreFallback } from './types.js';

/** The engine's timings and fallback, defaults applied (the `@default`s documented on QuiesceOptions). */
export interface Timing {
  drainDeadlineMs: number;
  soakMs: number;
  heartbeatMs: number;
  leaseTtlMs: number;
  clockSkewMs: number;
  sweepMs: number;
  stalenessMs: number;
  storeFallback: StoreFallback;
}

/** QuiesceOptions with every default applied and every value checked: the one place defaults live. */
export interface ResolvedOptions {
  readonly instanceId: string;
  readonly settings: EngineSettings;
  readonly timing: Readonly<Timing>;
  /** This engine serves traffic and registers (a CLI or admin process does not). */
  readonly participant: boolean;
  /** True when this engine holds a lease: a participant on a registry it may share with others. */
  readonly leased: boolean;
  readonly notifiers: readonly Notifier[];
  readonly replay: NonNullable<QuiesceOptions['replay']>;
  readonly statusUrl: (id: string) => string;
  readonly generateId: () => string;
}

const invalid = (field: string, message: string) => new QuiesceError('INVALID_INPUT', message, { field });

export function resolveOptions(options: QuiesceOptions): ResolvedOptions {
  const notifiers = options.notifiers ?? [];
  const names = new Set<string>();
  for (const n of notifiers) {
    if (names.has(n.name)) throw invalid('notifiers', `notifiers: two notifiers are named "${n.name}"`);
    names.add(n.name);
  }
  const status = options.refusalStatus;
  if (status !== undefined && status !== 503 && status !== 423)
    throw invalid('refusalStatus', `refusalStatus must be 503 or 423, got ${status}`);
  const settings: EngineSettings = Object.freeze({
    refusalStatus: status ?? 503,
    dryRun: options.dryRun ?? false,
    bypassHeader: (options.bypass?.header ?? 'x-quiesce-bypass').toLowerCase(),
    bypassCookie: options.bypass?.cookie ?? 'quiesce_bypass',
    escalation: options.escalation ? limitsOf(resolveEscalationOptions(options.escalation)) : null,
  });
  const participant = options.participant ?? true;
  const heartbeatMs = options.heartbeatMs ?? 1000;
  const timing: Timing = {
    drainDeadlineMs: options.drainDeadlineMs ?? 30_000,
    soakMs: options.soakMs ?? 10_000,
    heartbeatMs,
    leaseTtlMs: options.leaseTtlMs ?? options.instanceTimeoutMs ?? Math.max(5000, 3 * heartbeatMs),
    clockSkewMs: options.clockSkewMs ?? 1000,
    sweepMs: options.sweepMs ?? 30_000,
    stalenessMs: options.stalenessMs ?? 30_000,
    storeFallback: options.storeFallback ?? 'keep',
  };
  for (const [k, v] of Object.entries(timing)) {
    if (typeof v === 'number' && (!Number.isFinite(v) || v < 0))
      throw invalid(k, `${k} must be a non-negative number, got ${v}`);
  }
  if (timing.leaseTtlMs < 2 * timing.heartbeatMs) {
    throw invalid(
      options.leaseTtlMs === undefined ? 'instanceTimeoutMs' : 'leaseTtlMs',
      `leaseTtlMs must be at least twice heartbeatMs (${2 * timing.heartbeatMs}), got ${timing.leaseTtlMs}`,
    );
  }
  const rate = options.replay?.ratePerSecond;
  if (rate !== undefined && (!Number.isFinite(rate) || rate < 0))
    throw invalid('replay.ratePerSecond', `replay.ratePerSecond must be a non-negative number, got ${rate}`);
  if (!['keep', 'read-only', 'read-write'].includes(timing.storeFallback)) {
    throw invalid(
      'storeFallback',
      `storeFallback must be keep, read-only or read-write, got ${timing.storeFallback}`,
    );
  }
  return {
    instanceId: options.instanceId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    settings,
    timing: Object.freeze(timing),
    participant,
    // A store the engine made for itself (memory) has nobody else on it: nothing to fence against.
    leased: participant && !!options.store?.registry,
    notifiers,
    replay: options.replay ?? {},
    statusUrl: options.intentStatusUrl ?? ((id) => `/quiesce/intents/${encodeURIComponent(id)}`),
    generateId: options.generateId ?? (() => `win_${randomUUID().replaceAll('-', '').slice(0, 20)}`),
  };
}

const limitsOf = ({ maxExtensions, extendBy }: EscalationLimits): Readonly<EscalationLimits> =>
  Object.freeze({ maxExtensions, extendBy });
