import type { EvaluationContext, EvaluationDetails, FlagMetadata } from '@openfeature/server-sdk';
import { type Client, ProviderEvents, ProviderStatus } from '@openfeature/server-sdk';
import {
  type BeginInput,
  isQuiesceError,
  isReadOnlyPhase,
  type Logger,
  type QuiesceEngine,
  QuiesceError,
  type StoreFallback,
  silentLogger,
} from '@quiesce/core';

/** The window a flag opens; each field can also come from the flag's metadata (metadata wins). */
export interface FlagWindowDefaults {
  /** Shown to users while writes are refused. @default 'This service is read-only for maintenance.' */
  message?: string;
  /** Why, for the audit and the record. @default 'feature flag <key> is on' */
  reason?: string;
  contact?: string;
  rollbackPlan?: string;
  /** Expected length of the window from the moment the flag turns on; no end when absent. */
  durationMs?: number;
}

export interface FlagFollowerOptions {
  /** The engine whose windows the flag drives. */
  engine: QuiesceEngine;
  /** An OpenFeature server client (`OpenFeature.getClient()`), bound to any provider. */
  client: Client;
  /** The boolean flag that means "read-only now". @default 'read_only' */
  flagKey?: string;
  /** Evaluation context passed with every evaluation of the flag. @default {} */
  context?: EvaluationContext;
  /** The window's message, reason, contact, rollback plan and duration when the flag's metadata has none. */
  window?: FlagWindowDefaults;
  /**
   * Safety net for a missed configuration-changed event: the flag is evaluated again this often.
   * @default 10000
   */
  pollMs?: number;
  /** How long the last good evaluation is trusted while the provider errors or is stale. @default 30000 */
  stalenessMs?: number;
  /**
   * What happens past `stalenessMs` without a good evaluation: `keep` the last decision, open a
   * window (`read-only`), or end the flag's window (`read-write`). Same words as the engine's
   * `storeFallback`. @default 'keep'
   */
  fallback?: StoreFallback;
  /** @default silentLogger */
  logger?: Logger;
}

export interface FlagFollowerStatus {
  flagKey: string;
  provider: string;
  /** The actor named in the audit for windows this flag opens and ends. */
  actor: string;
  /** Last value read from the provider without error (null: none yet). */
  flag: boolean | null;
  /** The value the engine was last brought in line with (null: not yet). */
  applied: boolean | null;
  lastEvaluatedAt: string | null;
  /** Why the last evaluation gave no decision (provider error, stale, not ready), if it did not. */
  lastError: string | null;
  /** The fallback in force since the provider went silent past `stalenessMs`, if any. */
  fallback: StoreFallback | null;
}

export interface FlagFollower {
  /** Evaluate the flag once and subscribe to the provider's events. Idempotent. */
  start(): Promise<void>;
  /** Evaluate the flag now and act on it; resolves when the engine is in line (or it could not be). */
  sync(): Promise<void>;
  status(): FlagFollowerStatus;
  /** Stop following (the engine and the client are left as they are). */
  close(): void;
}

const DEFAULT_MESSAGE = 'This service is read-only for maintenance.';
const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));
const iso = (ms: number) => new Date(ms).toISOString();

/** Metadata keys read from the flag (flagd: the flag's `metadata` object). */
function fromMetadata(m: FlagMetadata): FlagWindowDefaults & { endsAt?: string } {
  const str = (k: string) =>
    typeof m[k] === 'string' && (m[k] as string).trim() ? (m[k] as string) : undefined;
  const out: FlagWindowDefaults & { endsAt?: string } = {};
  const message = str('message');
  const reason = str('reason');
  const contact = str('contact');
  const rollbackPlan = str('rollbackPlan');
  const endsAt = str('endsAt');
  if (message) out.message = message;
  if (reason) out.reason = reason;
  if (contact) out.contact = contact;
  if (rollbackPlan) out.rollbackPlan = rollbackPlan;
  if (endsAt) out.endsAt = endsAt;
  if (typeof m.durationMs === 'number') out.durationMs = m.durationMs;
  return out;
}

