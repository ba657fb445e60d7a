import { createHash, randomUUID } from 'node:crypto';
import type { Db } from 'pg-boss';
import { isPgliteDatabase } from './pgliteDatabase.js';

/**
 * Runs one statement text many times with different values, prepared once, so the server parses and
 * plans it once instead of on every call (for the enqueue statement that is most of its cost:
 * pg-boss's job insert is expensive to parse and plan, cheap to execute).
 *
 * - pg-boss's own PostgreSQL `Db` (node-postgres pool): a named statement, which node-postgres
 *   prepares once per connection.
 * - PGlite through `pgliteDatabase`: SQL `PREPARE` once (PGlite is one session) and `EXECUTE` with
 *   the values as escaped literals, since PGlite's `query` always uses the unnamed statement.
 * - anything else: the plain parameterised statement.
 *
 * `types` are the SQL types of `$1…$n`, for `PREPARE`.
 */
export interface PreparedRunner {
  run(text: string, values: readonly (string | null)[]): Promise<{ rows: any[] }>;
  /** Frees what was prepared (PGlite); the node-postgres statements go with their connections. */
  close(): Promise<void>;
}

/** A string literal that means the same whatever `standard_conforming_strings` says. */
function literal(value: string | null): string {
  return value === null ? 'NULL' : `E'${String(value).replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

const NOT_PREPARED = '26000'; // invalid_sql_statement_name: the session lost it (DEALLOCATE ALL, …)

/**
 * pg-boss's own PostgreSQL Db hands `text` to node-postgres's `pool.query`, which also takes a query
 * config `{ name, text }` (a named statement). Checked once rather than assumed, since it is not
 * part of pg-boss's documented interface.
 */
async function takesQueryConfig(db: Db): Promise<boolean> {
  if ((db as { _pgbdb?: unknown })._pgbdb !== true || isPgliteDatabase(db)) return false;
  try {
    const { rows } = await db.executeSql(
      { name: 'quiesce_probe', text: 'SELECT $1::int + 1 AS n' } as unknown as string,
      [41],
    );
    return rows[0]?.n === 42;
  } catch {
    return false;
  }
}

export async function preparedRunner(
  db: Db,
  types: readonly string[],
  enabled: boolean,
): Promise<PreparedRunner> {
  const plain: PreparedRunner = {
    run: (text, values) => db.executeSql(text, [...values]),
    close: async () => {},
  };
  if (!enabled) return plain;

  if (await takesQueryConfig(db)) {
    const names = new Map<string, string>();
    return {
      async run(text, values) {
        let name = names.get(text);
        if (!name) {
          name = `quiesce_${createHash('sha256').update(text).digest('hex').slice(0, 40)}`;
          names.set(text, name);
        }
        try {
          return await db.executeSql({ name, text } as unknown as string, [...values]);
        } catch (err) {
          // Someone ran DEALLOCATE on this connection behind node-postgres's back: run it unprepared.
          if ((err as { code?: unknown }).code === NOT_PREPARED) return plain.run(text, values);
          throw err;
        }
      },
      close: async () => {},
    };
  }

  if (isPgliteDatabase(db)) {
    let current: { text: string; name: string; ready: Promise<unknown> } | null = null;
    const prepare = (text: string) => {
      const previous = current;
      const name = `quiesce_${randomUUID().replace(/-/g, '')}`;
      const ready = db.executeSql(`PREPARE ${name} (${types.join(', ')}) AS ${text}`);
      current = { text, name, ready };
      ready.catch(() => {
        if (current?.name === name) current = null;
      });
      if (previous)
        void previous.ready.then(() => db.executeSql(`DEALLOCATE ${previous.name}`)).catch(() => {});
      return current;
    };
    return {
      async run(text, values) {
        // U+0000 cannot go into SQL text; the parameterised statement reports it as PostgreSQL does.
        if (values.some((v) => v !== null && String(v).includes('\u0000'))) return plain.run(text, values);
        for (let attempt = 0; ; attempt++) {
          const statement = current?.text === text ? current : prepare(text);
          await statement.ready;
          try {
            return await db.executeSql(`EXECUTE ${statement.name}(${values.map(literal).join(', ')})`);
          } catch (err) {
            if ((err as { code?: unknown }).code !== NOT_PREPARED || attempt > 0) throw err;
            if (current === statement) current = null; // prepare it again
          }
        }
      },
      async close() {
        const last = current;
        current = null;
        if (last) await last.ready.then(() => db.executeSql(`DEALLOCATE ${last.name}`)).catch(() => {});
      },
    };
  }
  return plain;
}
