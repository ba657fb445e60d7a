/**
 * The one decide→act path for HTTP-ish adapters: request facts in, either *proceed* (with the
 * in-flight handle already taken when the write is tracked) or a rendered response out. Adapters
 * supply facts and write the answer; none of them looks at a decision's outcome.
 */
import { isQuiesceError, QuiesceError } from './errors.js';
import {
  type AnyHeaders,
  bypassTokenFrom,
  type HttpIntentPayload,
  type IdempotencyKeyRule,
  idempotencyKeyFrom,
  type RenderedResponse,
  renderDecision,
  renderError,
  renderQueued,
  resolveIdempotencyKey,
} from './http.js';
import type { Logger } from './notifier.js';
import type { Annotation, Decision, Operation, RefuseDecision } from './operation.js';
import { ReadSampler } from './readHealth.js';
import type { ReadSignals } from './readSignals.js';
import { normalizeRequestPath } from './requestPath.js';
import type { InFlightHandle, QuiesceEngine } from './types.js';

/** A route's queue settings, when the framework knows the route before deciding. */
export interface HttpQueueSettings {
  /** Intent name (what `engine.handle(name, …)` replays). @default the operation name */
  name?: string;
  /** @default 'header-or-content'; a function gets the payload and wins when it returns a string. */
  idempotencyKey?: IdempotencyKeyRule | ((payload: HttpIntentPayload) => unknown);
}

/** What the framework knows about the handler that will run, when it knows it before deciding. */
export interface HttpRoute {
  /** `POST /orders/:id`: names the operation (inventory, logs). @default `${METHOD} ${path}` */
  name?: string;
  /** The handler's own policy (route helper, decorator): wins over every rule. */
  annotation?: Annotation;
  params?: Record<string, string>;
  queue?: HttpQueueSettings;
}

/** The facts of one request, as the framework has them. */
export interface HttpRequest {
  method: string;
  /** The request target as received (origin-form with query, or absolute-form). */
  target: string;
  headers: AnyHeaders;
  /** Where the app that installed the adapter is mounted (`req.baseUrl`); rules are relative to it. */
  mount?: string;
  /** Peer address (after the framework's trusted-proxy handling), for the CIDR bypass. */
  ip?: string;
  /** The acting principal; called only when a decision needs it. May throw: the write is refused. */
  principal?: () => string | undefined;
  route?: HttpRoute;
  /** The parsed body for a queued write, read up to `limit` bytes (`413` past it). */
  readBody?: (limit: number) => unknown | Promise<unknown>;
  /** The parsed query string. @default parsed from `target` */
  query?: () => Record<string, unknown>;
  /**
   * What a decision taken earlier for this request (before the body, from a route table) let
   * through. The decision here, from the handler's own metadata, must agree, or the write is refused.
   */
  earlier?: EarlyPass;
}

/** An early decision that let a request go on to its handler. */
export interface EarlyPass {
  readonly respond: null;
  readonly decision: Decision;
}

/** The request goes on to its handler. */
export interface HttpProceed {
  readonly respond: null;
  /** Held while a tracked write runs: call `done()` when its response is over. */
  readonly inFlight: InFlightHandle | null;
  /** `performance.now()` when this read is timed for read health (`-1`: not timed). */
  readonly readStart: number;
}

/** The adapter writes this response; the handler does not run. */
export interface HttpRespond {
  readonly respond: RenderedResponse;
  /** The request body was not read: close the connection rather than drain a large upload. */
  readonly unreadBody: boolean;
}

export type HttpVerdict = HttpProceed | HttpRespond;

export interface HttpEnforcerOptions {
  /** Largest request body kept in a queued intent, in bytes (larger: `413`). @default 1048576 */
  queueBodyLimit?: number;
  /** Time reads (sampled) for the engine's read-health watcher. @default true */
  reportReads?: boolean;
  /** Where a write refused because deciding failed is logged. @default console (warn) */
  logger?: Pick<Logger, 'warn'>;
}

/** The decision says the write runs and holds the drain until it is done. */
export function isTrackedWrite(decision: Decision): boolean {
  return decision.outcome === 'proceed' && decision.classification === 'write' && decision.policy !== 'allow';
}

const consoleLogger: Pick<Logger, 'warn'> = {
  warn: (message, fields) => console.warn(message, fields ?? ''),
};

const UNTRACKED: HttpProceed = Object.freeze({ respond: null, inFlight: null, readStart: -1 });

function queryOf(target: string): Record<string, unknown> {
  const q = target.indexOf('?');
  if (q === -1) return {};
  const h = target.indexOf('#', q);
  return Object.fromEntries(new URLSearchParams(target.slice(q + 1, h === -1 ? undefined : h)));
}

