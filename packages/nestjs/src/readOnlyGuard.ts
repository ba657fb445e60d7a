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
import type { Decision, InFlightHandle, Operation, QuiesceEngine } from '@quiesce/core';
import { isQuiesceError, ReadSampler } from '@quiesce/core';
import {
  type HttpIntentPayload,
  type RenderedResponse,
  renderDecision,
  renderError,
  renderQueued,
  resolveIdempotencyKey,
} from '@quiesce/core/http';
import { graphqlDecision } from './graphqlOperation.js';
import { httpOperation, pathname } from './httpOperation.js';
import {
  type PlatformRequest,
  type PlatformResponse,
  rawResponse,
  requestPath,
  setHeaders,
} from './platform.js';
import { QuiesceResponse } from './quiesceResponse.js';
import { joinPath, RouteCache, type RouteInfo } from './routeInfo.js';
import {
  type EarlyDecision,
  kEarlyDecision,
  QUIESCE,
  QUIESCE_MODULE_OPTIONS,
  type ResolvedModuleOptions,
} from './tokens.js';

/** Set the headers through the platform and hand the response to the exception filters. */
function respond(res: PlatformResponse, rendered: RenderedResponse, body?: object): QuiesceResponse {
  setHeaders(res, rendered.headers);
  return QuiesceResponse.create(rendered, body ?? JSON.parse(rendered.body));
}

/** Modules (by their options) already warned about a mount path they were not given. */
const mountWarned = new WeakSet<ResolvedModuleOptions>();

const kInFlight = Symbol('quiesce.inFlight');
const kReadStart = Symbol('quiesce.readStart');

type RawResponse = ReturnType<typeof rawResponse> & {
  [kInFlight]?: InFlightHandle;
  [kReadStart]?: number;
};

// Shared listeners, no closure per request (`this` is the response). A response emits `close`
// once, after it finished or when the connection went away first (so `on`, without `once`'s wrapper).
function onWriteClose(this: RawResponse): void {
  this[kInFlight]?.done();
  this[kInFlight] = undefined;
}

/** One read listener per guard (not per request): a timed response carries only its start time. */
function readListener(engine: QuiesceEngine, sampler: ReadSampler): (this: RawResponse) => void {
  return function onReadClose(this: RawResponse): void {
    const now = performance.now();
    engine.reportRead({
      surface: 'http',
      durationMs: now - this[kReadStart]!,
      error: this.statusCode >= 500 || !this.writableFinished,
    });
    sampler.timed(now);
  };
}

@Injectable()
class ReadOnlyGuardImpl implements CanActivate {
  // TypeScript-private rather than #private: esbuild lowers #members of a decorated class to slower helpers.
  private readonly routes = new RouteCache();
  /** Which reads are timed: every read while they are rare, about one in `stride` under load. */
  private readonly sampler = new ReadSampler();
  private readonly onReadClose: (this: RawResponse) => void;

  constructor(
    @Inject(QUIESCE) private readonly engine: QuiesceEngine,
    @Inject(QUIESCE_MODULE_OPTIONS) private readonly options: ResolvedModuleOptions,
    @Optional() @Inject(ApplicationConfig) private readonly config?: ApplicationConfig,
  ) {
    this.onReadClose = readListener(engine, this.sampler);
  }

  private mountChecked = false;

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
    const early = (req as unknown as Record<symbol, EarlyDecision | undefined>)[kEarlyDecision];
    let op: Operation;
    let decision: Decision;
    if (early) {
      op = early.op;
      decision = early.decision;
    } else if (!this.engine.readOnly) {
      // The hot path: outside a window nothing depends on a header (no bypass, no key), so only
      // classify, to time reads and track writes for the drain.
      op = {
        surface: 'http',
        name: route.name,
        method: req.method,
        path: pathname(requestPath(req, this.options.mountPath)),
      };
      if (route.annotation) op.annotation = route.annotation;
      decision = this.engine.decide(op);
    } else {
      op = httpOperation(req, route, this.options);
      decision = this.engine.decide(op);
    }
    switch (decision.outcome) {
      case 'proceed': {
        const raw = rawResponse(res) as RawResponse;
        if (decision.classification === 'write') {
          // An allowed write runs during a window anyway: it does not hold the drain.
          if (decision.policy !== 'allow' && raw[kInFlight] === undefined) {
            raw[kInFlight] = this.engine.track(op);
            raw.on('close', onWriteClose);
          }
        } else if (raw[kReadStart] === undefined && this.sampler.take()) {
          raw[kReadStart] = performance.now();
          raw.on('close', this.onReadClose);
        }
        return true;
      }
      case 'refuse':
        throw respond(res, renderDecision(decision, { accept: req.headers.accept }), decision.problem);
      case 'discard':
        throw respond(res, renderDecision(decision, { accept: req.headers.accept }));
      case 'enqueue':
        return this.enqueue(req, res, op, route, decision);
    }
  }

  private async enqueue(
    req: PlatformRequest,
    res: PlatformResponse,
    op: Operation,
    route: RouteInfo,
    decision: Decision,
  ): Promise<boolean> {
    const options = route.policy?.queue ?? {};
    const source = options.idempotencyKey;
    try {
      const name = options.name ?? route.name;
      const key = resolveIdempotencyKey(
        typeof source === 'function' ? undefined : source,
        op.idempotencyKey,
        name,
        typeof source === 'function' ? { value: source(req) } : undefined,
      );
      if (key === undefined) delete op.idempotencyKey;
      else op.idempotencyKey = key;
      const payload: HttpIntentPayload = {
        method: req.method.toUpperCase(),
        path: pathname(requestPath(req, this.options.mountPath)),
        params: { ...(req.params as Record<string, string>) },
        query: { ...(req.query as Record<string, unknown>) },
        body: req.body ?? null,
      };
      const result = await this.engine.enqueue(op, payload, { name });
      throw respond(res, renderQueued(result, decision));
    } catch (error) {
      if (error instanceof QuiesceResponse) throw error;
      if (isQuiesceError(error)) throw respond(res, renderError(error));
      throw error;
    }
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
 * Refuses, queues or drops writes during a window, on HTTP routes and GraphQL mutations.
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
