import { type Db, fromPglite, type PGliteLike } from 'pg-boss';

/** The part of a PGlite transaction object this package uses. */
export interface PGliteTransactionLike {
  query<T = any>(query: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(query: string): Promise<Array<{ rows: any[] }>>;
}

/** A PGlite instance (`@electric-sql/pglite`), described structurally so PGlite stays an optional peer. */
export interface PGliteWithTransactions extends PGliteLike {
  transaction<T>(callback: (tx: PGliteTransactionLike) => Promise<T>): Promise<T>;
}

export interface TransactionHandle {
  db: Db;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/** A pg-boss `db` that can also open a transaction settled from another call frame. */
export type TransactionalDb = Db & { beginTransaction(): Promise<TransactionHandle> };

const ROLLBACK = Symbol('rollback');
const pgliteDbs = new WeakSet<object>();

/** Whether this pg-boss `db` is one of `pgliteDatabase`'s (one PGlite session, SQL `PREPARE` works). */
export const isPgliteDatabase = (db: object): boolean => pgliteDbs.has(db);

function txDb(tx: PGliteTransactionLike): Db {
  return {
    async executeSql(text, values) {
      if (values?.length) return await tx.query(text, values);
      // Parameterless statements may be multi-statement blocks (pg-boss's locked() DDL).
      const results = await tx.exec(text);
      return { rows: results.flatMap((r) => r.rows ?? []) };
    },
  };
}

/**
 * pg-boss's `fromPglite` plus `beginTransaction`, so an intent and its pg-boss job commit together
 * on embedded PGlite as they do on PostgreSQL. PGlite has one connection: while a transaction is
 * open every other statement (pg-boss's polling and maintenance) waits behind it, which is why the
 * transactions this package opens are a few statements long and never wait on anything else.
 */
export function pgliteDatabase(pglite: PGliteWithTransactions): TransactionalDb {
  const base = fromPglite(pglite);
  pgliteDbs.add(base);
  return Object.assign(base, {
    async beginTransaction(): Promise<TransactionHandle> {
      let open!: (tx: PGliteTransactionLike) => void;
      let decide!: (commit: boolean) => void;
      const opened = new Promise<PGliteTransactionLike>((resolve) => (open = resolve));
      const decision = new Promise<boolean>((resolve) => (decide = resolve));
      const outcome = pglite.transaction(async (tx) => {
        open(tx);
        if (!(await decision)) throw ROLLBACK;
      });
      const tx = await Promise.race([
        opened,
        outcome.then(() => {
          throw new Error('PGlite transaction ended before it opened');
        }),
      ]);
      let settled = false;
      return {
        db: txDb(tx),
        async commit() {
          if (settled) throw new Error('Transaction is already settled');
          settled = true;
          decide(true);
          await outcome;
        },
        async rollback() {
          if (settled) return;
          settled = true;
          decide(false);
          await outcome.catch(() => {});
        },
      };
    },
  });
}
