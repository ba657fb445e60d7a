export * from './agentRefusal.js';
export * from './audit.js';
export * from './bypass.js';
export * from './checklist.js';
export * from './classifier.js';
export * from './clock.js';
export * from './closingRecord.js';
export * from './dateTime.js';
export { PROBLEM_TYPE } from './decider.js';
export { createQuiesce } from './engine.js';
export * from './envStore.js';
export * from './errors.js';
export * from './escalation.js';
export * from './fileStore.js';
export * from './idempotencyKey.js';
export * from './intentQueue.js';
export * from './inventory.js';
export {
  backoffDelay,
  createMemoryIntentQueue,
  type MemoryIntentQueueOptions,
  runBounded,
} from './memoryIntentQueue.js';
export * from './memoryStore.js';
export * from './notifier.js';
export * from './notifiers/index.js';
export * from './operation.js';
export * from './readHealth.js';
export * from './readSignals.js';
export * from './readSummary.js';
export * from './retryAfter.js';
export * from './store.js';
export * from './storeKit.js';
export * from './text.js';
export * from './types.js';
export * from './window.js';
