import type { HttpRequest } from '@quiesce/core/http';
import { type PlatformRequest, requestPath } from './platform.js';
import type { RouteInfo } from './routeInfo.js';
import type { ResolvedModuleOptions } from './tokens.js';

/** The facts of a Nest request for core's enforcer (shared by the guard and the early decision). */
export function requestFacts(
  req: PlatformRequest,
  route: RouteInfo,
  options: ResolvedModuleOptions,
): HttpRequest {
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
