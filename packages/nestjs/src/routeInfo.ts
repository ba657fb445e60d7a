import { RequestMethod } from '@nestjs/common';
import type { Annotation } from '@quiesce/core';
import { isSafeMethod } from '@quiesce/core';
import { annotationOf, type RoutePolicy, routePolicy } from './policyDecorators.js';

/** Nest's own metadata keys (`@nestjs/common` constants), read to name routes. */
const PATH_METADATA = 'path';
const METHOD_METADATA = 'method';

/** What the guard needs about one handler, computed once. */
export interface RouteInfo {
  /** `POST /orders/:id`: the operation name shared by decisions and the inventory. */
  name: string;
  method: string;
  path: string;
  policy: RoutePolicy | undefined;
  annotation: Annotation | undefined;
}

function first(value: unknown): string {
  const v = Array.isArray(value) ? value[0] : value;
  return typeof v === 'string' ? v : '';
}

/** Join path pieces the way Nest does: one slash between, none trailing, `/` for nothing. */
export function joinPath(...parts: string[]): string {
  const segments = parts.map((p) => p.replace(/^\/+|\/+$/g, '')).filter((p) => p !== '');
  return `/${segments.join('/')}`;
}

/** The HTTP method a handler is declared with (`@Post()` → `POST`), or undefined for `@All()`. */
export function declaredMethod(handler: Function): string | undefined {
  const m: RequestMethod | undefined = Reflect.getMetadata(METHOD_METADATA, handler);
  if (m === undefined || m === RequestMethod.ALL) return undefined;
  return RequestMethod[m];
}

/**
 * The route pattern of a handler: prefix (the module's `mountPath`, then Nest's global prefix) +
 * controller path + handler path.
 */
export function routePattern(handler: Function, controller: Function, prefix: string): string {
  return joinPath(
    prefix,
    first(Reflect.getMetadata(PATH_METADATA, controller)),
    first(Reflect.getMetadata(PATH_METADATA, handler)),
  );
}

export function describeRoute(
  handler: Function,
  controller: Function,
  method: string,
  prefix: string,
): RouteInfo {
  const path = routePattern(handler, controller, prefix);
  const policy = routePolicy(handler, controller);
  return {
    name: `${method} ${path}`,
    method,
    path,
    policy,
    annotation: annotationOf(policy, isSafeMethod(method)),
  };
}

/**
 * Route descriptions cached by handler (and method, for `@All()` handlers), so the hot path does
 * no string work after the first request.
 */
export class RouteCache {
  readonly #byHandler = new WeakMap<Function, RouteInfo | Map<string, RouteInfo>>();

  get(handler: Function, controller: Function, method: string, prefix: () => string): RouteInfo {
    const hit = this.#byHandler.get(handler);
    if (hit !== undefined) {
      if (!(hit instanceof Map)) return hit;
      const m = hit.get(method);
      if (m) return m;
    }
    const info = describeRoute(handler, controller, method, prefix());
    if (declaredMethod(handler) !== undefined) {
      this.#byHandler.set(handler, info);
    } else {
      const map = hit instanceof Map ? hit : new Map<string, RouteInfo>();
      map.set(method, info);
      this.#byHandler.set(handler, map);
    }
    return info;
  }
}
