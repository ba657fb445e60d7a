import { Socket } from 'node:net';

/** Connection strings of the shared services, overridable by env. */
export const POSTGRES_URL =
  process.env.QUIESCE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.QUIESCE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** `.ci/run` sets QUIESCE_REQUIRE_SERVICES=1: then a missing service fails the suite instead of skipping it. */
export const servicesRequired = process.env.QUIESCE_REQUIRE_SERVICES === '1';

function probe(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('error', () => done(false));
    s.connect(port, host, () => done(true));
  });
}

const cache = new Map<string, Promise<boolean>>();

/**
 * Is the service reachable? When it is not: throws if services are required, otherwise prints a
 * loud notice naming the suite that is skipped and why, and returns false (use with `describe.skipIf`).
 */
export async function serviceAvailable(service: 'postgres' | 'redis', suite: string): Promise<boolean> {
  const url = new URL(service === 'postgres' ? POSTGRES_URL : REDIS_URL);
  const port = Number(url.port || (service === 'postgres' ? 5432 : 6379));
  const key = `${url.hostname}:${port}`;
  if (!cache.has(key)) cache.set(key, probe(url.hostname, port));
  const ok = await cache.get(key)!;
  if (ok) return true;
  const why = `${service} is not reachable at ${url.hostname}:${port}`;
  if (servicesRequired) throw new Error(`QUIESCE_REQUIRE_SERVICES=1 but ${why} (suite: ${suite})`);
  console.warn(
    `\n*** SKIPPED: ${suite} — ${why}. Set QUIESCE_REQUIRE_SERVICES=1 to make this a failure. ***\n`,
  );
  return false;
}

/** A unique, SQL-safe name for a per-test-file schema or key prefix. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`.toLowerCase();
}
