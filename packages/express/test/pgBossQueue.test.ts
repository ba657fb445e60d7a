import { once } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createQuiesce, type QuiesceEngine } from '@quiesce/core';
import { createPgBossIntentQueue, type PgBossIntentQueue } from '@quiesce/pg-boss';
import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import express from 'express';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queue, quiesce } from '../src/index.js';

// Moved here from @quiesce/pg-boss (a pg-boss → express dev dependency closed a build cycle).
const postgresAvailable = await serviceAvailable(
  'postgres',
  '@quiesce/express queued writes on pg-boss (PostgreSQL)',
);

/** A TCP proxy in front of PostgreSQL that a test can cut (a database outage, as the app sees it). */
async function tcpProxy(target: URL) {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const db = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client);
    sockets.add(db);
    client.pipe(db).pipe(client);
    const drop = () => {
      client.destroy();
      db.destroy();
      sockets.delete(client);
      sockets.delete(db);
    };
    client.on('error', drop).on('close', drop);
    db.on('error', drop).on('close', drop);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    async cut() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

async function send(base: string, path: string, body: Buffer | string, headers: Record<string, string>) {
  const res = await fetch(new URL(path, base), { method: 'POST', headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}

describe.skipIf(!postgresAvailable)(
  'Express + pg-boss on PostgreSQL: text, charsets and outages (issue #15)',
  () => {
    const schema = uniqueName('qconf');
    let engine: QuiesceEngine;
    let intents: PgBossIntentQueue;
    let proxy: Awaited<ReturnType<typeof tcpProxy>>;
    let server: HttpServer | undefined;
    let base = '';
    const replayed: unknown[] = [];

    beforeAll(async () => {
      proxy = await tcpProxy(new URL(POSTGRES_URL));
      intents = await createPgBossIntentQueue({
        connectionString: proxy.url,
        schema,
        queue: 'conform.intents',
        bossOptions: { schedule: false, supervise: false, max: 2 },
      });
      engine = createQuiesce({ intentQueue: intents, soakMs: 0, heartbeatMs: 50 });
      engine.handle('text.add', (payload: { body: unknown }) => {
        replayed.push(payload.body);
      });
      engine.handle('notes.add', () => {});
      const app = express();
      app.use(quiesce(engine));
      app.post('/text', queue({ name: 'text.add' }), (_req, res) => {
        res.json({ ran: true });
      });
      app.post('/notes', queue({ name: 'notes.add' }), (_req, res) => {
        res.json({ ran: true });
      });
      server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await engine.begin({ reason: 'conformance', message: 'Back soon.' });
    }, 60_000);

    afterAll(async () => {
      server?.closeAllConnections();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      await engine?.close();
      await intents?.close().catch(() => {});
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }, 60_000);

    it('a lone surrogate or NUL in a queued JSON body is 400 naming the field, not 500; nothing stored', async () => {
      for (const [raw, field] of [
        ['{"title":"x\\ud800y"}', 'payload.body.title'],
        ['{"tags":["ok","\\u0000"]}', 'payload.body.tags[1]'],
        ['{"\\udc00":1}', 'payload.body (a key)'],
      ] as const) {
        const r = await send(base, '/notes', raw, { 'content-type': 'application/json' });
        expect(r.status, raw).toBe(400);
        expect(r.json()).toMatchObject({ code: 'INVALID_INPUT', field });
      }
      expect(await intents.list()).toEqual([]);
    });

    it('Idempotency-Key as a Structured Field string; a malformed key is 400; same key + other body 422', async () => {
      const body = JSON.stringify({ n: 1 });
      const h = { 'content-type': 'application/json' };
      const a = await send(base, '/notes', body, { ...h, 'idempotency-key': '"note-key-1"' });
      expect(a.status).toBe(202);
      expect(a.json()).toMatchObject({ idempotencyKey: 'note-key-1', created: true });
      const b = await send(base, '/notes', body, { ...h, 'idempotency-key': 'note-key-1' });
      expect(b.json()).toMatchObject({ intentId: a.json().intentId, created: false });
      const c = await send(base, '/notes', JSON.stringify({ n: 2 }), {
        ...h,
        'idempotency-key': '"note-key-1"',
      });
      expect(c.status).toBe(422);
      expect(c.headers.get('content-type')).toBe('application/problem+json');
      const d = await send(base, '/notes', body, { ...h, 'idempotency-key': '"unterminated' });
      expect(d.status).toBe(400);
      expect(d.json()).toMatchObject({ code: 'INVALID_INPUT', field: 'Idempotency-Key' });
    });

    it('latin-1 and UTF-16 text bodies are replayed as the same text, not U+FFFD', async () => {
      const text = 'café à Nîmes';
      // Distinct texts: the same text would be the same intent (the key is derived from the content).
      const t = (n: number) => `${text} #${n}`;
      const bodies: Array<[Buffer, string]> = [
        [Buffer.from(t(1), 'latin1'), 'text/plain; charset=ISO-8859-1'],
        [Buffer.from(t(2), 'utf16le'), 'text/plain; charset=utf-16le'],
        [
          Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(t(3), 'utf16le').swap16()]),
          'text/plain; charset=UTF-16',
        ],
        [Buffer.from(text, 'latin1'), 'text/plain'],
      ];
      for (const [bytes, type] of bodies) {
        const r = await send(base, '/text', bytes, { 'content-type': type });
        expect(r.status, type).toBe(202);
      }
      const window = engine.state.window!;
      await engine.end({ reason: 'done' });
      await engine.waitForPhase('closed', { timeoutMs: 30_000 });
      expect(engine.state.window?.id).toBe(window.id);
      // Declared charsets decode to the text; undeclared non-UTF-8 bytes are kept as bytes, unchanged.
      expect(replayed.filter((b) => typeof b === 'string').sort()).toEqual([t(1), t(2), t(3)]);
      expect(replayed).toHaveLength(4);
      expect(replayed.find((b) => typeof b !== 'string')).toEqual({
        encoding: 'base64',
        contentType: 'text/plain',
        data: Buffer.from(text, 'latin1').toString('base64'),
      });
      expect(JSON.stringify(replayed)).not.toContain('\ufffd');
    }, 60_000);

    it('when the queue database is down: 503 problem with Retry-After, never 202 and never 500', async () => {
      await engine.begin({ reason: 'outage', message: 'Back soon.' });
      await proxy.cut();
      for (let i = 0; i < 3; i++) {
        const r = await send(base, '/notes', JSON.stringify({ i }), { 'content-type': 'application/json' });
        expect(r.status).toBe(503);
        expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(r.headers.get('content-type')).toBe('application/problem+json');
        expect(r.json()).toMatchObject({ status: 503, code: 'QUEUE_UNAVAILABLE' });
      }
    }, 60_000);
  },
);
