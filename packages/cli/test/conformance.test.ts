import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQuiesce } from '@quiesce/core';
import { quiesce, quiesceRouter } from '@quiesce/express';
import { createPostgresStore } from '@quiesce/postgres';
import { POSTGRES_URL, REDIS_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import express from 'express';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandHelp, EXIT } from '../src/index.js';
import { cli, listen } from './helpers.js';

const pgUp = await serviceAvailable('postgres', '@quiesce/cli missing-store checks on PostgreSQL');
const redisUp = await serviceAvailable('redis', '@quiesce/cli missing-store checks on Redis');
const BEGIN = ['--reason', 'r', '--message', 'm', '--for', '30m'];
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quiesce-cli-conform-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('a store that does not exist is an error (exit 9) unless --create (issue #15)', () => {
  it('file: begin and status on a typo refuse, name the path and create nothing', async () => {
    const path = join(dir, 'typo.json');
    const b = await cli(['begin', '--store', `file:${path}`, ...BEGIN]);
    expect(b.code).toBe(EXIT.storeMissing);
    expect(b.stderr).toContain(path);
    expect(b.stderr).toContain('--create');
    expect(b.stdout).not.toMatch(/frozen|no instance will start a write/);
    const s = await cli(['status', '--store', `file:${path}`]);
    expect(s.code).toBe(EXIT.storeMissing);
    expect(s.stdout).not.toMatch(/healthy/);
    expect(existsSync(path)).toBe(false);
  });

  it('file with --create: begin freezes but, with no live instance, warns and exits 10', async () => {
    const path = join(dir, 'new.json');
    const b = await cli(['begin', '--store', `file:${path}`, '--create', ...BEGIN, '--drain-deadline', '1s']);
    expect(b.code).toBe(EXIT.noInstances);
    expect(b.stdout).not.toContain('no instance will start a write');
    expect(b.stdout).toMatch(/no live app instance is registered/);
    expect(b.stderr).toMatch(/warning: no live app instance is registered in the file store .*exit 10/);
    // Now the file exists: later commands need no --create.
    const s = await cli(['status', '--store', `file:${path}`, '--json']);
    expect(s.code).toBe(EXIT.ok);
    expect(s.json.phase).toBe('frozen');
    // In a pipe, the soak is shown by its length, not by a stale elapsed figure ("soaking for 49ms").
    const e = await cli(['end', '--store', `file:${path}`, '--soak', '1s']);
    expect(e.code).toBe(EXIT.ok);
    expect(e.stdout).toMatch(/soaking 1s/);
    expect(e.stdout).not.toMatch(/soaking for \d+ms/);
  });

  it.skipIf(!pgUp)('postgres: an unknown schema or key is refused without creating it', async () => {
    const schema = uniqueName('qclimiss');
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const b = await cli(['begin', '--store', POSTGRES_URL, '--schema', schema, ...BEGIN]);
      expect(b.code).toBe(EXIT.storeMissing);
      expect(b.stderr).toContain(`no schema "${schema}"`);
      const exists = await client.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [
        schema,
      ]);
      expect(exists.rowCount).toBe(0);
      // A store an app uses: the schema exists with state under key "default".
      const app = createQuiesce({ store: createPostgresStore({ connectionString: POSTGRES_URL, schema }) });
      await app.start();
      const k = await cli(['status', '--store', POSTGRES_URL, '--schema', schema, '--key', 'typo']);
      expect(k.code).toBe(EXIT.storeMissing);
      expect(k.stderr).toMatch(/no state and no instance under key "typo" \(keys there: default\)/);
      const ok = await cli(['status', '--store', POSTGRES_URL, '--schema', schema]);
      expect(ok.code).toBe(EXIT.ok);
      await app.close();
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  });

  it.skipIf(!redisUp)('redis: a prefix with no keys is refused', async () => {
    const prefix = `${uniqueName('qclimiss')}:`;
    const r = await cli(['status', '--store', REDIS_URL, '--prefix', prefix]);
    expect(r.code).toBe(EXIT.storeMissing);
    expect(r.stderr).toContain(`no keys under the prefix "${prefix}"`);
    const redis = new Redis(REDIS_URL);
    try {
      expect(await redis.exists(`${prefix}state`)).toBe(0);
    } finally {
      redis.disconnect();
    }
  });
});

