import { METHODS } from 'node:http';
import { policyOf, type RoutePolicy } from './routePolicy.js';

/*
 * Express runs app-level middleware before it knows which route matches, yet a route helper must
 * be known before the body is read or the request refused. So the middleware looks the route up
 * in the app's router the way the router itself would (the router's own layers do the matching),
 * but only during a window and only for writes: the hot path never comes here.
 *
 * These are the router's internal shapes (router 2.x, Express 5), read defensively.
 */
interface LayerLike {
  handle?: unknown;
  route?: RouteLike;
  method?: string;
  /** router >= 2.3: the registered path. */
  rawPath?: unknown;
  /** router >= 2.3 returns the match; older 2.x returns a boolean and stores path/params on the layer. */
  match?(path: string): { path: string; params: Record<string, string>; pattern?: unknown } | boolean;
  path?: string;
  params?: Record<string, string>;
}

interface RouteLike {
  path?: unknown;
  methods?: Record<string, boolean>;
  stack?: LayerLike[];
}

export interface RouteMatch {
  /** The full route pattern, mount paths included (`/api/orders/:id`). */
  pattern: string;
  params: Record<string, string>;
  policy: RoutePolicy | null;
}

export interface ListedRoute {
  /** Upper case; `*` for `.all()`. */
  method: string;
  path: string;
  policy: RoutePolicy | null;
}

function rootStack(app: unknown): LayerLike[] | null {
  // Express 5 keeps its router at `app.router`; Express 4 at `app._router`.
  const a = app as { router?: { stack?: unknown }; _router?: { stack?: unknown } } | null | undefined;
  const stack = a?.router?.stack ?? a?._router?.stack;
  return Array.isArray(stack) ? (stack as LayerLike[]) : null;
}

function childStack(layer: LayerLike): LayerLike[] | null {
  const stack = (layer.handle as { stack?: unknown } | undefined)?.stack;
  return !layer.route && Array.isArray(stack) ? (stack as LayerLike[]) : null;
}

function patternText(p: unknown): string {
  if (typeof p === 'string') return p;
  if (p instanceof RegExp) return String(p);
  return '';
}

function join(prefix: string, path: string): string {
  if (path === '' || path === '/') return prefix || '/';
  return `${prefix}${path.startsWith('/') ? '' : '/'}${path}`;
}

/** The prefix under a mount path: '' stays '' for a router mounted at '/'. */
function mountPrefix(prefix: string, mount: string): string {
  const m = mount.replace(/\/+$/, '');
  return m === '' ? prefix : `${prefix}${m.startsWith('/') ? '' : '/'}${m}`;
}

function matchLayer(
  layer: LayerLike,
  path: string,
): { path: string; params: Record<string, string>; pattern: unknown } | null {
  if (typeof layer.match !== 'function') return null;
  let m: ReturnType<NonNullable<LayerLike['match']>>;
  try {
    m = layer.match(path);
  } catch {
    return null; // a malformed parameter: the router answers 400 itself
  }
  if (!m) return null;
  if (m === true)
    return {
      path: layer.path ?? '',
      params: { ...layer.params },
      pattern: layer.route?.path ?? layer.rawPath,
    };
  return { path: m.path, params: m.params, pattern: m.pattern ?? layer.rawPath ?? layer.route?.path };
}

function handlesMethod(route: RouteLike, method: string): boolean {
  const m = route.methods;
  if (!m) return false;
  if (m._all) return true;
  const name = method.toLowerCase();
  return Boolean(m[name] || (name === 'head' && m.get));
}

function routePolicy(route: RouteLike, method: string): RoutePolicy | null {
  const name = method.toLowerCase();
  for (const l of route.stack ?? []) {
    const policy = policyOf(l.handle);
    if (policy && (l.method === undefined || l.method === name || (name === 'head' && l.method === 'get')))
      return policy;
  }
  return null;
}

function find(
  stack: LayerLike[],
  method: string,
  path: string,
  prefix: string,
  params: Record<string, string>,
  depth: number,
): RouteMatch | null {
  if (depth > 32) return null;
  for (const layer of stack) {
    const m = matchLayer(layer, path);
    if (!m) continue;
    if (layer.route) {
      if (!handlesMethod(layer.route, method)) continue;
      return {
        pattern: join(prefix, patternText(m.pattern)),
        params: { ...params, ...m.params },
        policy: routePolicy(layer.route, method),
      };
    }
    const child = childStack(layer);
    if (!child) continue;
    let rest = path.slice(m.path.length);
    if (!rest.startsWith('/')) rest = `/${rest}`;
    const mount =
      typeof m.pattern === 'string' || m.pattern instanceof RegExp ? patternText(m.pattern) : m.path;
    const found = find(
      child,
      method,
      rest,
      mountPrefix(prefix, mount),
      { ...params, ...m.params },
      depth + 1,
    );
    if (found) return found;
  }
  return null;
}

/**
 * The route that will serve `method path` in `app` (the first matching route, as Express picks it),
 * with its policy; null when no route matches. `path` is the pathname without the query string.
 */
export function findRoute(app: unknown, method: string, path: string): RouteMatch | null {
  const stack = rootStack(app);
  return stack ? find(stack, method, path, '', {}, 0) : null;
}

function list(stack: LayerLike[], prefix: string, out: ListedRoute[], depth: number): void {
  if (depth > 32) return;
  for (const layer of stack) {
    const raw = layer.rawPath ?? layer.route?.path;
    const paths = Array.isArray(raw) ? raw : [raw];
    if (layer.route) {
      const route = layer.route;
      const registered = route.methods ?? {};
      // Express's app.all() registers every method one by one: list it as one `*` entry.
      const all = registered._all || METHODS.every((m) => registered[m.toLowerCase()]);
      const methods = all ? ['_all'] : Object.keys(registered).filter((m) => registered[m]);
      for (const p of paths) {
        const full = join(prefix, patternText(p));
        for (const m of methods) {
          const method = m === '_all' ? '*' : m.toUpperCase();
          out.push({ method, path: full, policy: routePolicy(route, m === '_all' ? 'POST' : m) });
        }
      }
      continue;
    }
    const child = childStack(layer);
    if (!child) continue;
    // Without rawPath (router < 2.3) a mount path is not recoverable; list the routes unprefixed.
    for (const p of paths) {
      list(child, mountPrefix(prefix, patternText(p)), out, depth + 1);
    }
  }
}

/** Every route of `app` with its methods and policy, mount paths included. */
export function listRoutes(app: unknown): ListedRoute[] {
  const stack = rootStack(app);
  const out: ListedRoute[] = [];
  if (stack) list(stack, '', out, 0);
  return out;
}