export class HttpEnforcer {
  readonly #engine: QuiesceEngine;
  readonly #limit: number;
  readonly #reportReads: boolean;
  readonly #log: Pick<Logger, 'warn'>;
  readonly #sampler = new ReadSampler();

  constructor(engine: QuiesceEngine, options: HttpEnforcerOptions = {}) {
    if (!engine || typeof engine.decide !== 'function' || typeof engine.track !== 'function') {
      throw new QuiesceError('INVALID_INPUT', 'engine must be a QuiesceEngine from createQuiesce()', {
        field: 'engine',
      });
    }
    const limit = options.queueBodyLimit ?? 1024 * 1024;
    if (!Number.isSafeInteger(limit) || limit <= 0) {
      throw new QuiesceError(
        'INVALID_INPUT',
        `queueBodyLimit must be a positive integer (bytes), got ${String(options.queueBodyLimit)}`,
        { field: 'queueBodyLimit' },
      );
    }
    if (options.reportReads !== undefined && typeof options.reportReads !== 'boolean') {
      throw new QuiesceError('INVALID_INPUT', 'reportReads must be a boolean', { field: 'reportReads' });
    }
    this.#engine = engine;
    this.#limit = limit;
    this.#reportReads = options.reportReads ?? true;
    this.#log = options.logger ?? consoleLogger;
  }

  get engine(): QuiesceEngine {
    return this.#engine;
  }

  /** Decide one request and act on the decision: proceed (tracked or timed), refuse, queue, drop. */
  enforce(req: HttpRequest): HttpVerdict | Promise<HttpVerdict> {
    let op: Operation;
    let decision: Decision;
    try {
      op = this.#operation(req);
      const e = req.earlier?.decision;
      if (e === undefined) {
        decision = this.#engine.decide(op);
      } else {
        // Decided (and counted) once already: the handler's own classification must agree with it.
        const c = this.#engine.classify(op);
        if (c.classification !== e.classification || c.policy !== e.policy) {
          throw new Error(
            `the early decision (${e.classification}/${e.policy}) and the handler's own (${c.classification}/${c.policy}) disagree`,
          );
        }
        decision = e;
      }
    } catch (error) {
      return this.#failClosed(req, error);
    }
    switch (decision.outcome) {
      case 'proceed':
        if (isTrackedWrite(decision))
          return { respond: null, inFlight: this.#engine.track(op), readStart: -1 };
        if (decision.classification === 'read' && this.#reportReads && this.#sampler.take()) {
          return { respond: null, inFlight: null, readStart: performance.now() };
        }
        return UNTRACKED;
      case 'refuse':
      case 'discard':
        return {
          respond: renderDecision(decision, { accept: headerOf(req.headers, 'accept') }),
          unreadBody: true,
        };
      case 'enqueue':
        return this.#enqueue(req, op, decision);
    }
  }

  /**
   * Decide before the body is read (from a route table, not the framework's dispatch): answer a
   * refused or dropped write now; anything else goes on, and the handler's own decision, given this
   * pass as `earlier`, must agree. Takes no in-flight handle.
   */
  precheck(req: HttpRequest): HttpRespond | EarlyPass {
    try {
      const d = this.#engine.decide(this.#operation(req));
      if (d.outcome === 'refuse' || d.outcome === 'discard') {
        return { respond: renderDecision(d, { accept: headerOf(req.headers, 'accept') }), unreadBody: true };
      }
      return { respond: null, decision: d };
    } catch (error) {
      return this.#failClosed(req, error);
    }
  }

  /** A timed read's response is over: report it (`failed`: 5xx, or the connection went away). */
  readDone(readStart: number, failed: boolean, signals?: ReadSignals): void {
    const now = performance.now();
    // `signals`: what the app attached to the response with attachReadSignals(res, …) (#18).
    this.#engine.reportRead({ surface: 'http', durationMs: now - readStart, error: failed, signals });
    this.#sampler.timed(now);
  }

  #operation(req: HttpRequest): Operation {
    const method = req.method.toUpperCase();
    const path = normalizeRequestPath(req.target).path;
    const route = req.route;
    const op: Operation = {
      surface: 'http',
      name: route?.name ?? `${method} ${path}`,
      method,
      path: req.target,
    };
    if (req.mount) op.mount = req.mount;
    if (route?.annotation) op.annotation = route.annotation;
    // Outside a window, and for reads and allowed writes, nothing depends on who asks: skip the
    // headers and the principal (a throwing principal function must not refuse a read).
    if (!this.#engine.readOnly) return op;
    const c = this.#engine.classify(op);
    if (c.classification === 'read' || c.policy === 'allow') return op;
    const o = this.#engine.options;
    const token = bypassTokenFrom(req.headers, { header: o.bypassHeader, cookie: o.bypassCookie });
    if (token) op.bypassToken = token;
    const key = idempotencyKeyFrom(headerBag(req.headers));
    if (key) op.idempotencyKey = key;
    if (req.ip) op.ip = req.ip;
    if (req.principal) {
      const principal = req.principal();
      if (principal !== undefined && typeof principal !== 'string') {
        throw new TypeError(`the principal function returned ${typeof principal}, not a string`);
      }
      if (principal !== undefined) op.principal = principal;
    }
    return op;
  }

  async #enqueue(req: HttpRequest, op: Operation, decision: Decision): Promise<HttpVerdict> {
    const q = req.route?.queue;
    const name = q?.name ?? op.name;
    let bodyRead = false;
    try {
      const body = req.readBody ? await req.readBody(this.#limit) : null;
      bodyRead = true;
      const payload: HttpIntentPayload = {
        method: op.method!,
        path: normalizeRequestPath(req.target).path,
        params: { ...req.route?.params },
        query: req.query ? { ...req.query() } : queryOf(req.target),
        body: body ?? null,
      };
      const source = q?.idempotencyKey;
      const key = resolveIdempotencyKey(
        typeof source === 'function' ? undefined : source,
        op.idempotencyKey,
        name,
        typeof source === 'function' ? { value: source(payload) } : undefined,
      );
      const { idempotencyKey: _replaced, ...rest } = op;
      const result = await this.#engine.enqueue(
        key === undefined ? rest : { ...rest, idempotencyKey: key },
        payload,
        { name },
      );
      return { respond: renderQueued(result, decision), unreadBody: false };
    } catch (error) {
      // Bad input (too large, not JSON, a missing or conflicting key) is the client's to fix: a 4xx
      // naming the field. A queue that cannot store the intent says so (503 QUEUE_UNAVAILABLE with
      // Retry-After, never 202). Anything else: the write is not acknowledged, so refuse it, never 500.
      if (isQuiesceError(error) && (statusOf(error) < 500 || error.code === 'QUEUE_UNAVAILABLE')) {
        return { respond: renderError(error), unreadBody: !bodyRead };
      }
      return this.#failClosed(req, error, !bodyRead);
    }
  }

