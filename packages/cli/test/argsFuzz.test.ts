import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileStore, createQuiesce } from '@quiesce/core';
import { createPostgresStore } from '@quiesce/postgres';
import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../src/index.js';
import { cli } from './helpers.js';

/*
 * Fuzz of the CLI's argument parsing (issue #15): arbitrary argument vectors against a real store →
 * never a crash (exit 1 "unexpected error" or a thrown error), only documented exit codes, and the
 * stored state unchanged after every rejection. Runs per store: QUIESCE_FUZZ_RUNS (CI: 5000); the
 * default keeps this file to well under a minute on a busy 2-core machine.
 *
 * Left out of the alphabet on purpose: `--watch`/`-w` (waits until interrupted), and random values
 * for `--store`, `--url`, `--schema`, `--key`, `--prefix` (with `--create` they would create stores
 * or reach hosts outside the test); the target flags come from the suite, in random positions.
 */
const RUNS = Number(process.env.QUIESCE_FUZZ_RUNS) || 200;
const CODES = new Set<number>(Object.values(EXIT));
const REJECTIONS = new Set<number>([EXIT.usage, EXIT.auth, EXIT.conflict, EXIT.storeMissing]);

const future = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();
const command = fc.constantFrom(
  'begin',
  'extend',
  'end',
  'status',
  'inventory',
  'intents',
  'audit',
  'help',
  '--help',
  '-h',
  '--version',
  'freeze',
  '',
);
const flag = fc.constantFrom(
  '--reason',
  '--message',
  '--for',
  '--until',
  '--open-ended',
  '--at',
  '--contact',
  '--rollback-plan',
  '--auto-end',
  '--actor',
  '--no-wait',
  '--timeout',
  '--drain-deadline',
  '--by',
  '--soak',
  '--interval',
  '--fail-on-unclassified',
  '--status',
  '--limit',
  '--window',
  '--json',
  '--create',
  '--token',
  '--help',
  '--bogus',
  '-x',
  '--',
  '-',
);
const value = fc.oneof(
  fc.constantFrom(
    '30m',
    '1h30m',
    '90s',
    '1ms',
    '-5m',
    '0m',
    '8d',
    '1.5h',
    '5 minutes',
    '30',
    '',
    ' ',
    '1d',
    '2035-01-01T00:00:00',
    'March 7, 2035',
    '2030',
    '12/25/2030',
    'Mon, 01 Jan 2035 00:00:00 GMT',
    '2020-01-01T00:00:00Z',
    'queued',
    'failed',
    '0',
    '1',
    '1000',
    '1001',
    'a\u0000b',
    '\ud800',
    '😀',
  ),
  fc.integer({ min: 1, max: 24 * 365 }).map(future),
  fc.string({ maxLength: 12 }),
);
const token = fc.oneof(
  { arbitrary: fc.tuple(flag, value).map(([f, v]) => [f, v]), weight: 5 },
  { arbitrary: fc.tuple(flag, value).map(([f, v]) => [`${f}=${v}`]), weight: 1 },
  { arbitrary: flag.map((f) => [f]), weight: 2 },
  { arbitrary: value.map((v) => [v]), weight: 1 },
);
const SAFE = (a: string) =>
  !/^(-[^-]*w|--watch)/.test(a) && !/^--(store|url|schema|key|prefix)\b/.test(a) && !/^file:|:\/\//.test(a);
