import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type Decision,
  type EnqueueDecision,
  type InFlightHandle,
  isSafeMethod,
  type Operation,
  type QuiesceEngine,
  QuiesceError,
  ReadSampler,
  readSignalsOf,
} from '@quiesce/core';
import {
  operationFromHttp,
  type RenderedResponse,
  renderDecision,
  renderError,
  renderQueued,
  resolveIdempotencyKey,
  sendNodeResponse,
} from '@quiesce/core/http';
import { hasLargeOrStreamingBody, readIntentPayload } from './intentPayload.js';
import { registerRoutes } from './registerRoutes.js';
import {
  type GuardOnRequest,
  type Handler,
  kApplied,
  kGuard,
  type Next,
  type RoutePolicy,
} from './routePolicy.js';
import { findRoute, type RouteMatch } from './routeTable.js';

export interface QuiesceMiddlewareOptions {
  /**
   * The acting principal of a request (a user or service id): kept with queued intents and passed
   * to the engine's principal bypass. Called only when a decision needs it (during a window, and on
   * routes with a helper).
   */
  principal?: (req: IncomingMessage) => string | undefined;
  /** Header carrying an operator bypass token; match the engine's `bypass.header`. @default 'x-quiesce-bypass' */
  bypassHeader?: string;
  /** Cookie carrying an operator bypass token; match the engine's `bypass.cookie`. @default 'quiesce_bypass' */
  bypassCookie?: string;
  /** Largest request body kept in a queued intent, in bytes (larger: `413`). @default 1048576 */
  queueBodyLimit?: number;
  /** Report read latency and 5xx to the engine's read-health watcher. @default true */
  reportReads?: boolean;
  /** Register the app's write routes in `engine.inventory()` on the first request. @default true */
  inventory?: boolean;
}

interface Resolved {
  principal: ((req: IncomingMessage) => string | undefined) | undefined;
  bypassHeader: string;
  bypassCookie: string;
  queueBodyLimit: number;
  reportReads: boolean;
  inventory: boolean;
}

function resolveOptions(options: QuiesceMiddlewareOptions): Resolved {
  if (options === null || typeof options !== 'object') {
    throw new QuiesceError('INVALID_INPUT', 'quiesce(engine, options): options must be an object', {
      field: 'options',
    });
  }
  const r: Resolved = {
    principal: options.principal,
    bypassHeader: options.bypassHeader ?? 'x-quiesce-bypass',
    bypassCookie: options.bypassCookie ?? 'quiesce_bypass',
    queueBodyLimit: options.queueBodyLimit ?? 1024 * 1024,
    reportReads: options.reportReads ?? true,
    inventory: options.inventory ?? true,
  };
  if (r.principal !== undefined && typeof r.principal !== 'function') {
    throw new QuiesceError('INVALID_INPUT', 'quiesce(engine, options): principal must be a function', {
      field: 'principal',
    });
  }
  for (const k of ['bypassHeader', 'bypassCookie'] as const) {
    if (typeof r[k] !== 'string' || r[k].trim() === '') {
      throw new QuiesceError('INVALID_INPUT', `quiesce(engine, options): ${k} must be a non-empty string`, {
        field: k,
      });
    }
  }
  r.bypassHeader = r.bypassHeader.toLowerCase();
  if (!Number.isSafeInteger(r.queueBodyLimit) || r.queueBodyLimit <= 0) {
    throw new QuiesceError(
      'INVALID_INPUT',
      `quiesce(engine, options): queueBodyLimit must be a positive integer (bytes), got ${String(options.queueBodyLimit)}`,
      { field: 'queueBodyLimit' },
    );
  }
  for (const k of ['reportReads', 'inventory'] as const) {
    if (typeof r[k] !== 'boolean') {
      throw new QuiesceError('INVALID_INPUT', `quiesce(engine, options): ${k} must be a boolean`, {
        field: k,
      });
    }
  }
  return r;
}

/** Uploads past this size (or chunked) are not drained after a refusal: the connection closes instead. */
const DRAIN_LIMIT = 64 * 1024;

const kInFlight = Symbol('quiesce.inFlight');
const kReadStart = Symbol('quiesce.readStart');

type Req = IncomingMessage & {
  originalUrl?: string;
  app?: unknown;
  ip?: string;
  [kGuard]?: GuardOnRequest;
  [kApplied]?: RoutePolicy | null;
};
type Res = ServerResponse & {
  [kInFlight]?: InFlightHandle;
  [kReadStart]?: number;
};

// Shared listeners (no closure per request): `this` is the response. One listener per response,
// on `close`: a response emits it once, after `finish` or when the connection went away first, and
// Node's server listens on `finish` itself (a second `finish` listener makes every emit copy an array).
function onWriteClose(this: Res): void {
  const h = this[kInFlight];
  if (h) {
    this[kInFlight] = undefined;
    h.done();
  }
}

