// pnpm bench: intent enqueue and replay throughput against pg-boss's own send(), on the local
// PostgreSQL and on embedded PGlite, measured side by side in interleaved rounds (medians).
import { mkdtemp, rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createPgBossIntentQueue } from '../dist/index.js';

const POSTGRES_URL = process.env.QUIESCE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const payload = { sku: 'A-100', qty: 3, customer: 'cus_42', note: 'bench', lines: [1, 2, 3] };

const reachable = (url) =>
  new Promise((resolve) => {
    const { hostname, port } = new URL(url);
    const s = new Socket();
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.connect(Number(port || 5432), hostname, () => done(true));
  });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function timed(n, concurrency, op) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await op(next++);
    }),
  );
  return (n / (performance.now() - t0)) * 1000;
}

/**
 * pg-boss's own send statement (captured from boss.send, so the same text and job JSON), prepared
 * once: a named statement on PostgreSQL, SQL PREPARE on PGlite.
 */
async function preparedSend(boss) {
  const db = boss.getDb();
  let captured;
  const capture = {
    executeSql: async (text, values) => {
      captured = { text, values };
      return { rows: [{ id: null }] };
    },
  };
  const next = async () => {
    await boss.send('bench.raw', payload, { db: capture });
    return captured;
  };
  const { text } = await next();
  if (db._pgbdb) return async () => db.executeSql({ name: 'bench_send', text }, (await next()).values);
  await db.executeSql(`PREPARE bench_send (text) AS ${text}`);
  const literal = (v) => `E'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  return async () => db.executeSql(`EXECUTE bench_send(${literal((await next()).values[0])})`);
}

let keySeq = 0;
async function bench(label, queue, sizes) {
  const boss = queue.boss;
  await boss.createQueue('bench.raw');
  const noop = new Map([['bench.order', () => {}]]);
  const r = { sendSeq: [], enqSeq: [], prepSeq: [], send16: [], enq16: [], prep16: [], replay: [] };
  const sendPrepared = await preparedSend(boss);
  // Warm-up: connections, plans, JIT.
  await timed(50, 4, () => boss.send('bench.raw', payload));
  await timed(50, 4, () => queue.enqueue({ name: 'bench.order', idempotencyKey: `w${keySeq++}`, payload }));
  await timed(50, 4, sendPrepared);
  await queue.replay({ handlers: noop });
  const send = () => boss.send('bench.raw', payload);
  const enqueue = () => queue.enqueue({ name: 'bench.order', idempotencyKey: `k${keySeq++}`, payload });
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate which goes first, so none always runs on the warmer (or busier) part of a round.
    const trio = async (n, c, into) => {
      const ops = [send, enqueue, sendPrepared];
      for (let i = 0; i < 3; i++) {
        const k = (round + i) % 3;
        into[k].push(await timed(n, c, ops[k]));
      }
    };
    await trio(sizes.seq, 1, [r.sendSeq, r.enqSeq, r.prepSeq]);
    await trio(sizes.conc, 16, [r.send16, r.enq16, r.prep16]);
    const pending = (await queue.stats()).depth;
    const t0 = performance.now();
    const report = await queue.replay({ handlers: noop, concurrency: 16 });
    r.replay.push((report.applied / (performance.now() - t0)) * 1000);
    if (report.applied !== pending) throw new Error(`replay applied ${report.applied} of ${pending}`);
    await boss.deleteAllJobs('bench.raw');
  }
  const m = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)]));
  // Each round measures send and enqueue back to back, so a round's ratio sees one machine load.
  const ratios = (a, b, p) => {
    const xs = a.map((x, i) => x / b[i]);
    return {
      ratio: median(xs),
      'ratio range': `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`,
      'vs prepared': median(a.map((x, i) => x / p[i])),
    };
  };
  return [
    {
      backend: label,
      measure: 'sequential (1 in flight)',
      'send/s': m.sendSeq,
      'enqueue/s': m.enqSeq,
      ...ratios(r.enqSeq, r.sendSeq, r.prepSeq),
      'prepared send/s': m.prepSeq,
    },
    {
      backend: label,
      measure: '16 concurrent',
      'send/s': m.send16,
      'enqueue/s': m.enq16,
      ...ratios(r.enq16, r.send16, r.prep16),
      'prepared send/s': m.prep16,
    },
    {
      backend: label,
      measure: 'replay, no-op handler, concurrency 16',
      'send/s': null,
      'enqueue/s': null,
      'replay/s': m.replay,
    },
  ];
}

const fmt = (v) =>
  v === null || v === undefined
    ? ''
    : typeof v === 'number'
      ? v < 10
        ? v.toFixed(2)
        : Math.round(v).toString()
      : v;
const rows = [];

if (await reachable(POSTGRES_URL)) {
  const schema = `bench_${process.pid}`;
  const queue = await createPgBossIntentQueue({
    connectionString: POSTGRES_URL,
    schema,
    bossOptions: { schedule: false, supervise: false },
  });
  try {
    rows.push(...(await bench('postgres', queue, { seq: 300, conc: 1000 })));
  } finally {
    await queue.close();
    const c = new pg.Client({ connectionString: POSTGRES_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  }
} else {
  console.log(`PostgreSQL not reachable at ${POSTGRES_URL}: measuring PGlite only`);
}

const dataDir = await mkdtemp(join(tmpdir(), 'quiesce-bench-'));
const lite = await createPgBossIntentQueue({ dataDir, bossOptions: { schedule: false, supervise: false } });
try {
  rows.push(...(await bench('pglite', lite, { seq: 200, conc: 400 })));
} finally {
  await lite.close();
  await rm(dataDir, { recursive: true, force: true });
}

console.log(`\n@quiesce/pg-boss — medians of ${ROUNDS} interleaved rounds, node ${process.version}\n`);
const cols = [
  'backend',
  'measure',
  'send/s',
  'enqueue/s',
  'ratio',
  'ratio range',
  'prepared send/s',
  'vs prepared',
  'replay/s',
];
const table = [cols, ...rows.map((r) => cols.map((c) => fmt(r[c])))];
const widths = cols.map((_, i) => Math.max(...table.map((row) => String(row[i]).length)));
for (const [i, row] of table.entries()) {
  console.log(row.map((v, j) => String(v).padEnd(widths[j])).join('  '));
  if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
console.log(
  '\nratio: median over rounds of enqueue/s ÷ send/s measured back to back. An enqueue is one prepared',
);
console.log(
  'statement inserting the intent row and the pg-boss job; send is pg-boss parsing and planning its',
);
console.log('insert on every call. prepared send: the same insert prepared once, the cost of the job alone;');
console.log('vs prepared: enqueue/s ÷ prepared send/s, what the intent row costs on top of it.');