  /** The normal refusal, and a log line saying why: an error while deciding never lets a write run. */
  #failClosed(req: HttpRequest, error: unknown, unreadBody = true): HttpRespond {
    this.#log.warn('quiesce: refused a write because deciding it failed', {
      method: req.method,
      target: req.target,
      error: error instanceof Error ? error.message : String(error),
    });
    return {
      respond: renderDecision(this.#refusal(req), { accept: headerOf(req.headers, 'accept') }),
      unreadBody,
    };
  }

  #refusal(req: HttpRequest): RefuseDecision {
    try {
      const d = this.#engine.decide({
        surface: 'http',
        name: `${req.method.toUpperCase()} ${normalizeRequestPath(req.target).path}`,
        annotation: { classification: 'write', policy: 'block' },
      });
      if (d.outcome === 'refuse') return d;
    } catch {
      // Fall through to a refusal of our own.
    }
    const w = this.#engine.window;
    const status = this.#engine.options.refusalStatus;
    return {
      outcome: 'refuse',
      classification: 'write',
      policy: 'block',
      status,
      retryAfter: 5,
      windowId: w?.id ?? '',
      endsAt: w?.endsAt ?? null,
      problem: {
        type: 'https://quiesce.dev/problems/read-only-mode',
        title: 'Service is in read-only mode',
        status,
        detail:
          w?.message ?? 'This write could not be checked against the maintenance policy; try again shortly.',
        code: 'READ_ONLY_MODE',
        windowId: w?.id ?? '',
        endsAt: w?.endsAt ?? null,
        retryAfter: 5,
      },
    };
  }
}

function statusOf(error: QuiesceError): number {
  return renderError(error).status;
}

function headerBag(headers: AnyHeaders): Record<string, string | string[] | undefined> {
  if (typeof (headers as { get?: unknown }).get !== 'function') return headers as Record<string, string>;
  const v = (headers as { get(n: string): string | null }).get('idempotency-key');
  return v === null ? {} : { 'idempotency-key': v };
}

function headerOf(headers: AnyHeaders, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(n: string): string | null }).get(name) ?? undefined;
  }
  const v = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}