/** One listener per middleware (not per request); a timed response carries only its start time. */
function readListener(engine: QuiesceEngine, sampler: ReadSampler): (this: Res) => void {
  return function onReadClose(this: Res): void {
    const start = this[kReadStart];
    // Excluded (an event stream, a write), or the connection went away before the response was
    // sent: not a read whose latency means anything.
    if (start === undefined || !this.writableFinished) return;
    const now = performance.now();
    engine.reportRead({
      surface: 'http',
      durationMs: now - start,
      error: this.statusCode >= 500,
      signals: readSignalsOf(this), // set by the app with attachReadSignals(res, …) (#18)
    });
    sampler.timed(now);
  };
}

/** A long-lived response (an event stream) is not a read whose latency means anything. */
export function excludeFromReadHealth(res: ServerResponse): void {
  (res as Res)[kReadStart] = undefined;
}

function pathname(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

class Guard implements GuardOnRequest {
  readonly #registered = new WeakSet<object>();
  /** The app seen last: the inventory check is one comparison per request, not a WeakSet lookup. */
  #lastApp: unknown;
  /** Which reads are timed: every read while they are rare, about one in `stride` under load. */
  readonly #sampler = new ReadSampler();
  readonly #onReadClose: (this: Res) => void;

  constructor(
    readonly engine: QuiesceEngine,
    readonly o: Resolved,
  ) {
    this.#onReadClose = readListener(engine, this.#sampler);
  }

  readonly middleware: Handler = (req, res, next) => {
    const r = req as Req;
    r[kGuard] = this;
    if (this.o.inventory && r.app !== this.#lastApp) this.#inventory(r.app);
    if (!this.engine.readOnly) {
      // The hot path: classify only, so reads are timed and writes tracked for the drain. Nothing
      // here can use a header (no bypass, no key outside a window), so core's full translation,
      // which every real decision below goes through, is not needed.
      const method = req.method ?? 'GET';
      const path = pathname(r.originalUrl ?? req.url ?? '/');
      const op: Operation = { surface: 'http', name: `${method} ${path}`, method, path };
      this.#proceed(res as Res, op, this.engine.decide(op));
      next();
      return;
    }
    this.#decideDuringWindow(r, res as Res, next);
  };

  #inventory(app: unknown): void {
    this.#lastApp = app;
    if (!app || (typeof app !== 'function' && typeof app !== 'object') || this.#registered.has(app)) return;
    this.#registered.add(app);
    // Off the request: the routes are all declared by the time the first request arrives.
    setImmediate(() => {
      try {
        registerRoutes(this.engine, app);
      } catch {
        // The inventory is a report; a router shape it cannot read must not break requests.
      }
    });
  }

  #operation(req: Req, path: string, route: RouteMatch | null, policy: RoutePolicy | null): Operation {
    const method = (req.method ?? 'GET').toUpperCase();
    // Express's req.ip honours 'trust proxy'; a plain node request has only the socket address.
    const ip = req.ip ?? req.socket?.remoteAddress;
    const facts = {
      method,
      path,
      headers: req.headers,
      ...(ip ? { ip } : {}),
      ...(this.o.principal ? { principal: this.o.principal(req) } : {}),
    };
    const opts = {
      bypassHeader: this.o.bypassHeader,
      bypassCookie: this.o.bypassCookie,
      ...(policy ? { annotation: policy.annotation } : {}),
      ...(route ? { name: `${method} ${route.pattern}` } : {}),
    };
    try {
      return operationFromHttp(facts, opts);
    } catch (err) {
      // A malformed percent-encoded bypass cookie is no token at all, not a server error.
      if (!(err instanceof URIError)) throw err;
      return operationFromHttp({ ...facts, headers: { ...req.headers, cookie: undefined } }, opts);
    }
  }

  #decideDuringWindow(req: Req, res: Res, next: Next): void {
    const method = req.method ?? 'GET';
    const path = pathname(req.originalUrl ?? req.url ?? '/');
    const safe = isSafeMethod(method);
    // Find the route before deciding, so a decision is counted once, with the route's policy.
    let route = safe ? null : findRoute(req.app, method, path);
    const kind = route?.policy?.kind;
    if (kind === 'queue' || kind === 'drop') {
      // The helper decides where it stands in the route: the handlers before it (validation, auth)
      // run first, so an invalid write is answered 400, not acknowledged and lost at replay.
      req[kApplied] = null;
      next();
      return;
    }
    let op = this.#operation(req, path, route, route?.policy ?? null);
    let d = this.engine.decide(op);
    if (safe && d.outcome !== 'proceed') {
      // A rule made a safe method a write; the route may still say otherwise.
      route = findRoute(req.app, method, path);
      if (route?.policy) {
        op = this.#operation(req, path, route, route.policy);
        d = this.engine.decide(op);
      }
    }
    req[kApplied] = route?.policy ?? null;
    this.#act(req, res, next, op, d, route);
  }

  applyPolicy(req: IncomingMessage, res: ServerResponse, next: Next, policy: RoutePolicy): void {
    const r = req as Req & { route?: { path?: unknown }; params?: Record<string, string>; baseUrl?: string };
    const path = pathname(r.originalUrl ?? req.url ?? '/');
    const pattern = typeof r.route?.path === 'string' ? `${r.baseUrl ?? ''}${r.route.path}` : path;
    const route: RouteMatch = { pattern, params: { ...r.params }, policy };
    r[kApplied] = policy;
    let op: Operation;
    try {
      op = this.#operation(r, path, route, policy);
    } catch (err) {
      next(err);
      return;
    }
    const d = this.engine.decide(op);
    const rs = res as Res;
    // The middleware may have timed this request as a read (a GET marked writes()); it is not one.
    if (d.classification === 'write') excludeFromReadHealth(rs);
    if (d.outcome === 'proceed') {
      const tracked = rs[kInFlight];
      const isWrite = d.classification === 'write' && d.policy !== 'allow';
      if (isWrite && !tracked) this.#track(rs, op);
      if (!isWrite && tracked) onWriteClose.call(rs);
      next();
      return;
    }
    if (rs[kInFlight]) onWriteClose.call(rs);
    this.#act(r, rs, next, op, d, route);
  }

  #proceed(res: Res, op: Operation, d: Decision): void {
    if (d.classification === 'read') {
      if (this.o.reportReads && this.#sampler.take()) {
        res[kReadStart] = performance.now();
        res.on('close', this.#onReadClose);
      }
    } else if (d.policy !== 'allow') {
      this.#track(res, op);
    }
  }

  #track(res: Res, op: Operation): void {
    res[kInFlight] = this.engine.track(op);
    res.on('close', onWriteClose);
  }

  #act(req: Req, res: Res, next: Next, op: Operation, d: Decision, route: RouteMatch | null): void {
    switch (d.outcome) {
      case 'proceed':
        this.#proceed(res, op, d);
        next();
        return;
      case 'refuse':
      case 'discard':
        this.#send(req, res, renderDecision(d, { accept: req.headers.accept }));
        return;
      case 'enqueue':
        this.#enqueue(req, res, op, d, route).catch(next);
        return;
    }
  }

  async #enqueue(
    req: Req,
    res: Res,
    op: Operation,
    d: EnqueueDecision,
    route: RouteMatch | null,
  ): Promise<void> {
    const q = route?.policy?.queue ?? null;
    const name = q?.name ?? op.name;
    try {
      const payload = await readIntentPayload(
        req,
        op.path ?? '/',
        route?.params ?? {},
        this.o.queueBodyLimit,
      );
      const source = q?.idempotencyKey;
      const key = resolveIdempotencyKey(
        typeof source === 'function' ? undefined : source,
        op.idempotencyKey,
        name,
        typeof source === 'function' ? { value: source(req, payload) } : undefined,
      );
      // Without a key the engine derives one from the name, the payload and the principal.
      const { idempotencyKey: _dropped, ...rest } = op;
      const result = await this.engine.enqueue(
        key === undefined ? rest : { ...rest, idempotencyKey: key },
        payload,
        { name },
      );
      this.#send(req, res, renderQueued(result, d));
    } catch (err) {
      this.#send(req, res, renderError(err));
    }
  }

  #send(req: Req, res: Res, rendered: RenderedResponse): void {
    // Do not pull a large or streaming upload off the wire after refusing it.
    if (hasLargeOrStreamingBody(req, DRAIN_LIMIT) && !res.headersSent) res.setHeader('connection', 'close');
    sendNodeResponse(res, rendered);
  }
}

/**
 * The quiesce middleware for Express 5: mount it before the routes (and before body parsers, so a
 * refused upload is never read). Reads proceed and are timed; writes proceed outside a window and are
 * tracked until their response finishes or the connection closes; during a window writes are refused
 * (`503`/`423`, `Retry-After`, problem JSON), queued (`202` + intent) or dropped (`202`) by policy.
 */
export function quiesce(engine: QuiesceEngine, options: QuiesceMiddlewareOptions = {}): Handler {
  if (!engine || typeof engine.decide !== 'function' || typeof engine.track !== 'function') {
    throw new QuiesceError(
      'INVALID_INPUT',
      'quiesce(engine): engine must be a QuiesceEngine from createQuiesce()',
      {
        field: 'engine',
      },
    );
  }
  return new Guard(engine, resolveOptions(options)).middleware;
}
