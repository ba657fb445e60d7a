import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/** The few calls the demo makes: PGlite and a pg Pool both answer `query(text, values)` with rows. */
export interface Database {
  readonly kind: 'pglite' | 'postgres';
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
  /** The PGlite instance (pg-boss runs on it), or the pool. */
  readonly pglite: PGlite | null;
  readonly pool: pg.Pool | null;
  close(): Promise<void>;
}

export async function openDatabase(o: { databaseUrl?: string; dataDir: string }): Promise<Database> {
  if (o.databaseUrl) {
    const pool = new pg.Pool({ connectionString: o.databaseUrl, max: 8 });
    pool.on('error', () => {}); // an idle client losing its server must not crash the demo
    await pool.query('SELECT 1');
    return {
      kind: 'postgres',
      pglite: null,
      pool,
      query: (text, values) => pool.query(text, values as unknown[]) as never,
      close: () => pool.end(),
    };
  }
  await mkdir(o.dataDir, { recursive: true });
  const pglite = await PGlite.create(`${o.dataDir}/pglite`);
  return {
    kind: 'pglite',
    pglite,
    pool: null,
    query: (text, values) => pglite.query(text, values) as never,
    close: () => pglite.close(),
  };
}

export interface Note {
  id: number;
  text: string;
  pinned: boolean;
  views: number;
  createdAt: string;
  /** Where it came from: `rest`, `graphql`, or `replay` when a queued write was applied after a window. */
  source: string;
}

/** The notes board's tables, in a schema of its own. */
export function notesRepository(db: Database, schema: string) {
  const t = `"${schema}".notes`;
  const d = `"${schema}".digests`;
  const row = (r: any): Note => ({
    id: Number(r.id),
    text: r.text,
    pinned: r.pinned,
    views: Number(r.views),
    createdAt: new Date(r.created_at).toISOString(),
    source: r.source,
  });
  return {
    async migrate() {
      await db.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await db.query(`CREATE TABLE IF NOT EXISTS ${t} (
        id serial PRIMARY KEY,
        text text NOT NULL,
        pinned boolean NOT NULL DEFAULT false,
        views integer NOT NULL DEFAULT 0,
        source text NOT NULL DEFAULT 'rest',
        request_key text UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
      await db.query(`CREATE TABLE IF NOT EXISTS ${d} (
        id serial PRIMARY KEY,
        note_count integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    },
    async list(): Promise<Note[]> {
      const { rows } = await db.query(`SELECT * FROM ${t} ORDER BY pinned DESC, id DESC LIMIT 200`);
      return rows.map(row);
    },
    async get(id: number): Promise<Note | null> {
      const { rows } = await db.query(`SELECT * FROM ${t} WHERE id = $1`, [id]);
      return rows[0] ? row(rows[0]) : null;
    },
    /** Insert once per request key: a replayed intent that already landed changes nothing. */
    async create(text: string, source: string, requestKey?: string): Promise<Note> {
      const { rows } = await db.query(
        `INSERT INTO ${t} (text, source, request_key) VALUES ($1, $2, $3)
         ON CONFLICT (request_key) DO UPDATE SET request_key = EXCLUDED.request_key RETURNING *`,
        [text, source, requestKey ?? null],
      );
      return row(rows[0]);
    },
    async remove(id: number): Promise<boolean> {
      const { rows } = await db.query(`DELETE FROM ${t} WHERE id = $1 RETURNING id`, [id]);
      return rows.length > 0;
    },
    async pin(id: number, pinned: boolean): Promise<Note | null> {
      const { rows } = await db.query(`UPDATE ${t} SET pinned = $2 WHERE id = $1 RETURNING *`, [id, pinned]);
      return rows[0] ? row(rows[0]) : null;
    },
    async view(id: number): Promise<void> {
      await db.query(`UPDATE ${t} SET views = views + 1 WHERE id = $1`, [id]);
    },
    async digest(): Promise<number> {
      const { rows } = await db.query<{ n: number }>(
        `INSERT INTO ${d} (note_count) SELECT count(*) FROM ${t} RETURNING note_count AS n`,
      );
      return Number(rows[0]!.n);
    },
    async digests(): Promise<number> {
      const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${d}`);
      return Number(rows[0]!.n);
    },
  };
}

export type NotesRepository = ReturnType<typeof notesRepository>;
