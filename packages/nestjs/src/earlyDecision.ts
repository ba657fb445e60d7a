import type { IncomingMessage } from 'node:http';
import type { AbstractHttpAdapter, ApplicationConfig, DiscoveryService, MetadataScanner } from '@nestjs/core';
import { compilePathPattern, isSafeMethod } from '@quiesce/core';
import { hasLargeUnreadBody, normalizeRequestPath, sendNodeVerdict } from '@quiesce/core/http';
import { type PlatformRequest, requestPath } from './platform.js';
import { ReadOnlyGuard } from './readOnlyGuard.js';
import { requestFacts } from './requestFacts.js';
import { joinPath, type RouteInfo } from './routeInfo.js';
import { controllerRoutes } from './routeInventory.js';
import { kEarlyDecision, type ResolvedModuleOptions } from './tokens.js';

const GUARDS_METADATA = '__guards__';

function hasReadOnlyGuard(target: Function): boolean {
  const guards: unknown[] | undefined = Reflect.getMetadata(GUARDS_METADATA, target);
  return guards?.includes(ReadOnlyGuard) ?? false;
}

/** True when the app registered the guard itself as `APP_GUARD` (Nest names such tokens `APP_GUARD (UUID: …)`). */
function appGuardRegistered(discovery: DiscoveryService): boolean {
  return discovery
    .getProviders()
    .some(
      (w) => w.metatype === ReadOnlyGuard && typeof w.token === 'string' && w.token.startsWith('APP_GUARD'),
    );
}

interface Table {
  /** Fastify: `POST /orders/:id` (its route pattern, without the mount path) → route. */
  byPattern: Map<string, RouteInfo>;
  /** Express: per method, path matchers in registration order. */
  byMethod: Map<string, Array<{ pattern: RegExp; route: RouteInfo }>>;
}

/**
 * Decides unsafe requests during a window before the platform reads their body, so a refused
 * upload is never read. It may only be stricter than the guard: it answers refusals and drops;
 * what it lets through is decided again by the guard from the handler's own metadata, and refused
 * if the two disagree (the route table here is not the framework's dispatch). Express: a middleware placed right before Nest's body parsers (after the
 * app's own middleware such as CORS). Fastify: a `preParsing` hook (after `onRequest` hooks such as
 * CORS, before the content-type parser). Only routes behind ReadOnlyGuard are decided here; what it
 * does not answer (proceed, queue) goes on to the guard with the decision attached, so each
 * request is decided once. Outside a window it costs one property read.
 */
export function installEarlyDecision(
  adapter: AbstractHttpAdapter | undefined,
  options: ResolvedModuleOptions,
  discovery: DiscoveryService,
  scanner: MetadataScanner,
  config: ApplicationConfig | undefined,
  globalGuard: boolean,
): void {
  if (!adapter || !options.decideBeforeBody) return;
  const type = adapter.getType();
  if (type !== 'express' && type !== 'fastify') return;
  const { engine, enforcer, mountPath } = options;

  let table: Table | undefined;
  // Built on first use: the global prefix is set after the module is created.
  const routes = (): Table => {
    if (table) return table;
    const everywhere = globalGuard || appGuardRegistered(discovery);
    table = { byPattern: new Map(), byMethod: new Map() };
    const prefix = joinPath(mountPath, config?.getGlobalPrefix() ?? '');
    for (const r of controllerRoutes(discovery, scanner, prefix)) {
      if (r.method === 'ALL' || isSafeMethod(r.method)) continue;
      if (!everywhere && !hasReadOnlyGuard(r.handler) && !hasReadOnlyGuard(r.controller)) continue;
      // Fastify knows its routes without the mount path (`/nest/orders` → `/orders`).
      const pattern = r.route.path.slice(mountPath.length) || '/';
      table.byPattern.set(`${r.method} ${pattern}`, r.route);
      let list = table.byMethod.get(r.method);
      if (!list) {
        list = [];
        table.byMethod.set(r.method, list);
      }
      try {
        list.push({ pattern: compilePathPattern(r.route.path), route: r.route });
      } catch {
        // A pattern core cannot read (path-to-regexp syntax): the guard decides that route.
      }
    }
    return table;
  };

  const precheck = (req: PlatformRequest, route: RouteInfo) =>
    enforcer.precheck(requestFacts(req, route, options));

  if (type === 'express') {
    const early = (
      req: IncomingMessage & PlatformRequest,
      res: Parameters<typeof sendNodeVerdict>[1],
      next: () => void,
    ) => {
      if (!engine.readOnly || isSafeMethod(req.method)) return next();
      // The patterns start with the module's mount path, as the request path does.
      const path = normalizeRequestPath(requestPath(req, mountPath)).path;
      const candidates = routes().byMethod.get(req.method);
      const match = candidates?.find((c) => c.pattern.test(path));
      if (!match) return next();
      const verdict = precheck(req, match.route);
      if (verdict.respond !== null) return sendNodeVerdict(req, res, verdict);
      (req as unknown as Record<symbol, unknown>)[kEarlyDecision] = verdict;
      next();
    };
    // Nest registers its body parsers at init, after the app's own `app.use()` and `enableCors()`:
    // slot in right before them.
    const target = adapter as AbstractHttpAdapter & { registerParserMiddleware(...args: unknown[]): unknown };
    const registerParsers = target.registerParserMiddleware.bind(target);
    target.registerParserMiddleware = (...args: unknown[]) => {
      target.use(early);
      return registerParsers(...args);
    };
    return;
  }

  const fastify = adapter.getInstance() as {
    addHook(
      name: 'preParsing',
      hook: (
        request: any,
        reply: any,
        payload: unknown,
        done: (err: Error | null, payload?: unknown) => void,
      ) => void,
    ): unknown;
  };
  fastify.addHook('preParsing', (request, reply, payload, done) => {
    if (!engine.readOnly || isSafeMethod(request.method)) return done(null, payload);
    const pattern: string | undefined = request.routeOptions?.url;
    const route = pattern === undefined ? undefined : routes().byPattern.get(`${request.method} ${pattern}`);
    if (!route) return done(null, payload);
    const verdict = precheck(request, route);
    if (verdict.respond !== null) {
      const rendered = verdict.respond;
      const headers = hasLargeUnreadBody(request.raw)
        ? { ...rendered.headers, connection: 'close' }
        : rendered.headers;
      reply.code(rendered.status).headers(headers).send(Buffer.from(rendered.body));
      return;
    }
    // Nest hands the guard this same request object.
    request[kEarlyDecision] = verdict;
    done(null, payload);
  });
}
