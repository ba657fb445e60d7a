import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Annotation, QuiesceError } from '@quiesce/core';
import { type HttpIntentPayload, IDEMPOTENCY_KEY_RULES, type IdempotencyKeyRule } from '@quiesce/core/http';

/** The few members of Express's `next` this package calls. */
export type Next = (error?: unknown) => void;

/** A request handler in the shape Express (and any connect-style router) calls. */
export type Handler = (req: IncomingMessage, res: ServerResponse, next: Next) => void;

/**
 * How a queued write gets its idempotency key:
 * - `'header-or-content'`: the client's `Idempotency-Key` header, else one derived from the content;
 * - `'header'`: the client must send `Idempotency-Key` (a request without it gets `400`);
 * - `'content'`: always derived from the content (method, path, query, body and principal);
 * - a function of the request and the intent payload; `undefined` falls back to the content.
 */
export type IdempotencyKeySource =
  | IdempotencyKeyRule
  | ((req: IncomingMessage, payload: HttpIntentPayload) => string | undefined);

export interface QueueOptions {
  /** @default 'header-or-content' */
  idempotencyKey?: IdempotencyKeySource;
  /** Name of the intent, which `engine.handle(name, handler)` replays. @default `${METHOD} ${route path}` */
  name?: string;
}

export type RoutePolicyKind = 'allow' | 'queue' | 'drop' | 'writes';

export interface RoutePolicy {
  readonly kind: RoutePolicyKind;
  readonly annotation: Annotation;
  readonly queue: Readonly<
    Required<Pick<QueueOptions, 'idempotencyKey'>> & Pick<QueueOptions, 'name'>
  > | null;
}

/** A route helper: a pass-through handler that carries the route's policy. */
export type PolicyHandler = Handler & { readonly [kPolicy]: RoutePolicy };

// Symbol.for: the ESM and CJS builds of this package must recognise each other's markers.
export const kPolicy: unique symbol = Symbol.for('quiesce.express.policy') as never;
export const kGuard: unique symbol = Symbol.for('quiesce.express.guard') as never;
export const kApplied: unique symbol = Symbol.for('quiesce.express.applied') as never;

/** What the middleware leaves on the request for the route helpers that run after it. */
export interface GuardOnRequest {
  /** Re-decide the request with a route's policy (the helper's own), and act on the decision. */
  applyPolicy(req: IncomingMessage, res: ServerResponse, next: Next, policy: RoutePolicy): void;
}

type Marked = IncomingMessage & { [kGuard]?: GuardOnRequest; [kApplied]?: RoutePolicy | null };

function marker(policy: RoutePolicy, requireGuard = true): PolicyHandler {
  const fn = (req: IncomingMessage, res: ServerResponse, next: Next) => {
    const r = req as Marked;
    const guard = r[kGuard];
    if (!guard) {
      if (!requireGuard) {
        next();
        return;
      }
      next(
        new TypeError(
          `quiesce: the ${policy.kind}() route helper runs without the quiesce(engine) middleware; mount app.use(quiesce(engine)) before the routes`,
        ),
      );
      return;
    }
    // The middleware already decided with this very policy (it found the route before it ran).
    if (r[kApplied] === policy) {
      next();
      return;
    }
    guard.applyPolicy(req, res, next, policy);
  };
  return Object.defineProperty(fn, kPolicy, { value: policy, enumerable: false }) as PolicyHandler;
}

const ALLOW: RoutePolicy = Object.freeze({
  kind: 'allow',
  annotation: Object.freeze({ classification: 'write', policy: 'allow' }),
  queue: null,
});
const DROP: RoutePolicy = Object.freeze({
  kind: 'drop',
  annotation: Object.freeze({ classification: 'write', policy: 'drop' }),
  queue: null,
});
const WRITES: RoutePolicy = Object.freeze({
  kind: 'writes',
  annotation: Object.freeze({ classification: 'write', policy: 'block' }),
  queue: null,
});

/** This route runs during a window (sign-in, health, webhooks that must be acknowledged). */
export function allow(): PolicyHandler {
  return marker(ALLOW);
}

/** `allow()` for this package's own routes, which also work without the middleware in front. */
export function allowUnguarded(): PolicyHandler {
  return marker(ALLOW, false);
}

/** During a window this write is acknowledged with `202` and discarded (analytics, view counters). */
export function drop(): PolicyHandler {
  return marker(DROP);
}

/** This route writes although its method looks safe (`GET /unsubscribe?token=…`): refused during a window. */
export function writes(): PolicyHandler {
  return marker(WRITES);
}

const KEY_SOURCES = new Set<unknown>(IDEMPOTENCY_KEY_RULES);

/**
 * During a window this write is kept as a durable intent and answered `202` with its id and a status
 * URL; it is replayed after the window by `engine.handle(name, handler)`.
 */
export function queue(options: QueueOptions = {}): PolicyHandler {
  if (options === null || typeof options !== 'object') {
    throw new QuiesceError('INVALID_INPUT', 'queue(options): options must be an object', {
      field: 'options',
    });
  }
  const idempotencyKey = options.idempotencyKey ?? 'header-or-content';
  if (typeof idempotencyKey !== 'function' && !KEY_SOURCES.has(idempotencyKey)) {
    throw new QuiesceError(
      'INVALID_INPUT',
      `queue(options): idempotencyKey must be 'header-or-content', 'header', 'content' or a function, got ${JSON.stringify(idempotencyKey)}`,
      { field: 'idempotencyKey' },
    );
  }
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.trim() === '')) {
    throw new QuiesceError('INVALID_INPUT', 'queue(options): name must be a non-empty string', {
      field: 'name',
    });
  }
  return marker(
    Object.freeze({
      kind: 'queue',
      annotation: Object.freeze({ classification: 'write', policy: 'queue' }),
      queue: Object.freeze({ idempotencyKey, ...(options.name ? { name: options.name } : {}) }),
    }),
  );
}

/** The policy a handler carries, if it is a route helper. */
export function policyOf(handler: unknown): RoutePolicy | null {
  return typeof handler === 'function' ? ((handler as Partial<PolicyHandler>)[kPolicy] ?? null) : null;
}
