export type { PostgresConnectionOptions } from './connection.js';
export {
  type GuardPoolOptions,
  guardPool,
  isGuardedPool,
  isReadOnlyViolation,
  READ_ONLY_SQLSTATE,
  readOnlyRefusal,
  withWritesAllowed,
} from './guardPool.js';
export type { ReconnectOptions } from './notificationListener.js';
export { createPostgresStore, type PostgresStore, type PostgresStoreOptions } from './postgresStore.js';
export {
  buildWriteAuditReport,
  CANNOT_SEE,
  createWriteAudit,
  type LogCount,
  type MarkedTable,
  type MarkPhase,
  type TableAudit,
  type TableVerdict,
  type WriteAudit,
  type WriteAuditMark,
  type WriteAuditOptions,
  type WriteAuditReport,
} from './writeAudit.js';
