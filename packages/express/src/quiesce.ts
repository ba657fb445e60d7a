import type { IncomingMessage, ServerResponse } from 'node:http';
import { isSafeMethod, type QuiesceEngine } from '@quiesce/core';
import {
  HttpEnforcer,
  type HttpVerdict,
  releaseNodeResponse,
  sendNodeVerdict,
  watchNodeResponse,
} from '@quiesce/core/http';
import { checkOptions } from './options.js';
import { registerRoutes } from './registerRoutes.js';
import { appBase, type ExpressRequest, requestFacts, routedPath } from './requestFacts.js';
import {
  type GuardOnRequest,
  type Handler,
  kApplied,
  kGuard,
  type Next,
  type RoutePolicy,
} from './routePolicy.js';
import { findRoute } from './routeTable.js';

export interface QuiesceMiddlewareOptions {
  /**
   * The acting principal of a request (a user or service id): kept with queued intents and passed
   * to the engine's principal bypass. Called only during a window. If it throws, the write is refused.
   */
  principal?: (req: IncomingMessage) => string | undefined;
  /** Largest request body kept in a queued intent, in bytes (larger: `413`). @default 1048576 */
  queueBodyLimit?: number;
  /** Report read latency and 5xx to the engine's read-health watcher. @default true */
  reportReads?: boolean;
  /** Register the app's write routes in `engine.inventory()` on the first request. @default true */
  inventory?: boolean;
}

const isPromise = (v: unknown): v is Promise<HttpVerdict> =>
  typeof (v as Promise<unknown>)?.then === 'function';

/** A long-lived response (an event stream) is not a read whose latency means anything. */
export function excludeFromReadHealth(res: ServerResponse): void {
  releaseNodeResponse(res);
}

class Guard implements GuardOnRequest {
  readonly #registered = new WeakSet<object>();
  #lastApp: unknown;

  constructor(
    readonly enforcer: HttpEnforcer,
    readonly o: { principal: QuiesceMiddlewareOptions['principal']; inventory: boolean },
  ) {}

  readonly middleware: Handler = (req, res, next) => {
    const r = req as ExpressRequest;
    r[kGuard] = this;
    if (this.o.inventory && r.app !== this.#lastApp) this.#inventory(r.app);
    const engine = this.enforcer.engine;
    if (!engine.readOnly || isSafeMethod(req.method)) {
      const v = this.enforcer.enforce(requestFacts(r, null, this.o.principal, engine.readOnly));
      // A GET that a rule makes a write: its route may still say otherwise (a helper of its own).
      if (v instanceof Promise || v.respond === null || !engine.readOnly) return this.#act(r, res, next, v);
    }
    const route = findRoute(r.app, req.method ?? 'GET', routedPath(r));
    const kind = route?.policy?.kind;
    if (kind === 'queue' || kind === 'drop') {
      // The helper decides where it stands in the route: the handlers before it (validation, auth)
      // run first, so an invalid write is answered 400, not acknowledged and lost at replay.
      r[kApplied] = null;
      next();
      return;
    }
    r[kApplied] = route?.policy ?? null;
    const named = route ? { ...route, pattern: `${appBase(r)}${route.pattern}` } : null;
    this.#act(r, res, next, this.enforcer.enforce(requestFacts(r, named, this.o.principal)));
  };

  /** The route helper on the route that runs re-decides with its own policy (the framework picked it). */
  applyPolicy(req: IncomingMessage, res: ServerResponse, next: Next, policy: RoutePolicy): void {
    const r = req as ExpressRequest;
    r[kApplied] = policy;
    const own = typeof r.route?.path === 'string' ? `${r.baseUrl ?? ''}${r.route.path}` : undefined;
    this.#act(
      r,
      res,
      next,
      this.enforcer.enforce(requestFacts(r, { pattern: own, params: r.params, policy }, this.o.principal)),
    );
  }

  #act(req: ExpressRequest, res: ServerResponse, next: Next, v: HttpVerdict | Promise<HttpVerdict>): void {
    if (isPromise(v)) {
      v.then((settled) => this.#act(req, res, next, settled), next);
      return;
    }
    if (v.respond === null) {
      watchNodeResponse(this.enforcer, res, v);
      next();
    } else {
      sendNodeVerdict(req, res, v);
    }
  }

  #inventory(app: unknown): void {
    this.#lastApp = app;
    if (!app || (typeof app !== 'function' && typeof app !== 'object') || this.#registered.has(app)) return;
    this.#registered.add(app);
    // Off the request: the routes are all declared by the time the first request arrives.
    setImmediate(() => {
      try {
        registerRoutes(this.enforcer.engine, app);
      } catch {
        // The inventory is a report; a router shape it cannot read must not break requests.
      }
    });
  }
}

/**
 * The quiesce middleware for Express 5: mount it before the routes (and before body parsers, so a
 * refused upload is never read). Core's `HttpEnforcer` decides and acts: reads proceed (sampled
 * for read health), writes proceed outside a window and are tracked until their response is over;
 * during a window writes are refused (`503`/`423`), queued (`202` + intent) or dropped (`202`).
 * Rules are relative to where the app is mounted (`req.baseUrl`).
 */
export function quiesce(engine: QuiesceEngine, options: QuiesceMiddlewareOptions = {}): Handler {
  const { principal, inventory, queueBodyLimit, reportReads } = checkOptions(options);
  const enforcer = new HttpEnforcer(engine, {
    ...(queueBodyLimit !== undefined ? { queueBodyLimit } : {}),
    ...(reportReads !== undefined ? { reportReads } : {}),
  });
  return new Guard(enforcer, { principal, inventory }).middleware;
}
