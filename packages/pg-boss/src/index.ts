export {
  type FreezeJobsOptions,
  freezeJobs,
  type JobFreezer,
  type QueueFreezeOptions,
} from './jobFreezer.js';
export {
  createPgBossIntentQueue,
  type PgBossConnection,
  type PgBossIntentQueue,
  type PgBossIntentQueueOptions,
} from './pgBossIntentQueue.js';
export {
  type PGliteTransactionLike,
  type PGliteWithTransactions,
  pgliteDatabase,
  type TransactionalDb,
  type TransactionHandle,
} from './pgliteDatabase.js';
