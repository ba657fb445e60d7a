import { existsSync } from 'node:fs';
import { Socket } from 'node:net';
import pg from 'pg';

/** Connection strings of the shared services, overridable by env. */
export const POSTGRES_URL =
  process.env.QUIESCE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.QUIESCE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The Chromium the browser tests drive with playwright-core (Debian's `chromium` package by default). */
export const CHROMIUM_PATH = process.env.QUIESCE_TEST_CHROMIUM ?? '/usr/bin/chromium';
/** Flags for a headless Chromium that stays quiet and off the network. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

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
const databaseReady = new Map<string, Promise<string | null>>();

/**
 * The server answers, but does the database of POSTGRES_URL exist? A missing one (a fresh server has
 * no `test` database) is created through the `postgres` database. Returns why it cannot be used, or null.
 */
export async function ensureDatabase(url: string): Promise<string | null> {
  const probeClient = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await probeClient.connect();
    return null;
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000')
      return `cannot connect to ${redact(url)}: ${(error as Error).message}`;
  } finally {
    await probeClient.end().catch(() => {});
  }
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const adminUrl = new URL(url);
  adminUrl.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: adminUrl.toString(), connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    console.warn(`[quiesce tests] created the missing database "${name}" on ${target.host}`);
    return null;
  } catch (error) {
    // Another test file may have created it at the same moment.
    if ((error as { code?: string }).code === '42P04') return null;
    return `the database "${name}" does not exist and could not be created: ${(error as Error).message}`;
  } finally {
    await admin.end().catch(() => {});
  }
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

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
  let why = `${service} is not reachable at ${url.hostname}:${port}`;
  if (ok && service === 'redis') return true;
  if (ok) {
    if (!databaseReady.has(POSTGRES_URL)) databaseReady.set(POSTGRES_URL, ensureDatabase(POSTGRES_URL));
    const problem = await databaseReady.get(POSTGRES_URL)!;
    if (!problem) return true;
    why = problem;
  }
  if (servicesRequired) throw new Error(`QUIESCE_REQUIRE_SERVICES=1 but ${why} (suite: ${suite})`);
  console.warn(
    `\n*** SKIPPED: ${suite} — ${why}. Set QUIESCE_REQUIRE_SERVICES=1 to make this a failure. ***\n`,
  );
  return false;
}

/**
 * Is the browser there? When it is not: throws under QUIESCE_REQUIRE_SERVICES=1, otherwise prints a
 * loud notice and returns false (use with `describe.skipIf`).
 */
export function browserAvailable(suite: string): boolean {
  if (existsSync(CHROMIUM_PATH)) return true;
  const why = `no Chromium at ${CHROMIUM_PATH} (set QUIESCE_TEST_CHROMIUM to its path)`;
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
