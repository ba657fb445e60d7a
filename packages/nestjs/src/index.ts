export {
  AllowDuringReadOnly,
  DropDuringReadOnly,
  type IdempotencyKeySource,
  QueueDuringReadOnly,
  type QueueDuringReadOnlyOptions,
  Writes,
} from './policyDecorators.js';
export {
  QuiesceModule,
  type QuiesceModuleAsyncOptions,
  type QuiesceModuleOptions,
  type QuiesceNestOptions,
} from './quiesceModule.js';
export { QuiesceResponse } from './quiesceResponse.js';
export { QuiesceResponseFilter } from './quiesceResponseFilter.js';
export { ReadOnlyGuard, type ReadOnlyGuardType } from './readOnlyGuard.js';
export { QUIESCE } from './tokens.js';
