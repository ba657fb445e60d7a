// Where an enqueue's time goes: each piece timed alone, in one process, medians of 5 runs of N.
// node bench/profile.mjs [pglite|postgres]   (after pnpm build; N=300 by default)

import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPayload } from '@quiesce/core';
import { createPgBossIntentQueue } from '../dist/index.js';

const backend = process.argv[2] ?? 'pglite';
const payload = { sku: 'A-100', qty: 3, customer: 'cus_42', note: 'bench', lines: [1, 2, 3] };
const N = Number(process.env.N ?? 300);
const dataDir = await mkdtemp(join(tmpdir(), 'quiesce-prof-'));
const schema = `prof_${process.pid}`;
const q = await createPgBossIntentQueue(
  backend === 'pglite'
    ? { dataDir, schema, bossOptions: { schedule: false, supervise: false } }
    : {
        connectionString: 'postgres://postgres@127.0.0.1:5432/test',
        schema,
        bossOptions: { schedule: false, supervise: false },
      },
);
const boss = q.boss;
const db = boss.getDb();
await boss.createQueue('bench.raw');
const T = `${schema}.quiesce_intent`;
let k = 0;
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
async function time(label, op) {
  for (let i = 0; i < 50; i++) await op();
  const per = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await op();
    per.push(((performance.now() - t0) / N) * 1000);
  }
  console.log(`${backend.padEnd(8)} ${label.padEnd(40)} ${median(per).toFixed(0).padStart(6)} µs`);
}
const json = JSON.stringify(payload);
const intentInsert = `INSERT INTO ${T} (id, queue, name, idempotency_key, payload, payload_hash, principal, surface, window_id, status)
     VALUES ($1, 'x', $2, $3, $4::text::jsonb, $5, $6, $7, $8, 'queued') ON CONFLICT (queue, name, idempotency_key) DO NOTHING RETURNING created_at`;
const intentParams = () => [randomUUID(), 'bench.order', `a${k++}`, json, 'h', null, 'custom', null];
let captured;
const capture = {
  executeSql: async (text, values) => {
    captured = { text, values };
    return { rows: [{ id: 1 }] };
  },
};
await time('hashPayload (JS)', async () => hashPayload(payload));
await time('capture a send (JS)', () => boss.send('bench.raw', payload, { db: capture }));
await time('SELECT $1', () => db.executeSql('SELECT $1::int', [1]));
await time('BEGIN; SELECT $1; COMMIT', async () => {
  const tx = await db.beginTransaction();
  await tx.db.executeSql('SELECT $1::int', [1]);
  await tx.commit();
});
await time('boss.send', () => boss.send('bench.raw', payload));
await time('boss.send in a transaction', async () => {
  const tx = await db.beginTransaction();
  await boss.send('bench.raw', payload, { db: tx.db });
  await tx.commit();
});
await time('intent insert alone', () => db.executeSql(intentInsert, intentParams()));
await time('enqueue', () => q.enqueue({ name: 'bench.order', idempotencyKey: `k${k++}`, payload }));
await time('enqueue, key already there', () =>
  q.enqueue({ name: 'bench.order', idempotencyKey: 'k1', payload }),
);
const plan = async (label, text, values) => {
  const { rows } = await db.executeSql(`EXPLAIN (ANALYZE, SUMMARY) ${text}`, values);
  const lines = rows.map((r) => r['QUERY PLAN']);
  console.log(
    `${backend.padEnd(8)} ${label.padEnd(40)} ${lines.filter((l) => /Planning Time|Execution Time/.test(l)).join(', ')}`,
  );
};
await boss.send('bench.raw', payload, { db: capture });
await plan('EXPLAIN send', captured.text, captured.values);
await plan('EXPLAIN intent insert', intentInsert, intentParams());
await q.close();
if (backend !== 'pglite') {
  const pg = (await import('pg')).default;
  const c = new pg.Client('postgres://postgres@127.0.0.1:5432/test');
  await c.connect();
  await c.query(`DROP SCHEMA ${schema} CASCADE`);
  await c.end();
}
await rm(dataDir, { recursive: true, force: true });