// Plausible invocations (the required flags with good values, then noise) reach the commands
// themselves; random ones exercise the parser.
const good = (arb: fc.Arbitrary<string>) => fc.oneof({ arbitrary: arb, weight: 5 }, value);
const plausible = fc.oneof(
  fc
    .tuple(
      good(fc.constantFrom('migration', 'index rebuild')),
      good(fc.constantFrom('Read-only for a while.', 'Back soon.')),
      fc.oneof(
        good(fc.constantFrom('30m', '2h')).map((v) => ['--for', v]),
        good(fc.integer({ min: 1, max: 48 }).map(future)).map((v) => ['--until', v]),
        fc.constant(['--open-ended']),
      ),
    )
    .map(([r, m, end]) => ['begin', '--reason', r, '--message', m, ...end]),
  good(fc.constantFrom('15m', '1h')).map((v) => ['extend', '--by', v]),
  fc.constant(['end']),
  fc.constant(['status']),
);
const argv = (target: string[]) =>
  fc
    .tuple(
      fc.oneof(
        { arbitrary: plausible, weight: 2 },
        command.map((c) => [c]),
      ),
      fc.array(token, { maxLength: 5 }),
      fc.nat(9),
      fc.nat(8),
    )
    .map(([[cmd = '', ...head], tokens, withTarget, at]) => {
      const rest = [...head, ...tokens.flat().filter(SAFE)];
      if (withTarget < 8) rest.splice(Math.min(at, rest.length), 0, ...target);
      // A store-side end soaks 10 s by default: keep each case short.
      if (cmd === 'end' && !rest.some((a) => a.startsWith('--soak'))) rest.push('--soak', '1ms');
      return cmd === '' ? rest : [cmd, ...rest];
    });

function argsFuzz(
  name: string,
  setup: () => Promise<{ target: string[]; state(): Promise<string>; cleanup(): Promise<void> }>,
) {
  describe(`CLI argument fuzz on the ${name} (issue #15)`, () => {
    let s: Awaited<ReturnType<typeof setup>>;
    beforeAll(async () => {
      s = await setup();
    }, 30_000);
    afterAll(() => s?.cleanup(), 30_000);

    it(`${RUNS} argument vectors: documented exit codes, never a crash, a rejection changes nothing`, async () => {
      const codes = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(argv(s.target), async (args) => {
          const before = await s.state();
          const r = await cli(args);
          codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
          expect(CODES.has(r.code), `exit ${r.code}`).toBe(true);
          expect(r.code, r.stderr).not.toBe(EXIT.failure);
          expect(r.stderr).not.toMatch(/unexpected error|\n\s+at /);
          if (REJECTIONS.has(r.code)) {
            // Said why: one `quiesce: …` line on stderr (bare `quiesce` prints the usage instead).
            if (args[0]) expect(r.stderr).toMatch(/^quiesce: \S/);
            else expect(r.stdout).toMatch(/^quiesce — /);
            expect(await s.state()).toBe(before);
          }
        }),
        { numRuns: RUNS },
      );
      if (process.env.QUIESCE_FUZZ_STATS) console.log(name, JSON.stringify([...codes].sort()));
      expect(codes.get(EXIT.usage) ?? 0).toBeGreaterThan(0);
      expect(codes.get(EXIT.ok) ?? 0).toBeGreaterThan(0);
    }, 600_000);
  });
}

argsFuzz('file store', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'quiesce-cli-fuzz-'));
  const path = join(dir, 'state.json');
  // The store exists (an app wrote it), so most cases reach the command itself.
  const app = createQuiesce({ store: createFileStore({ path }), soakMs: 0 });
  await app.begin({ reason: 'seed', message: 'seed' });
  await app.end();
  await app.waitForPhase('closed', { timeoutMs: 30_000 });
  await app.close();
  return {
    target: ['--store', `file:${path}`],
    state: async () => (existsSync(path) ? readFileSync(path, 'utf8') : ''),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

const pgUp = await serviceAvailable('postgres', '@quiesce/cli argument fuzz on PostgreSQL');
if (pgUp) {
  argsFuzz('PostgreSQL store', async () => {
    const schema = uniqueName('qclifuzz');
    const app = createQuiesce({
      store: createPostgresStore({ connectionString: POSTGRES_URL, schema }),
      soakMs: 0,
    });
    await app.begin({ reason: 'seed', message: 'seed' });
    await app.end();
    await app.waitForPhase('closed', { timeoutMs: 30_000 });
    await app.close();
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    return {
      target: ['--store', POSTGRES_URL, '--schema', schema],
      state: async () =>
        JSON.stringify(
          (await client.query(`SELECT key, version, payload FROM ${schema}.state ORDER BY key`)).rows,
        ),
      async cleanup() {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.end();
      },
    };
  });
}
