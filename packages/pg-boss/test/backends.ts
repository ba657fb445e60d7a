import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import pg from 'pg';
import { type ConstructorOptions, PgBoss } from 'pg-boss';
import { describe, inject } from 'vitest';
import {
  createPgBossIntentQueue,
  type PgBossIntentQueue,
  type PgBossIntentQueueOptions,
  pgliteDatabase,
} from '../src/index.js';

type QueueTuning = Omit<
  PgBossIntentQueueOptions,
  'boss' | 'connectionString' | 'pglite' | 'dataDir' | 'schema'
>;

/** One database a test file runs against: PostgreSQL (a schema of its own) or PGlite (a directory of its own). */
export interface Backend {
  readonly name: 'postgres' | 'pglite';
  readonly schema: string;
  /** Open a queue on this backend (in this process). */
  open(options?: QueueTuning): Promise<PgBossIntentQueue>;
  /** A started pg-boss on this database and schema (stopped at cleanup). */
  boss(options?: Partial<ConstructorOptions>): Promise<PgBoss>;
  /** Connection options for a child process opening the same database. */
  connection(): { connectionString: string } | { dataDir: string };
  /** Run SQL outside any queue (PGlite: only while no child holds the directory). */
  sql<R = any>(text: string, values?: unknown[]): Promise<R[]>;
  /** Free the database before a child process opens it (PGlite allows one process per directory). */
  release(): Promise<void>;
  cleanup(): Promise<void>;
}

const quiet = { schedule: false, supervise: false } as const;

export const postgresAvailable = await serviceAvailable('postgres', '@quiesce/pg-boss on PostgreSQL');

export async function postgresBackend(): Promise<Backend> {
  const schema = uniqueName('qpgb');
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  const opened: PgBossIntentQueue[] = [];
  const bosses: PgBoss[] = [];
  return {
    name: 'postgres',
    async boss(options = {}) {
      const boss = new PgBoss({ ...quiet, max: 4, ...options, connectionString: POSTGRES_URL, schema });
      boss.on('error', () => {});
      bosses.push(await boss.start());
      return boss;
    },
    schema,
    async open(options = {}) {
      const q = await createPgBossIntentQueue({
        ...options,
        connectionString: POSTGRES_URL,
        schema,
        bossOptions: { ...quiet, max: 4, ...options.bossOptions },
      });
      opened.push(q);
      return q;
    },
    connection: () => ({ connectionString: POSTGRES_URL }),
    async sql(text, values) {
      return (await client.query(text, values as unknown[])).rows;
    },
    async release() {},
    async cleanup() {
      await Promise.allSettled(opened.map((q) => q.close()));
      await Promise.allSettled(bosses.map((b) => b.stop({ graceful: false })));
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  };
}

export async function pgliteBackend(): Promise<Backend> {
  const dir = await mkdtemp(join(tmpdir(), 'quiesce-pglite-'));
  await cp(inject('pgliteTemplate'), dir, { recursive: true });
  const schema = uniqueName('qpgb');
  let db: PGlite | null = null;
  const opened: PgBossIntentQueue[] = [];
  const bosses: PgBoss[] = [];
  const open = async () => (db ??= await PGlite.create(dir));
  const closeAll = async () => {
    await Promise.allSettled(opened.splice(0).map((q) => q.close()));
    await Promise.allSettled(bosses.splice(0).map((b) => b.stop({ graceful: false })));
    await db?.close();
    db = null;
  };
  return {
    name: 'pglite',
    schema,
    async boss(options = {}) {
      const boss = new PgBoss({
        ...quiet,
        ...options,
        db: pgliteDatabase(await open()),
        backend: 'pglite',
        schema,
      });
      boss.on('error', () => {});
      bosses.push(await boss.start());
      return boss;
    },
    async open(options = {}) {
      const q = await createPgBossIntentQueue({
        ...options,
        pglite: await open(),
        schema,
        bossOptions: { ...quiet, ...options.bossOptions },
      });
      opened.push(q);
      return q;
    },
    connection: () => ({ dataDir: dir }),
    async sql(text, values) {
      return (await (await open()).query(text, values as unknown[])).rows as any[];
    },
    release: closeAll,
    async cleanup() {
      await closeAll();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const backends: Array<[string, () => Promise<Backend>]> = [
  ['pglite', pgliteBackend],
  ['postgres', postgresBackend],
];

/**
 * `describe.each(backends)`, except that without a PostgreSQL server its suites are declared and
 * skipped (counted as skipped, listed in the run's skip summary) instead of vanishing from the counts.
 */
export function describeEachBackend(
  title: string,
  body: (name: string, make: () => Promise<Backend>) => void,
): void {
  for (const [name, make] of backends) {
    describe.skipIf(name === 'postgres' && !postgresAvailable)(title.replace('%s', name), () =>
      body(name, make),
    );
  }
}
