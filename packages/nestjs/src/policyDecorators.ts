import { type Annotation, type Classification, type Policy, QuiesceError } from '@quiesce/core';
import type { IdempotencyKeyRule } from '@quiesce/core/http';

/** Reflect-metadata key holding a handler's (or controller's) {@link RoutePolicy}. */
export const POLICY_METADATA = 'quiesce:policy';

/** How a queued write gets its idempotency key. */
export type IdempotencyKeySource =
  /** `header`: the client must send `Idempotency-Key` (400 without); `content`: always derived. */
  | Exclude<IdempotencyKeyRule, 'header-or-content'>
  /** Your own function of the platform request; `undefined` falls back to the content. */
  | ((request: any) => string | undefined);

export interface QueueDuringReadOnlyOptions {
  /**
   * Name of the write intent, and of the handler `engine.handle(name, …)` that replays it.
   * @default the operation name, e.g. `POST /orders`
   */
  name?: string;
  /**
   * Where the idempotency key comes from.
   * @default the `Idempotency-Key` header when present, otherwise derived from the content
   */
  idempotencyKey?: IdempotencyKeySource;
}

/** What the decorators recorded for one handler or controller. */
export interface RoutePolicy {
  classification?: Classification;
  policy?: Policy;
  queue?: QueueDuringReadOnlyOptions;
  /** The policy came from the controller (a default for its writes, not a claim that reads write). */
  inherited?: boolean;
}

function merge(target: object, patch: RoutePolicy): void {
  const previous: RoutePolicy | undefined = Reflect.getOwnMetadata(POLICY_METADATA, target);
  Reflect.defineMetadata(POLICY_METADATA, { ...previous, ...patch }, target);
}

/** A decorator that works on a controller (default for every handler) or on one handler. */
function policyDecorator(patch: RoutePolicy): ClassDecorator & MethodDecorator {
  return ((target: object, _key?: string | symbol, descriptor?: PropertyDescriptor) => {
    merge(descriptor ? (descriptor.value as object) : target, patch);
    return descriptor;
  }) as ClassDecorator & MethodDecorator;
}

/** The handler runs during a window anyway: sign-in, health, the admin surface. */
export function AllowDuringReadOnly(): ClassDecorator & MethodDecorator {
  return policyDecorator({ policy: 'allow' });
}

/**
 * During a window the write is kept as a durable write intent and answered `202 Accepted` with
 * the intent id, its idempotency key and a status URL; the handler does not run. Replay it after
 * the window with `engine.handle(name, (payload) => …)`; the payload is
 * `{ method, path, params, query, body }` (as in `@quiesce/express`).
 */
export function QueueDuringReadOnly(
  options: QueueDuringReadOnlyOptions = {},
): ClassDecorator & MethodDecorator {
  const invalid = (field: string, message: string) =>
    new QuiesceError('INVALID_INPUT', `QueueDuringReadOnly(options): ${field} ${message}`, { field });
  if (options === null || typeof options !== 'object') throw invalid('options', 'must be an object');
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.trim() === '')) {
    throw invalid('options.name', 'must be a non-empty string');
  }
  const key = options.idempotencyKey;
  if (key !== undefined && key !== 'header' && key !== 'content' && typeof key !== 'function') {
    throw invalid('options.idempotencyKey', `must be 'header', 'content' or a function, got ${String(key)}`);
  }
  return policyDecorator({ policy: 'queue', queue: { ...options } });
}

/** Non-critical write: during a window it is acknowledged (`202`), discarded and counted. */
export function DropDuringReadOnly(): ClassDecorator & MethodDecorator {
  return policyDecorator({ policy: 'drop' });
}

/** The handler writes although its method looks safe (a `GET` that records something). */
export function Writes(): ClassDecorator & MethodDecorator {
  return policyDecorator({ classification: 'write' });
}

/** The handler's policy, the handler's own decorators winning over its controller's. */
export function routePolicy(handler: Function, controller: Function | undefined): RoutePolicy | undefined {
  const own: RoutePolicy | undefined = Reflect.getMetadata(POLICY_METADATA, handler);
  const fromClass: RoutePolicy | undefined = controller
    ? Reflect.getMetadata(POLICY_METADATA, controller)
    : undefined;
  if (!fromClass) return own;
  const merged: RoutePolicy = { ...fromClass, ...own };
  if (own?.policy === undefined && fromClass.policy !== undefined) merged.inherited = true;
  return merged;
}

/**
 * The core annotation for a handler, or undefined when nothing was decided. On a safe method
 * (`GET`), `@Writes()` or a queue/drop decorator on the handler itself says it writes; `allow`, or a
 * policy its controller gives every handler, leaves it a read.
 */
export function annotationOf(policy: RoutePolicy | undefined, safeMethod: boolean): Annotation | undefined {
  if (!policy || (policy.classification === undefined && policy.policy === undefined)) return undefined;
  const readsStayReads =
    safeMethod && (policy.policy === undefined || policy.policy === 'allow' || policy.inherited === true);
  // A controller-wide policy says nothing about its reads: leave them to the defaults.
  if (readsStayReads && policy.classification === undefined && policy.inherited) return undefined;
  const classification = policy.classification ?? (readsStayReads ? 'read' : 'write');
  return classification === 'read'
    ? { classification }
    : { classification, policy: policy.policy ?? 'block' };
}
