import type { HttpRequest, HttpRoute } from '@quiesce/core/http';
import { type PlatformRequest, requestPath } from './platform.js';
import type { RouteInfo } from './routeInfo.js';
import type { ResolvedModuleOptions } from './tokens.js';

/** What a route says whatever the request: built once per handler. */
const staticRoutes = new WeakMap<RouteInfo, HttpRoute>();

function staticRoute(route: RouteInfo): HttpRoute {
  let r = staticRoutes.get(route);
  if (!r) {
    r = { name: route.name, ...(route.annotation ? { annotation: route.annotation } : {}) };
    staticRoutes.set(route, r);
  }
  return r;
}

/** The facts of a Nest request for core's enforcer (shared by the guard and the early decision). */
export function requestFacts(
  req: PlatformRequest,
  route: RouteInfo,
  options: ResolvedModuleOptions,
): HttpRequest {
  if (!options.engine.readOnly) {
    // Outside a window nothing reads the caller, the body or the params: the hot path allocates little.
    return {
      method: req.method,
      target: requestPath(req, options.mountPath),
      headers: req.headers,
      mount: options.mountPath,
      route: staticRoute(route),
    };
  }
  const principal = options.principal;
  const queue = route.policy?.queue;
  const source = queue?.idempotencyKey;
  const facts: HttpRequest = {
    method: req.method,
    target: requestPath(req, options.mountPath),
    headers: req.headers,
    mount: options.mountPath,
    route: {
      name: route.name,
      ...(route.annotation ? { annotation: route.annotation } : {}),
      params: { ...(req.params as Record<string, string> | undefined) },
      ...(queue
        ? {
            queue: {
              ...(queue.name ? { name: queue.name } : {}),
              ...(source
                ? { idempotencyKey: typeof source === 'function' ? () => source(req) : source }
                : {}),
            },
          }
        : {}),
    },
    readBody: () => req.body ?? null,
    query: () => ({ ...(req.query as Record<string, unknown> | undefined) }),
  };
  if (req.ip) facts.ip = req.ip;
  if (principal) facts.principal = () => principal(req);
  return facts;
}