/**
 * Follow a boolean OpenFeature flag: on → the engine begins a window, off → the window the flag
 * opened ends (thaw, soak, closure notice, backfill as usual).
 *
 * Several engines may follow the same flag over a shared store: each acts only when its own reading
 * of the flag changes and the store disagrees with it; `begin` is a compare-and-set that refuses to
 * open a second window, and `end` names the window it ends, so two followers never open two windows
 * nor end a window the flag did not open.
 */
export function followFlag(options: FlagFollowerOptions): FlagFollower {
  const follower = new Follower(options);
  void follower.start();
  return follower;
}

class Follower implements FlagFollower {
  readonly #engine: QuiesceEngine;
  readonly #client: Client;
  readonly #key: string;
  readonly #context: EvaluationContext;
  readonly #defaults: FlagWindowDefaults;
  readonly #pollMs: number;
  readonly #stalenessMs: number;
  readonly #fallbackMode: StoreFallback;
  readonly #log: Logger;
  readonly #actorPrefix: string;

  #flag: boolean | null = null;
  #applied: boolean | null = null;
  #lastGood: number;
  #lastEvaluatedAt: number | null = null;
  #lastError: string | null = null;
  #fallback: StoreFallback | null = null;
  #chain: Promise<void> = Promise.resolve();
  #started: Promise<void> | null = null;
  #closed = false;
  #timer: unknown = null;
  readonly #onEvent = () => void this.sync();

