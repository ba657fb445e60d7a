import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTaskStore } from '@modelcontextprotocol/sdk/experimental/tasks';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  agentRefusal,
  createManualClock,
  createQuiesce,
  type QuiesceEngine,
  type QuiesceOptions,
} from '@quiesce/core';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { agentNoticeOf, guardedTools, guardMcpServer, IDEMPOTENCY_KEY_META } from '../src/index.js';
import { memoryNotes, notesServer } from './notesServer.js';

const open: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

function engineFor(options: QuiesceOptions = {}): QuiesceEngine {
  const engine = createQuiesce({ soakMs: 0, retryAfter: { jitterSeconds: 0 }, ...options });
  open.push(() => engine.close());
  return engine;
}

async function connect(server: McpServer): Promise<Client> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  open.push(() => client.close());
  open.push(() => server.close());
  return client;
}

const call = (
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
  meta?: Record<string, unknown>,
) => client.callTool({ name, arguments: args, ...(meta ? { _meta: meta } : {}) }) as Promise<CallToolResult>;
const text = (r: CallToolResult) => (r.content[0] as { text: string }).text;
const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

describe('guardMcpServer over the in-memory transport', () => {
  it('runs every tool outside a window', async () => {
    const engine = engineFor();
    const notes = memoryNotes();
    const client = await connect(notesServer(engine, notes));
    expect(text(await call(client, 'add_note', { text: 'a' }))).toMatch(/^added /);
    const listed = await call(client, 'list_notes');
    const [note] = (listed.structuredContent as { notes: Array<{ id: string }> }).notes;
    expect(text(await call(client, 'delete_note', { id: note!.id }))).toBe(`deleted ${note!.id}`);
    expect(notes.calls).toEqual({ list: 1, add: 1, remove: 1 });
  });

  it('during a window: reads run; a blocked write is refused with the structured result and never runs', async () => {
    const engine = engineFor();
    const notes = memoryNotes();
    const client = await connect(notesServer(engine, notes));
    const endsAt = inAnHour();
    const w = await engine.begin({ reason: 'migration', message: 'Upgrading the database', endsAt });

    const listed = await call(client, 'list_notes');
    expect(listed.isError).toBeFalsy();
    expect(notes.calls.list).toBe(1);

    const refused = await call(client, 'delete_note', { id: 'n1' });
    expect(refused.isError).toBe(true);
    expect(refused.structuredContent).toMatchObject({
      code: 'READ_ONLY_MODE',
      outcome: 'refused',
      message: 'Upgrading the database',
      windowId: w.id,
      windowEndsAt: endsAt,
    });
    const seconds = (refused.structuredContent as { retryAfterSeconds: number }).retryAfterSeconds;
    expect(seconds).toBeGreaterThan(3500);
    expect(seconds).toBeLessThanOrEqual(3600);
    expect(text(refused)).toContain('"delete_note" was not run');
    expect(text(refused)).toContain(endsAt);
    expect(text(refused)).toContain(`Retry this call after ${seconds} seconds`);
    expect(notes.calls.remove).toBe(0);
    expect((await engine.status()).counters.refused).toEqual({ tool: 1 });
    // What an agent runtime reads back.
    expect(agentNoticeOf(refused)).toEqual(refused.structuredContent);
    expect(agentNoticeOf(listed)).toBeNull();
  });

  it('queues a queue tool as a durable intent and applies it exactly once after the window', async () => {
    const engine = engineFor();
    const notes = memoryNotes();
    const client = await connect(notesServer(engine, notes));
    await engine.begin({ reason: 'r', message: 'Back soon', endsAt: inAnHour() });

    const meta = { [IDEMPOTENCY_KEY_META]: 'agent-call-1' };
    const accepted = await call(client, 'add_note', { text: 'remember the milk' }, meta);
    expect(accepted.isError).toBeFalsy();
    const notice = accepted.structuredContent as { intentId: string };
    expect(notice).toMatchObject({
      code: 'READ_ONLY_MODE',
      outcome: 'queued',
      idempotencyKey: 'agent-call-1',
    });
    expect(text(accepted)).toContain(`queued as intent ${notice.intentId}`);
    expect(notes.calls.add).toBe(0);
    // The agent retrying the same call gets the same intent, not a second one.
    const again = await call(client, 'add_note', { text: 'remember the milk' }, meta);
    expect((again.structuredContent as { intentId: string }).intentId).toBe(notice.intentId);
    // Without a key, identical arguments derive the same key; other arguments another intent.
    const derived = await call(client, 'add_note', { text: 'buy bread' });
    expect((derived.structuredContent as { idempotencyKey: string }).idempotencyKey).toMatch(/^derived:/);

    await engine.end({ reason: 'done' });
    await engine.waitForPhase('closed');
    expect(notes.calls.add).toBe(2);
    expect((await call(client, 'list_notes')).structuredContent).toMatchObject({
      notes: expect.arrayContaining([
        expect.objectContaining({ text: 'remember the milk' }),
        expect.objectContaining({ text: 'buy bread' }),
      ]),
    });
    expect(await engine.getIntent(notice.intentId)).toMatchObject({ status: 'applied', attempts: 1 });
  });

  it('names the field of a bad idempotency key and of a key reused with other arguments', async () => {
    const engine = engineFor();
    const notes = memoryNotes();
    const client = await connect(notesServer(engine, notes));
    await engine.begin({ reason: 'r', message: 'm' });
    const tooLong = await call(
      client,
      'add_note',
      { text: 'x' },
      { [IDEMPOTENCY_KEY_META]: 'k'.repeat(256) },
    );
    expect(tooLong).toMatchObject({
      isError: true,
      structuredContent: { code: 'INVALID_INPUT', field: `_meta["${IDEMPOTENCY_KEY_META}"]` },
    });
    await call(client, 'add_note', { text: 'one' }, { [IDEMPOTENCY_KEY_META]: 'k1' });
    const conflict = await call(client, 'add_note', { text: 'two' }, { [IDEMPOTENCY_KEY_META]: 'k1' });
    expect(conflict).toMatchObject({ isError: true, structuredContent: { code: 'IDEMPOTENCY_CONFLICT' } });
    expect(await engine.listIntents()).toHaveLength(1);
    expect(notes.calls.add).toBe(0);
  });

  it('drops a drop tool: an error result saying it will not be applied', async () => {
    const engine = engineFor();
    const notes = memoryNotes();
    const client = await connect(notesServer(engine, notes, { tools: { add_note: 'drop' } }));
    await engine.begin({ reason: 'r', message: 'm' });
    const dropped = await call(client, 'add_note', { text: 'x' });
    expect(dropped).toMatchObject({
      isError: true,
      structuredContent: { outcome: 'dropped', retryAfterSeconds: 300 },
    });
    expect(text(dropped)).toContain('will not be applied');
    expect(notes.calls.add).toBe(0);
    await engine.end();
    await engine.waitForPhase('closed');
    expect(notes.calls.add).toBe(0);
  });

  it('classifies by override, then rule, then readOnlyHint, else a write nobody decided', async () => {
    const engine = engineFor({
      rules: [
        { surface: 'tool', name: 'tool search', classification: 'read' },
        { surface: 'tool', name: 'tool claims_read_only', policy: 'drop' },
      ],
    });
    const server = guardMcpServer(new McpServer({ name: 's', version: '1' }), engine, {
      tools: { overridden: 'queue', hinted_but_overridden: 'block' },
    });
    const ok = async () => ({ content: [] });
    server.registerTool('look', { annotations: { readOnlyHint: true } }, ok);
    server.registerTool('search', {}, ok);
    server.registerTool('claims_read_only', { annotations: { readOnlyHint: true } }, ok);
    server.registerTool('overridden', {}, ok);
    server.registerTool('hinted_but_overridden', { annotations: { readOnlyHint: true } }, ok);
    server.registerTool('plain', {}, ok);
    server.registerTool(
      'not_read_only',
      { annotations: { readOnlyHint: false, destructiveHint: false } },
      ok,
    );
    server.tool('legacy', ok);

    expect(
      Object.fromEntries(guardedTools(server).map((t) => [t.name, [t.classification, t.policy, t.by]])),
    ).toEqual({
      look: ['read', 'allow', 'annotation'],
      search: ['read', 'allow', 'rule'],
      claims_read_only: ['write', 'drop', 'rule'],
      overridden: ['write', 'queue', 'override'],
      hinted_but_overridden: ['write', 'block', 'override'],
      plain: ['write', 'block', 'default'],
      not_read_only: ['write', 'block', 'default'],
      legacy: ['write', 'block', 'default'],
    });
    const inventory = engine.inventory();
    expect(inventory.find((e) => e.name === 'tool look')).toMatchObject({
      surface: 'tool',
      classification: 'read',
      explicit: true,
      source: 'mcp',
      details: { tool: 'look', classifiedBy: 'annotation', annotations: { readOnlyHint: true } },
    });
    // What `quiesce inventory --fail-on-unclassified` fails on: writes nobody decided.
    const unclassified = inventory
      .filter((e) => e.classification === 'write' && !e.explicit)
      .map((e) => e.name);
    expect(unclassified).toEqual(['tool legacy', 'tool not_read_only', 'tool plain']);

    // The decision follows the classification during a window.
    const client = await connect(server);
    await engine.begin({ reason: 'r', message: 'm' });
    expect((await call(client, 'look')).isError).toBeFalsy();
    expect((await call(client, 'search')).isError).toBeFalsy();
    expect(await call(client, 'claims_read_only')).toMatchObject({
      structuredContent: { outcome: 'dropped' },
    });
    expect(await call(client, 'hinted_but_overridden')).toMatchObject({
      structuredContent: { outcome: 'refused' },
    });
    expect(await call(client, 'plain')).toMatchObject({
      isError: true,
      structuredContent: { outcome: 'refused' },
    });
  });

  it('guards tools registered before the call, replaced callbacks, and annotation updates', async () => {
    const engine = engineFor();
    const server = new McpServer({ name: 's', version: '1' });
    let ran = 0;
    server.registerTool('early', {}, async () => {
      ran++;
      return { content: [] };
    });
    guardMcpServer(server, engine);
    const late = server.registerTool('late', {}, async () => {
      ran++;
      return { content: [] };
    });
    late.update({
      callback: async () => {
        ran += 100;
        return { content: [] };
      },
    });
    const client = await connect(server);
    await engine.begin({ reason: 'r', message: 'm' });
    expect(await call(client, 'early')).toMatchObject({
      isError: true,
      structuredContent: { outcome: 'refused' },
    });
    expect(await call(client, 'late')).toMatchObject({
      isError: true,
      structuredContent: { outcome: 'refused' },
    });
    expect(ran).toBe(0);
    // A tool that later declares itself read-only is reclassified (and re-inventoried).
    late.update({ annotations: { readOnlyHint: true } });
    expect((await call(client, 'late')).isError).toBeFalsy();
    expect(ran).toBe(100);
    expect(engine.inventory().find((e) => e.name === 'tool late')).toMatchObject({ classification: 'read' });
  });

  it('refuses to queue a tool with an outputSchema, and leaves no unguarded tool behind', async () => {
    const engine = engineFor();
    const server = guardMcpServer(new McpServer({ name: 's', version: '1' }), engine, {
      tools: { typed: 'queue' },
    });
    expect(() =>
      server.registerTool('typed', { outputSchema: { id: z.string() } }, async () => ({
        content: [],
        structuredContent: { id: '1' },
      })),
    ).toThrow(/tools\.typed: a tool with an outputSchema cannot be queued/);
    const client = await connect(server);
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain('typed');
    expect(() =>
      guardMcpServer(new McpServer({ name: 's', version: '1' }), engine, { tools: { x: 'later' as never } }),
    ).toThrow(/tools\.x: must be 'read', 'block', 'queue', 'drop' or 'allow'/);
  });

  it('refuses a task-based write tool during a window (it cannot be queued) and runs it outside', async () => {
    const engine = engineFor();
    const server = guardMcpServer(
      new McpServer({ name: 's', version: '1' }, { taskStore: new InMemoryTaskStore() }),
      engine,
    );
    let created = 0;
    server.experimental.tasks.registerToolTask(
      'long_write',
      { execution: { taskSupport: 'optional' } },
      {
        createTask: async (extra) => {
          created++;
          const task = await extra.taskStore.createTask({ ttl: 60_000, pollInterval: 1 });
          await extra.taskStore.storeTaskResult(task.taskId, 'completed', {
            content: [{ type: 'text', text: 'written' }],
          });
          return { task };
        },
        getTask: async (extra) => (await extra.taskStore.getTask(extra.taskId))!,
        getTaskResult: async (extra) => (await extra.taskStore.getTaskResult(extra.taskId)) as CallToolResult,
      },
    );
    const client = await connect(server);
    expect(text(await call(client, 'long_write'))).toBe('written');
    await engine.begin({ reason: 'r', message: 'Task tools wait' });
    const refused = await call(client, 'long_write');
    expect(refused.isError).toBe(true);
    expect(text(refused)).toContain('"long_write" was not run');
    expect(text(refused)).toContain('Task tools wait');
    expect(created).toBe(1);
    expect((await engine.status()).counters.refused).toEqual({ tool: 1 });
    // Queueing one is refused at registration, and the tool is not left unguarded.
    const queued = guardMcpServer(
      new McpServer({ name: 's2', version: '1' }, { taskStore: new InMemoryTaskStore() }),
      engine,
      { tools: { long_write: 'queue' } },
    );
    expect(() =>
      queued.experimental.tasks.registerToolTask(
        'long_write',
        { execution: { taskSupport: 'optional' } },
        {
          createTask: async () => {
            throw new Error('not reached');
          },
          getTask: async () => {
            throw new Error('not reached');
          },
          getTaskResult: async () => {
            throw new Error('not reached');
          },
        },
      ),
    ).toThrow(/tools\.long_write: a task-based tool cannot be queued/);
    expect(guardedTools(queued)).toEqual([]);
  });

  it('tracks a running write tool as an in-flight write (the drain waits for it), not a read tool', async () => {
    const engine = engineFor();
    const server = guardMcpServer(new McpServer({ name: 's', version: '1' }), engine);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    server.registerTool('slow_write', {}, async () => {
      started();
      await released;
      return { content: [{ type: 'text', text: 'written' }] };
    });
    server.registerTool('look', { annotations: { readOnlyHint: true } }, async () => ({ content: [] }));
    const client = await connect(server);
    const pending = call(client, 'slow_write');
    await running;
    expect((await engine.status()).inFlight).toMatchObject({ count: 1, oldest: { name: 'tool slow_write' } });
    await call(client, 'look');
    expect((await engine.status()).inFlight.count).toBe(1);
    release();
    expect(text(await pending)).toBe('written');
    expect((await engine.status()).inFlight.count).toBe(0);
  });

  it("passes the caller's principal to the engine: its bypass predicate lets an operator's write run", async () => {
    const engine = engineFor({ bypass: { principal: (p) => p === 'ops-bot' } });
    const notes = memoryNotes();
    const who = (extra: { _meta?: Record<string, unknown> | undefined }) =>
      extra._meta?.who as string | undefined;
    const client = await connect(
      notesServer(engine, notes, { tools: { add_note: 'queue' }, principal: who }),
    );
    await engine.begin({ reason: 'r', message: 'm' });
    expect(await call(client, 'delete_note', { id: 'x' }, { who: 'someone' })).toMatchObject({
      isError: true,
    });
    expect(notes.calls.remove).toBe(0);
    expect((await call(client, 'delete_note', { id: 'x' }, { who: 'ops-bot' })).isError).toBeFalsy();
    expect(notes.calls.remove).toBe(1);
    expect((await engine.status()).counters.bypassed).toEqual({ tool: 1 });
    // A queued call keeps who asked.
    const queued = await call(client, 'add_note', { text: 't' }, { who: 'someone' });
    const intent = await engine.getIntent(agentNoticeOf(queued)!.intentId!);
    expect(intent).toMatchObject({ principal: 'someone', surface: 'tool', name: 'tool add_note' });
  });

  it('fails closed: an error while deciding refuses the call and runs nothing', async () => {
    const engine = engineFor();
    const broken = new Proxy(engine, {
      get(target, p) {
        if (p === 'decide')
          return () => {
            throw new Error('classifier exploded');
          };
        const v = Reflect.get(target, p, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const notes = memoryNotes();
    const client = await connect(notesServer(broken, notes));
    const r = await call(client, 'delete_note', { id: 'x' });
    expect(r).toMatchObject({ isError: true, structuredContent: { code: 'INTERNAL' } });
    expect(text(r)).toContain('classifier exploded');
    expect(notes.calls.remove).toBe(0);
  });

  it("agrees with guardTool's refusal: one source for what an agent is told", async () => {
    const clock = createManualClock(Date.UTC(2026, 5, 1, 12));
    const engine = engineFor({ clock, heartbeatMs: 3_600_000 });
    const notes = memoryNotes();
    const client = await connect(notesServer(engine, notes));
    const guarded = engine.guardTool('delete_note', async () => 'deleted');
    await engine.begin({
      reason: 'r',
      message: 'Index rebuild',
      contact: '#ops',
      endsAt: new Date(clock.now() + 1_800_000).toISOString(),
    });
    const viaMcp = await call(client, 'delete_note', { id: 'x' });
    const viaGuardTool = await guarded();
    if (typeof viaGuardTool === 'string') throw new Error('guardTool ran the tool during the window');
    const {
      ok: _ok,
      refused: _refused,
      endsAt: _e,
      retryAfter: _r,
      text: guardText,
      ...fields
    } = viaGuardTool;
    expect(viaMcp.structuredContent).toEqual(fields);
    expect(text(viaMcp)).toBe(guardText);
    // And both are the core renderer's output.
    const d = engine.decide({ surface: 'tool', name: 'tool delete_note' });
    if (d.outcome !== 'refuse') throw new Error(`expected a refusal, got ${d.outcome}`);
    const w = engine.window!;
    expect(
      agentRefusal({
        decision: d,
        message: w.message,
        contact: w.contact,
        tool: 'delete_note',
        now: clock.now(),
      }).text,
    ).toBe(guardText);
  });
});