describe('CLI help and errors (issue #16 item 7)', () => {
  it.each(['begin', 'extend', 'end', 'status', 'inventory', 'intents', 'audit'])(
    '%s --help lists every option with its default and an example',
    async (command) => {
      const r = await cli([command, '--help']);
      expect(r.code).toBe(EXIT.ok);
      expect(r.stdout).toBe(`${commandHelp(command)}\n`);
      expect(r.stdout).toMatch(new RegExp(`^usage: quiesce ${command}`));
      expect(r.stdout).toContain('Examples:\n  quiesce ');
      for (const flag of ['--url', '--store', '--create', '--json']) expect(r.stdout).toContain(flag);
      // Each of the command's flags is documented on a line of its own.
      const summaryFlags = (r.stdout.split('\n')[0]!.match(/--[a-z-]+/g) ?? []).filter((f) => f !== '--json');
      for (const f of summaryFlags)
        expect(r.stdout, f).toMatch(new RegExp(`\\n\\s+(-\\w, )?${f}\\b[^\\n]*\\S`));
      // Help wins over other (even bad) arguments, and `quiesce help <command>` is the same.
      expect((await cli([command, '--bogus', '-h'])).stdout).toBe(r.stdout);
      expect((await cli(['help', command])).stdout).toBe(r.stdout);
    },
  );

  it('begin --help shows defaults', async () => {
    const r = await cli(['begin', '--help']);
    expect(r.stdout).toMatch(/--timeout <duration>\s+.*\(default: 2m\)/);
    expect(r.stdout).toMatch(/--drain-deadline <duration>\s+.*\(default: 30s\)/);
  });

  it.each([
    [['--for', '-5m'], /--for: durations cannot be negative, got "-5m"; give a positive duration such as 5m/],
    [['--for=-5m'], /--for: "-5m" is not a duration \(durations cannot be negative\)/],
    [['--for', '1.5h'], /no fractions: write 1h30m/],
    [['--for', '5 minutes'], /write e\.g\. 5m/],
    [['--for'], /--for: needs a value, e\.g\. --for 30m/],
    [
      ['--for', '30m', '--contact', '-ops'],
      /--contact: the value "-ops" starts with a dash.*write --contact=-ops/,
    ],
  ])('friendly error for %j (exit 2, no raw parser message)', async (extra, message) => {
    const r = await cli([
      'begin',
      '--url',
      'http://127.0.0.1:1/quiesce',
      '--token',
      't'.repeat(20),
      '--reason',
      'r',
      '--message',
      'm',
      ...extra,
    ]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/ambiguous|Did you forget|ERR_PARSE_ARGS/);
  });

  describe('against an app', () => {
    let server: Server;
    let base: string;
    const engine = createQuiesce({ soakMs: 0 });
    beforeAll(async () => {
      const app = express();
      app.use(quiesce(engine));
      app.use('/quiesce', quiesceRouter(engine, { adminToken: 'cli-conform-token-0123456789' }));
      app.post('/undecided', (_req, res) => void res.json({ ok: true }));
      app.delete('/also-undecided/:id', (_req, res) => void res.json({ ok: true }));
      server = createServer(app);
      base = await listen(server);
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await engine.close();
    });

    it('--fail-on-unclassified lists what is unclassified and says it failed', async () => {
      const r = await cli([
        'inventory',
        '--url',
        `${base}/quiesce`,
        '--token',
        'cli-conform-token-0123456789',
        '--fail-on-unclassified',
      ]);
      expect(r.code).toBe(EXIT.unclassified);
      expect(r.stderr).toMatch(
        /inventory failed \(--fail-on-unclassified\): 2 write surfaces have no decided policy/,
      );
      expect(r.stderr).toMatch(/- http POST \/undecided/);
      expect(r.stderr).toMatch(/- http DELETE \/also-undecided\/:id/);
      const j = await cli([
        'inventory',
        '--url',
        `${base}/quiesce`,
        '--token',
        'cli-conform-token-0123456789',
        '--fail-on-unclassified',
        '--json',
      ]);
      expect(j.json.failed).toBe(true);
    });

    it('a QUIESCE_URL without /quiesce gives a URL without a double slash in the error', async () => {
      const r = await cli(['status'], { QUIESCE_URL: base, QUIESCE_TOKEN: 'cli-conform-token-0123456789' });
      expect(r.code).toBe(EXIT.usage);
      expect(r.stderr).toContain(`${base}/admin/status`);
      expect(r.stderr).not.toMatch(/[^:]\/\/admin/);
    });
  });
});
