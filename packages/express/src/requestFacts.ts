import type { IncomingMessage } from 'node:http';
import { type HttpRequest, readNodeBody } from '@quiesce/core/http';
import type { GuardOnRequest, kApplied, kGuard, RoutePolicy } from './routePolicy.js';

/** The members of Express's request read here (structural: Express is a peer, not imported). */
export type ExpressRequest = IncomingMessage & {
  originalUrl?: string;
  baseUrl?: string;
  app?: { path?: () => string };
  ip?: string;
  params?: Record<string, string>;
  query?: Record<string, unknown>;
  route?: { path?: unknown };
  [kGuard]?: GuardOnRequest;
  [kApplied]?: RoutePolicy | null;
};

/** A route Express will run for the request, when known before deciding. */
export interface KnownRoute {
  /** Full pattern (`/app/orders/:id`), for the operation name. */
  pattern?: string | undefined;
  params?: Record<string, string> | undefined;
  policy: RoutePolicy | null;
}

/** Where `req.app` is mounted, so its router is searched with the path it routes on. */
export function appBase(req: ExpressRequest): string {
  try {
    const p = typeof req.app?.path === 'function' ? req.app.path() : '';
    return typeof p === 'string' ? p : '';
  } catch {
    return '';
  }
}

/** The path `req.app`'s router routes on: below the app's mount point, above the middleware's. */
export function routedPath(r: ExpressRequest): string {
  const baseUrl = r.baseUrl ?? '';
  const below = baseUrl.slice(Math.min(appBase(r).length, baseUrl.length));
  // Absolute-form (`POST http://host/app/login`): Express keeps the scheme and host in `req.url`.
  const url = (r.url ?? '/').replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '') || '/';
  const q = url.indexOf('?');
  return below + (q === -1 ? url : url.slice(0, q));
}

/** An Express request as core's request facts: rules are relative to `req.baseUrl`. */
export function requestFacts(
  r: ExpressRequest,
  route: KnownRoute | null,
  principal: ((req: IncomingMessage) => string | undefined) | undefined,
  duringWindow = true,
): HttpRequest {
  const method = (r.method ?? 'GET').toUpperCase();
  const ip = duringWindow ? (r.ip ?? r.socket?.remoteAddress) : undefined;
  const facts: HttpRequest = {
    method,
    target: r.originalUrl ?? r.url ?? '/',
    headers: r.headers,
    mount: r.baseUrl ?? '',
  };
  // Outside a window nothing reads the caller or the body: no closures on the hot path.
  if (!duringWindow) return facts;
  facts.readBody = (limit) => readNodeBody(r, limit);
  facts.query = () => (r.query && typeof r.query === 'object' ? r.query : {});
  if (ip) facts.ip = ip;
  if (principal) facts.principal = () => principal(r);
  if (route) {
    const q = route.policy?.queue;
    const source = q?.idempotencyKey;
    facts.route = {
      ...(route.pattern ? { name: `${method} ${route.pattern}` } : {}),
      ...(route.policy ? { annotation: route.policy.annotation } : {}),
      params: { ...route.params },
      ...(q
        ? {
            queue: {
              ...(q.name ? { name: q.name } : {}),
              idempotencyKey: typeof source === 'function' ? (p) => source(r, p) : source,
            },
          }
        : {}),
    };
  }
  return facts;
}
