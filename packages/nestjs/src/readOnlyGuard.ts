import {
  type CanActivate,
  type ExecutionContext,
  Inject,
  Injectable,
  Logger,
  Optional,
  UseGuards,
} from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import type { QuiesceEngine } from '@quiesce/core';
import { type EarlyPass, type HttpVerdict, watchNodeResponse } from '@quiesce/core/http';
import { graphqlDecision } from './graphqlOperation.js';
import { type PlatformRequest, type PlatformResponse, rawResponse, setHeaders } from './platform.js';
import { QuiesceResponse } from './quiesceResponse.js';
import { forwardReadSignals } from './readSignalSources.js';
import { requestFacts } from './requestFacts.js';
import { joinPath, RouteCache } from './routeInfo.js';
import { kEarlyDecision, QUIESCE, QUIESCE_MODULE_OPTIONS, type ResolvedModuleOptions } from './tokens.js';

/** Modules (by their options) already warned about a mount path they were not given. */
const mountWarned = new WeakSet<ResolvedModuleOptions>();

@Injectable()
class ReadOnlyGuardImpl implements CanActivate {
  // TypeScript-private rather than #private: esbuild lowers #members of a decorated class to slower helpers.
  private readonly routes = new RouteCache();
  private mountChecked = false;

  constructor(
    @Inject(QUIESCE) private readonly engine: QuiesceEngine,
    @Inject(QUIESCE_MODULE_OPTIONS) private readonly options: ResolvedModuleOptions,
    @Optional() @Inject(ApplicationConfig) private readonly config?: ApplicationConfig,
  ) {}

  /**
   * Nest cannot see the path an outer Express app mounts it under before a request arrives (the
   * inventory is reported at bootstrap): at the first request, say so if `mountPath` misses it.
   */
  private checkMount(req: PlatformRequest): void {
    this.mountChecked = true;
    const base = req.baseUrl;
    const { mountPath } = this.options;
    if (typeof base !== 'string' || base === '' || mountPath.endsWith(base)) return;
    if (mountWarned.has(this.options)) return;
    mountWarned.add(this.options);
    new Logger('QuiesceModule').warn(
      `this app is mounted under ${base}, but QuiesceModule's mountPath is ${mountPath === '' ? 'not set' : mountPath}: ` +
        `the inventory, classification rules and operation names see paths without ${base}. ` +
        `Give QuiesceModule.forRoot({ mountPath: '${base}' }).`,
    );
  }

  /** Mount path + global prefix. Read on a cache miss only: the global prefix is set after the guard is created. */
  private readonly prefix = () => joinPath(this.options.mountPath, this.config?.getGlobalPrefix() ?? '');

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const type = context.getType<string>();
    if (type === 'http') return this.http(context);
    if (type === 'graphql') return graphqlDecision(this.engine, this.options, context);
    // Microservice messages and websocket events are not HTTP-ish; leave them alone.
    return true;
  }

  private http(context: ExecutionContext): boolean | Promise<boolean> {
    // The arguments directly: switchToHttp() allocates three closures per call.
    const req = context.getArgByIndex<PlatformRequest>(0);
    const res = context.getArgByIndex<PlatformResponse>(1);
    if (!this.mountChecked) this.checkMount(req);
    const route = this.routes.get(context.getHandler(), context.getClass(), req.method, this.prefix);
    const facts = requestFacts(req, route, this.options);
    // The handler's own metadata decides; an early decision that let the request through must agree.
    const early = (req as unknown as Record<symbol, EarlyPass | undefined>)[kEarlyDecision];
    if (early) facts.earlier = early;
    const verdict = this.options.enforcer.enforce(facts);
    return verdict instanceof Promise
      ? verdict.then((v) => this.act(req, res, v))
      : this.act(req, res, verdict);
  }

  private act(req: PlatformRequest, res: PlatformResponse, verdict: HttpVerdict): boolean {
    if (verdict.respond === null) {
      const raw = rawResponse(res);
      // A timed read: what the handler attaches with attachReadSignals(req | res) rides on it (#18).
      if (verdict.readStart >= 0) forwardReadSignals(raw, req, res);
      watchNodeResponse(this.options.enforcer, raw, verdict);
      return true;
    }
    // Headers through the platform; Nest's exception filters (ours) send the body core rendered.
    setHeaders(res, verdict.respond.headers);
    const { body, headers, status } = verdict.respond;
    const json = headers['content-type']?.includes('json') ? (JSON.parse(body) as object) : { status };
    throw QuiesceResponse.create(verdict.respond, json);
  }
}

/** The guard as an instance: what `APP_GUARD` and `@UseGuards(ReadOnlyGuard)` create. */
export interface ReadOnlyGuard extends CanActivate {
  canActivate(context: ExecutionContext): boolean | Promise<boolean>;
}

export interface ReadOnlyGuardType {
  new (engine: QuiesceEngine, options: ResolvedModuleOptions, config?: ApplicationConfig): ReadOnlyGuard;
  /** `@ReadOnlyGuard()` on a controller or handler: the same as `@UseGuards(ReadOnlyGuard)`. */
  (): ClassDecorator & MethodDecorator;
}

/**
 * Refuses, queues or drops writes during a window, on HTTP routes and GraphQL mutations: core's
 * `HttpEnforcer` decides and acts; the guard hands it the request's facts and the handler's policy.
 *
 * - globally: `{ provide: APP_GUARD, useClass: ReadOnlyGuard }` (or `QuiesceModule.forRoot({ globalGuard: true })`)
 * - per controller or handler: `@ReadOnlyGuard()` or `@UseGuards(ReadOnlyGuard)`
 *
 * One name for the class and the decorator: calling it returns the decorator, `new` builds the guard.
 */
export const ReadOnlyGuard: ReadOnlyGuardType = new Proxy(ReadOnlyGuardImpl, {
  apply: () => UseGuards(ReadOnlyGuard),
}) as unknown as ReadOnlyGuardType;

// Nest reads the injection metadata from the class it is given: the proxy, a different object.
for (const key of Reflect.getOwnMetadataKeys(ReadOnlyGuardImpl)) {
  Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, ReadOnlyGuardImpl), ReadOnlyGuard);
}
