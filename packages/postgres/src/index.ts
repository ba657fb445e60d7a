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
  createWriteAudit,
  diffSnapshots,
  type SnapshotPhase,
  type TableCounters,
  type WriteAudit,
  type WriteAuditOptions,
  type WriteAuditReport,
  type WriteAuditSnapshot,
} from './writeAudit.js';
