// How long an operator waits: `quiesce begin` until frozen and `quiesce end` until closed (soak 0),
// through each target, with one app instance (a participant engine) on the other side; and the
// bin's own start-up. Medians of interleaved rounds, side by side, ratios against the admin API.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createFileStore, createQuiesce } from '@quiesce/core';
import { quiesce, quiesceRouter } from '@quiesce/express';
import { createPostgresStore } from '@quiesce/postgres';
import { createRedisStore } from '@quiesce/redis';
import express from 'express';
import pg from 'pg';
import { runCli } from '../dist/index.js';

const ROUNDS = Number(process.env.ROUNDS ?? 15);
const PG = process.env.QUIESCE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = process.env.QUIESCE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const TOKEN = 'bench-token-0123456789abcdef';
const sink = { write() {} };
// The file store's "no instance registry" warning is expected here; anything else is shown.
const io = {
  stdout: sink,
  stderr: { write: (s) => s.startsWith('warning: the file store') || process.stderr.write(s) },
  env: {},
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const up = (url, port) =>
  new Promise((resolve) => {
    const u = new URL(url);
    const s = new Socket();
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.connect(Number(u.port || port), u.hostname, () => done(true));
  });

async function httpTarget() {
  const engine = createQuiesce({ soakMs: 0 });
  const app = express();
  app.use('/quiesce', quiesceRouter(engine, { adminToken: TOKEN }));
  app.use(quiesce(engine));
  const server = createServer(app);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    name: 'admin API (--url)',
    args: ['--url', `http://127.0.0.1:${server.address().port}/quiesce`, '--token', TOKEN],
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await engine.close();
    },
  };
}

async function storeTarget(name, args, makeStore, drop) {
  const store = makeStore();
  const app = createQuiesce({ store, heartbeatMs: 50 });
  // An app instance with a replay handler: after a CLI's end it replays and closes the window.
  app.handle('bench.write', () => {});
  await app.start();
  return {
    name,
    args,
    endArgs: ['--soak', '1ms'],
    close: async () => {
      await app.close();
      await store.close();
      await drop?.();
    },
  };
}

const targets = [await httpTarget()];
const dir = mkdtempSync(join(tmpdir(), 'quiesce-cli-bench-'));
targets.push(
  await storeTarget('file store', ['--store', `file:${join(dir, 's.json')}`], () =>
    createFileStore({ path: join(dir, 's.json'), pollMs: 50 }),
  ),
);
const schema = `cli_bench_${process.pid}`;
if (await up(PG, 5432)) {
  targets.push(
    await storeTarget(
      'postgres store',
      ['--store', PG, '--schema', schema],
      () => createPostgresStore({ connectionString: PG, schema }),
      async () => {
        const c = new pg.Client({ connectionString: PG });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await c.end();
      },
    ),
  );
} else console.warn('postgres not reachable: row left out');
if (await up(REDIS, 6379)) {
  const prefix = `cli_bench_${process.pid}:`;
  targets.push(
    await storeTarget('redis store', ['--store', REDIS, '--prefix', prefix], () =>
      createRedisStore({ url: REDIS, prefix }),
    ),
  );
} else console.warn('redis not reachable: row left out');

const results = new Map(targets.map((t) => [t.name, { begin: [], end: [] }]));
for (let round = 0; round < ROUNDS + 2; round++) {
  for (const t of targets) {
    let t0 = performance.now();
    const b = await runCli(
      ['begin', ...t.args, '--reason', 'bench', '--message', 'bench', '--for', '10m'],
      io,
    );
    const begin = performance.now() - t0;
    t0 = performance.now();
    const e = await runCli(['end', ...t.args, ...(t.endArgs ?? [])], io);
    const end = performance.now() - t0;
    if (b !== 0 || e !== 0) throw new Error(`${t.name}: begin exit ${b}, end exit ${e}`);
    if (round >= 2) {
      results.get(t.name).begin.push(begin);
      results.get(t.name).end.push(end);
    }
  }
}
for (const t of targets) await t.close();
rmSync(dir, { recursive: true, force: true });

const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const startups = [];
for (let i = 0; i < 7; i++) {
  const t0 = performance.now();
  execFileSync(process.execPath, [bin, '--version']);
  startups.push(performance.now() - t0);
}

const base = results.get(targets[0].name);
const rows = [['target', 'begin → frozen (median ms)', 'ratio', 'end → closed, soak 0 (median ms)', 'ratio']];
for (const t of targets) {
  const r = results.get(t.name);
  rows.push([
    t.name,
    median(r.begin).toFixed(1),
    `${(median(r.begin) / median(base.begin)).toFixed(2)}x`,
    median(r.end).toFixed(1),
    `${(median(r.end) / median(base.end)).toFixed(2)}x`,
  ]);
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
console.log(
  `quiesce CLI: ${ROUNDS} interleaved rounds per target, one app instance each, in-process runCli()`,
);
for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  '));
console.log(`\nbin start-up (node dist/bin.js --version, 7 runs): median ${median(startups).toFixed(0)} ms`);
