import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createQuiesce } from '@quiesce/core';
import { createPgBossIntentQueue, type PgBossIntentQueue } from '@quiesce/pg-boss';
import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentNoticeOf } from '../src/index.js';
import { memoryNotes, notesServer } from './notesServer.js';

const postgres = await serviceAvailable('postgres', '@quiesce/mcp on the pg-boss queue');

describe.skipIf(!postgres)('queued MCP calls on the pg-boss queue (PostgreSQL, a fresh schema)', () => {
  const schema = uniqueName('qmcpq');
  let queue: PgBossIntentQueue;
  beforeAll(async () => {
    queue = await createPgBossIntentQueue({
      connectionString: POSTGRES_URL,
      schema,
      maxPayloadBytes: 512,
      bossOptions: { schedule: false, supervise: false, max: 2 },
    });
  });
  afterAll(async () => {
    await queue?.close();
    const db = new pg.Client({ connectionString: POSTGRES_URL });
    await db.connect();
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.end();
  });

  it('keeps a call durably, names the arguments when they are too large to keep, replays once', async () => {
    const engine = createQuiesce({ intentQueue: queue, soakMs: 0 });
    const notes = memoryNotes();
    const server = notesServer(engine, notes);
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const client = new Client({ name: 'agent', version: '1.0.0' });
    await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
    try {
      await engine.begin({ reason: 'r', message: 'm' });
      const big = (await client.callTool({
        name: 'add_note',
        arguments: { text: 'x'.repeat(2000) },
      })) as CallToolResult;
      expect(big).toMatchObject({
        isError: true,
        structuredContent: { code: 'PAYLOAD_TOO_LARGE', field: 'arguments' },
      });
      const ok = (await client.callTool({ name: 'add_note', arguments: { text: 'kept' } })) as CallToolResult;
      const { intentId } = agentNoticeOf(ok)!;
      expect(await queue.get(intentId!)).toMatchObject({
        status: 'queued',
        payload: { tool: 'add_note', arguments: { text: 'kept' } },
      });
      await engine.end();
      await engine.waitForPhase('closed');
      expect(notes.calls.add).toBe(1);
      expect(await queue.get(intentId!)).toMatchObject({ status: 'applied', attempts: 1 });
    } finally {
      await client.close();
      await engine.close();
    }
  });
});
