import { POSTGRES_URL } from '@quiesce/testkit';
import pg from 'pg';

/** Run `fn` on a connection of the test's own, outside any store (to drop, corrupt or kill). */
export async function withAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: POSTGRES_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Drop a test's schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  await withAdmin((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

/**
 * Terminate, on the server, the connections whose client port is in `ports` (the upstream side of a
 * test's TCP proxy), as a restart or a failover would; returns how many.
 */
export async function terminateConnections(ports: number[]): Promise<number> {
  if (ports.length === 0) return 0;
  const r = await withAdmin((c) =>
    c.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND pid <> pg_backend_pid()',
      [ports],
    ),
  );
  return r.rowCount ?? 0;
}
