import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createFileStore, createQuiesce, type QuiesceEngine } from '@quiesce/core';
import { createPgBossIntentQueue } from '@quiesce/pg-boss';
import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IDEMPOTENCY_KEY_META } from '../src/index.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const stripTypes = (process.features as { typescript?: unknown }).typescript
  ? []
  : ['--experimental-strip-types'];
const postgres = await serviceAvailable('postgres', '@quiesce/mcp crash test on PostgreSQL');

/** A server child; `waitFor` resolves with the first stdout line matching. */
function startChild(args: string[]) {
  const child: ChildProcess = spawn(
    process.execPath,
    [...stripTypes, '--import', here('./fixtures/register.mjs'), here('./fixtures/child.ts'), ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: string[] = [];
  const waiters: Array<{ match: (l: string) => boolean; resolve: (l: string) => void }> = [];
  let buffer = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (w.match(line)) w.resolve(line);
        else waiters.push(w);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_code, signal) => resolve(signal)),
  );
  return {
    lines,
    waitFor(match: (l: string) => boolean): Promise<string> {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ match, resolve });
        void exited.then(() => reject(new Error(`child exited before the line; stderr: ${stderr}`)));
      });
    },
    async kill(): Promise<NodeJS.Signals | null> {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

describe.skipIf(!postgres)(
  'a queued MCP call survives a SIGKILL of the server (pg-boss on PostgreSQL)',
  () => {
    const schema = uniqueName('qmcp');
    const db = new pg.Client({ connectionString: POSTGRES_URL });
    let dir: string;
    let controller: QuiesceEngine;

    beforeAll(async () => {
      await db.connect();
      await db.query(`CREATE SCHEMA ${schema}`);
      await db.query(
        `CREATE TABLE ${schema}.notes (id serial PRIMARY KEY, text text NOT NULL, key text UNIQUE)`,
      );
      dir = await mkdtemp(join(tmpdir(), 'quiesce-mcp-crash-'));
    });
    afterAll(async () => {
      await controller?.close();
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.query(`DROP SCHEMA IF EXISTS ${schema}_boss CASCADE`);
      await db.end();
      await rm(dir, { recursive: true, force: true });
    });

    async function agent(url: string) {
      const client = new Client({ name: 'crash-agent', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)));
      return client;
    }

    // Each run has its own state file and key. CI runs QUIESCE_MCP_CRASH_RUNS=3.
    const runs = Math.max(1, Number(process.env.QUIESCE_MCP_CRASH_RUNS ?? 1));
    it.each(Array.from({ length: runs }, (_, i) => i + 1))(
      'run %i: a queued call is applied exactly once after the window, though the server died after answering',
      async (run) => {
        const statePath = join(dir, `state-${run}.json`);
        const key = `crash-${run}`;
        await controller?.close();
        const args = [POSTGRES_URL, schema, statePath];
        // The operator's side: a controller on the same state, with no replay handlers of its own.
        controller = createQuiesce({
          store: createFileStore({ path: statePath, pollMs: 100 }),
          participant: false,
          soakMs: 0,
          heartbeatMs: 200,
        });

        const a = startChild(args);
        const urlA = (await a.waitFor((l) => l.startsWith('listening '))).split(' ')[1]!;
        await controller.begin({ reason: 'crash test', message: 'Disk swap' });
        await a.waitFor((l) => l === 'phase freezing' || l === 'phase frozen');

        const clientA = await agent(urlA);
        const call = {
          name: 'add_note',
          arguments: { text: 'survives' },
          _meta: { [IDEMPOTENCY_KEY_META]: key },
        };
        const accepted = (await clientA.callTool(call)) as CallToolResult;
        expect(accepted.isError).toBeFalsy();
        const { intentId, outcome } = accepted.structuredContent as { intentId: string; outcome: string };
        expect(outcome).toBe('queued');
        // Killed between the acknowledgement and the end of the window.
        expect(await a.kill()).toBe('SIGKILL');
        await clientA.close().catch(() => {});
        expect(a.lines.filter((l) => l.startsWith('handler add'))).toEqual([]);

        const b = startChild(args);
        const listeningB = await b.waitFor((l) => l.startsWith('listening '));
        expect(listeningB).toMatch(/ read-only added=0$/);
        const urlB = listeningB.split(' ')[1]!;
        const clientB = await agent(urlB);
        // The agent retrying after the crash gets the same intent back, not a second one.
        const retried = (await clientB.callTool(call)) as CallToolResult;
        expect((retried.structuredContent as { intentId: string }).intentId).toBe(intentId);

        await controller.end({ reason: 'done' });
        await b.waitFor((l) => l === 'phase closed');
        await clientB.close();

        const rows = (await db.query(`SELECT text, key FROM ${schema}.notes WHERE key = $1`, [key])).rows;
        expect(rows).toEqual([{ text: 'survives', key }]);
        expect(b.lines.filter((l) => l.startsWith('handler add'))).toEqual([`handler add ${key}`]);
        expect(await b.kill()).toBe('SIGKILL');
        const queue = await createPgBossIntentQueue({
          connectionString: POSTGRES_URL,
          schema: `${schema}_boss`,
          bossOptions: { schedule: false, supervise: false, max: 2 },
        });
        try {
          expect(await queue.get(intentId)).toMatchObject({
            status: 'applied',
            attempts: 1,
            idempotencyKey: key,
          });
          expect((await queue.list({ limit: 1000 })).filter((i) => i.idempotencyKey === key)).toHaveLength(1);
        } finally {
          await queue.close();
        }
      },
      90_000,
    );
  },
);