  constructor(o: FlagFollowerOptions) {
    if (!o || typeof o !== 'object') throw invalid('options', 'followFlag: options are required');
    if (!o.engine || typeof o.engine.begin !== 'function')
      throw invalid('engine', 'followFlag: engine must be a quiesce engine');
    if (
      !o.client ||
      typeof o.client.getBooleanDetails !== 'function' ||
      typeof o.client.addHandler !== 'function'
    )
      throw invalid(
        'client',
        'followFlag: client must be an OpenFeature server client (OpenFeature.getClient())',
      );
    this.#engine = o.engine;
    this.#client = o.client;
    this.#key = o.flagKey ?? 'read_only';
    if (typeof this.#key !== 'string' || this.#key.length === 0)
      throw invalid('flagKey', 'followFlag: flagKey must be a non-empty string');
    this.#context = o.context ?? {};
    this.#defaults = o.window ?? {};
    this.#pollMs = o.pollMs ?? 10_000;
    this.#stalenessMs = o.stalenessMs ?? 30_000;
    this.#fallbackMode = o.fallback ?? 'keep';
    this.#log = o.logger ?? silentLogger;
    for (const [field, v] of [
      ['pollMs', this.#pollMs],
      ['stalenessMs', this.#stalenessMs],
    ] as const) {
      if (!Number.isFinite(v) || v <= 0)
        throw invalid(field, `followFlag: ${field} must be a positive number, got ${v}`);
    }
    const d = this.#defaults.durationMs;
    if (d !== undefined && (!Number.isFinite(d) || d <= 0))
      throw invalid('window.durationMs', `followFlag: window.durationMs must be a positive number, got ${d}`);
    if (!['keep', 'read-only', 'read-write'].includes(this.#fallbackMode))
      throw invalid(
        'fallback',
        `followFlag: fallback must be keep, read-only or read-write, got ${this.#fallbackMode}`,
      );
    this.#actorPrefix = `openfeature:${this.#key}@`;
    this.#lastGood = this.#engine.clock.now();
  }

  get #provider(): string {
    return this.#client.metadata?.providerMetadata?.name ?? 'unknown';
  }

  /** Audit actor: the flag and the provider, e.g. `openfeature:read_only@flagd`. */
  get #actor(): string {
    return `${this.#actorPrefix}${this.#provider}`;
  }

  start(): Promise<void> {
    this.#started ??= (async () => {
      for (const e of [
        ProviderEvents.ConfigurationChanged,
        ProviderEvents.Ready,
        ProviderEvents.Error,
        ProviderEvents.Stale,
      ]) {
        this.#client.addHandler(e, this.#onEvent);
      }
      await this.sync();
      this.#schedule();
    })();
    return this.#started;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#engine.clock.clearTimeout(this.#timer);
    for (const e of [
      ProviderEvents.ConfigurationChanged,
      ProviderEvents.Ready,
      ProviderEvents.Error,
      ProviderEvents.Stale,
    ]) {
      this.#client.removeHandler(e, this.#onEvent);
    }
  }

  status(): FlagFollowerStatus {
    return {
      flagKey: this.#key,
      provider: this.#provider,
      actor: this.#actor,
      flag: this.#flag,
      applied: this.#applied,
      lastEvaluatedAt: this.#lastEvaluatedAt === null ? null : iso(this.#lastEvaluatedAt),
      lastError: this.#lastError,
      fallback: this.#fallback,
    };
  }

  /** Evaluations and the actions they cause run one at a time, in order. */
  sync(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const run = this.#chain.then(() => this.#evaluate());
    this.#chain = run.catch((err) =>
      this.#log.error('quiesce/openfeature: evaluating the flag failed', {
        flag: this.#key,
        error: errorMessage(err),
      }),
    );
    return this.#chain;
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#engine.clock.setTimeout(() => {
      void this.sync().then(() => this.#schedule());
    }, this.#pollMs);
  }

  async #evaluate(): Promise<void> {
    if (this.#closed) return;
    const now = this.#engine.clock.now();
    this.#lastEvaluatedAt = now;
    let details: EvaluationDetails<boolean> | null = null;
    let noDecision: string | null = null;
    const status = this.#client.providerStatus;
    try {
      details = await this.#client.getBooleanDetails(this.#key, false, this.#context);
    } catch (err) {
      noDecision = `evaluation threw: ${errorMessage(err)}`;
    }
    if (details) {
      if (details.errorCode)
        noDecision = `${details.errorCode}${details.errorMessage ? `: ${details.errorMessage}` : ''}`;
      else if (details.reason === 'No-op') noDecision = 'no provider is set (the no-op provider answered)';
      else if (status === ProviderStatus.STALE) noDecision = 'the provider is stale';
      else if (status !== ProviderStatus.READY) noDecision = `the provider is ${status}`;
    }
    if (noDecision !== null || !details) {
      await this.#noDecision(noDecision ?? 'no evaluation', now);
      return;
    }
    if (this.#lastError !== null || this.#fallback !== null) {
      this.#log.info('quiesce/openfeature: the flag provider answers again', {
        flag: this.#key,
        provider: this.#provider,
        fallback: this.#fallback,
      });
    }
    this.#lastGood = now;
    this.#lastError = null;
    this.#fallback = null;
    // A disabled flag resolves to the default we pass (false): the flag system says "not in use".
    this.#flag = details.value === true;
    if (this.#flag === this.#applied) return;
    const done = await this.#act(
      this.#flag,
      details,
      `flag ${this.#key} turned ${this.#flag ? 'on' : 'off'}`,
    );
    if (done) this.#applied = this.#flag;
  }

  async #noDecision(why: string, now: number): Promise<void> {
    if (this.#lastError !== why) {
      this.#log.warn('quiesce/openfeature: no decision from the flag provider; keeping the last one', {
        flag: this.#key,
        provider: this.#provider,
        error: why,
        keeping: this.#applied,
      });
    }
    this.#lastError = why;
    if (this.#fallback !== null || now - this.#lastGood <= this.#stalenessMs) return;
    this.#fallback = this.#fallbackMode;
    this.#log.error(
      `quiesce/openfeature: flag provider without a decision for over ${this.#stalenessMs} ms; applying fallback "${this.#fallbackMode}"`,
      { flag: this.#key, provider: this.#provider, error: why, since: iso(this.#lastGood) },
    );
    if (this.#fallbackMode === 'keep') return;
    const on = this.#fallbackMode === 'read-only';
    if (on === this.#applied) return;
    // The next good evaluation compares against this, and undoes it if the flag disagrees.
    if (await this.#act(on, null, `flag provider unavailable (${why}); fallback ${this.#fallbackMode}`))
      this.#applied = on;
  }

  /** Bring the engine in line with the flag. True when it is (or nothing was ours to do). */
  async #act(on: boolean, details: EvaluationDetails<boolean> | null, why: string): Promise<boolean> {
    const w = this.#engine.window;
    const open = w !== null && (w.phase === 'scheduled' || isReadOnlyPhase(w.phase));
    if (on) {
      if (open) {
        if (w.phase === 'scheduled')
          this.#log.warn('quiesce/openfeature: flag is on but a window is only scheduled; left as it is', {
            flag: this.#key,
            windowId: w.id,
          });
        return true;
      }
      return this.#begin(details, why);
    }
    if (!open || !w.openedBy?.startsWith(this.#actorPrefix)) {
      if (open)
        this.#log.info(
          'quiesce/openfeature: flag is off; the open window was not opened by the flag, left alone',
          {
            flag: this.#key,
            windowId: w.id,
            openedBy: w.openedBy ?? null,
          },
        );
      return true;
    }
    try {
      await this.#engine.end({ actor: this.#actor, reason: why, windowId: w.id });
      this.#log.info('quiesce/openfeature: flag off; window ended', { flag: this.#key, windowId: w.id });
      return true;
    } catch (err) {
      // Another follower (or an operator) ended it first.
      if (isQuiesceError(err) && err.code === 'NO_ACTIVE_WINDOW') return true;
      this.#log.error('quiesce/openfeature: could not end the window; will retry', {
        flag: this.#key,
        windowId: w.id,
        error: errorMessage(err),
      });
      return false;
    }
  }

  async #begin(details: EvaluationDetails<boolean> | null, why: string): Promise<boolean> {
    const meta = details ? fromMetadata(details.flagMetadata) : {};
    const d = this.#defaults;
    const base: BeginInput = {
      actor: this.#actor,
      reason: d.reason ?? why,
      message: d.message ?? DEFAULT_MESSAGE,
      ...(d.contact ? { contact: d.contact } : {}),
      ...(d.rollbackPlan ? { rollbackPlan: d.rollbackPlan } : {}),
      ...(d.durationMs ? { endsAt: iso(this.#engine.clock.now() + d.durationMs) } : {}),
    };
    const fromFlag: BeginInput = {
      ...base,
      ...(meta.reason ? { reason: meta.reason } : {}),
      ...(meta.message ? { message: meta.message } : {}),
      ...(meta.contact ? { contact: meta.contact } : {}),
      ...(meta.rollbackPlan ? { rollbackPlan: meta.rollbackPlan } : {}),
      ...(meta.durationMs !== undefined ? { endsAt: iso(this.#engine.clock.now() + meta.durationMs) } : {}),
      ...(meta.endsAt ? { endsAt: meta.endsAt } : {}),
    };
    for (const input of Object.keys(meta).length > 0 ? [fromFlag, base] : [base]) {
      try {
        const w = await this.#engine.begin(input);
        this.#log.info('quiesce/openfeature: flag on; window begun', { flag: this.#key, windowId: w.id });
        return true;
      } catch (err) {
        // Another follower sharing the store opened it first: the compare-and-set said so.
        if (isQuiesceError(err) && err.code === 'WINDOW_CONFLICT') return true;
        if (isQuiesceError(err) && err.code === 'INVALID_INPUT' && input === fromFlag) {
          // Fail closed: bad metadata must not keep writes on. Begin with the configured defaults.
          this.#log.error(
            "quiesce/openfeature: the flag's metadata is invalid; beginning with the defaults",
            {
              flag: this.#key,
              field: err.field ?? null,
              error: err.message,
            },
          );
          continue;
        }
        this.#log.error('quiesce/openfeature: could not begin the window; will retry', {
          flag: this.#key,
          error: errorMessage(err),
        });
        return false;
      }
    }
    return false;
  }
}

function invalid(field: string, message: string): QuiesceError {
  return new QuiesceError('INVALID_INPUT', message, { field });
}
