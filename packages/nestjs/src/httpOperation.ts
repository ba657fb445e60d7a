import type { Operation } from '@quiesce/core';
import { operationFromHttp } from '@quiesce/core/http';
import { type PlatformRequest, requestPath } from './platform.js';
import type { RouteInfo } from './routeInfo.js';
import type { ResolvedModuleOptions } from './tokens.js';

export function pathname(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** The operation for a request to a route, through core's one HTTP translation. */
export function httpOperation(
  req: PlatformRequest,
  route: RouteInfo,
  options: ResolvedModuleOptions,
): Operation {
  const facts = {
    method: req.method,
    path: requestPath(req, options.mountPath),
    headers: req.headers,
    ip: req.ip,
    principal: options.principal?.(req),
  };
  const translate = {
    name: route.name,
    annotation: route.annotation,
    bypassHeader: options.bypassHeader,
    bypassCookie: options.bypassCookie,
  };
  try {
    return operationFromHttp(facts, translate);
  } catch (error) {
    // A malformed percent-encoded bypass cookie is no token at all, not a server error.
    if (!(error instanceof URIError)) throw error;
    return operationFromHttp({ ...facts, headers: { ...req.headers, cookie: undefined } }, translate);
  }
}
