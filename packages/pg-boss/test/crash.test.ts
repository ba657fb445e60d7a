import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { IntentHandler } from '@quiesce/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TransactionalDb } from '../src/index.js';
import { type Backend, describeEachBackend } from './backends.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
// The child runs this package's TypeScript sources; Node strips the types (behind a flag before 22.18).
const stripTypes = (process.features as { typescript?: unknown }).typescript
  ? []
  : ['--experimental-strip-types'];

/** Run the child until `until(lines)` holds, then SIGKILL it; resolves with everything it printed. */
function runAndKill(args: string[], until: (lines: string[]) => boolean): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(
      process.execPath,
      [...stripTypes, '--import', here('./fixtures/register.mjs'), here('./fixtures/child.ts'), ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const lines: string[] = [];
    let buffer = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child did not reach the kill point in time; stderr: ${stderr}`));
    }, 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      lines.push(...parts);
      if (!killed && until(lines)) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' && killed) resolve(lines);
      else reject(new Error(`child exited on its own (code ${code}, signal ${signal}); stderr: ${stderr}`));
    });
  });
}

describeEachBackend('crash safety on %s (SIGKILL)', (_name, make) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await make();
  }, 30_000);
  afterAll(() => backend?.cleanup(), 30_000);

  it('loses no acknowledged intent when the process dies right after enqueue resolves', async () => {
    const lines = await runAndKill(
      ['enqueue', JSON.stringify(backend.connection()), backend.schema],
      (l) => l.filter((x) => x.startsWith('ack ')).length >= 25,
    );
    const acked = lines
      .filter((l) => l.startsWith('ack '))
      .map((l) => l.split(' ') as [string, string, string]);
    expect(acked.length).toBeGreaterThanOrEqual(25);

    const queue = await backend.open({ leaseMs: 1500 });
    for (const [, key, id] of acked) {
      expect(await queue.get(id)).toMatchObject({ idempotencyKey: key, status: 'queued' });
      // The client retrying its request after the crash gets the same intent back.
      const i = Number(key.slice(1));
      expect(
        await queue.enqueue({ name: 'crash.enqueue', idempotencyKey: key, payload: { i } }),
      ).toMatchObject({ created: false, intent: { id } });
    }
    // Every committed intent has its pg-boss job, so replay sees all of them.
    const seen: string[] = [];
    const report = await queue.replay({
      handlers: new Map([['crash.enqueue', (_p, ctx) => void seen.push(ctx.idempotencyKey)]]),
    });
    expect(report.failed).toBe(0);
    expect(seen.length).toBe(report.applied);
    expect(new Set(seen).size).toBe(seen.length);
    for (const [, key] of acked) expect(seen).toContain(key);
    await backend.release();
  }, 60_000);

  it('resumes a replay killed mid-handler without applying any intent twice in effect', async () => {
    const s = backend.schema;
    const queue = await backend.open();
    await backend.sql(`CREATE TABLE ${s}.applied_keys (key text PRIMARY KEY)`);
    await backend.sql(`CREATE TABLE ${s}.account (id int PRIMARY KEY, balance int NOT NULL)`);
    await backend.sql(`INSERT INTO ${s}.account VALUES (1, 0)`);
    let expected = 0;
    for (let i = 1; i <= 20; i++) {
      expected += i;
      await queue.enqueue({ name: 'crash.replay', idempotencyKey: `r${i}`, payload: { amount: i } });
    }
    await backend.release();

    const lines = await runAndKill(['replay', JSON.stringify(backend.connection()), s, 'r7'], (l) =>
      l.includes('hang r7'),
    );
    expect(lines).toContain('effect r7');

    const resumed = await backend.open({ leaseMs: 1500 });
    // The killed replayer's claim on r7 is still there: committed effect, unsettled intent.
    const r7 = (await resumed.list({ limit: 100 })).find((i) => i.idempotencyKey === 'r7')!;
    expect(r7.status).toBe('replaying');

    const invoked: string[] = [];
    const db = resumed.boss.getDb() as TransactionalDb;
    const handler: IntentHandler = async (payload: { amount: number }, ctx) => {
      invoked.push(ctx.idempotencyKey);
      const tx = await db.beginTransaction();
      const fresh = await tx.db.executeSql(
        `INSERT INTO ${s}.applied_keys (key) VALUES ($1) ON CONFLICT DO NOTHING RETURNING key`,
        [ctx.idempotencyKey],
      );
      if (fresh.rows.length)
        await tx.db.executeSql(`UPDATE ${s}.account SET balance = balance + $1`, [payload.amount]);
      await tx.commit();
    };
    const report = await resumed.replay({ handlers: new Map([['crash.replay', handler]]) });
    expect(report.failed).toBe(0);
    // r7 ran again after its lease lapsed, with the same idempotency key...
    expect(invoked).toContain('r7');
    expect((await resumed.get(r7.id))!.status).toBe('applied');
    expect((await resumed.get(r7.id))!.attempts).toBe(2);
    // ...and every intent is applied exactly once in effect.
    const all = await resumed.list({ limit: 100 });
    expect(all.every((i) => i.status === 'applied')).toBe(true);
    const [account] = await backend.sql<{ balance: number }>(`SELECT balance FROM ${s}.account WHERE id = 1`);
    expect(account?.balance).toBe(expected);
    const [keys] = await backend.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${s}.applied_keys`);
    expect(keys?.n).toBe(20);
  }, 60_000);
});
