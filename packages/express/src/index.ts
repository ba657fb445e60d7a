export type { PublicState } from './publicState.js';
export { type QuiesceMiddlewareOptions, quiesce } from './quiesce.js';
export { type QuiesceRouter, type QuiesceRouterOptions, quiesceRouter } from './quiesceRouter.js';
export { registerRoutes } from './registerRoutes.js';
export {
  allow,
  drop,
  type IdempotencyKeySource,
  type PolicyHandler,
  type QueueOptions,
  queue,
  type RoutePolicy,
  type RoutePolicyKind,
  writes,
} from './routePolicy.js';
