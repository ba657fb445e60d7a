import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import pg from 'pg';
import { createPgBossIntentQueue, type PgBossIntentQueue, type PgBossIntentQueueOptions } from '../src/index.js';

type QueueTuning = Omit<PgBossIntentQueueOptions, 'boss' | 'connectionString' | 'pglite' | 'dataDir' | 'schema'>;

/** One database a test file runs against: PostgreSQL (a schema of its own) or PGlite (a directory of its own). */
export interface Backend {
  readonly name: 'postgres' | 'pglite';
  readonly schema: string;
  /** Open a queue on this backend (in this process). */
  open(options?: QueueTuning): Promise<PgBossIntentQueue>;
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
  return {
    name: 'postgres',
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
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  };
}

let template: Promise<string> | null = null;
/** initdb costs seconds; every PGlite directory of a run is a copy of one made once. */
function pgliteTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiesce-pglite-template-'));
    const db = await PGlite.create(dir);
    await db.close();
    return dir;
  })();
  return template;
}

export async function pgliteBackend(): Promise<Backend> {
  const dir = await mkdtemp(join(tmpdir(), 'quiesce-pglite-'));
  await cp(await pgliteTemplate(), dir, { recursive: true });
  const schema = uniqueName('qpgb');
  let db: PGlite | null = null;
  const opened: PgBossIntentQueue[] = [];
  const open = async () => (db ??= await PGlite.create(dir));
  const closeAll = async () => {
    await Promise.allSettled(opened.splice(0).map((q) => q.close()));
    await db?.close();
    db = null;
  };
  return {
    name: 'pglite',
    schema,
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
  ...(postgresAvailable ? ([['postgres', postgresBackend]] as Array<[string, () => Promise<Backend>]>) : []),
];

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
