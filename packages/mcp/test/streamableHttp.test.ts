import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createQuiesce, type QuiesceEngine } from '@quiesce/core';
import { afterEach, describe, expect, it } from 'vitest';
import { IDEMPOTENCY_KEY_META, mcpEndpointRule } from '../src/index.js';
import { ADMIN_TOKEN, listenMcpApp } from './fixtures/mcpApp.js';
import { memoryNotes } from './notesServer.js';

const open: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

async function setup(engine: QuiesceEngine) {
  open.push(() => engine.close());
  const notes = memoryNotes();
  const app = await listenMcpApp(engine, notes);
  open.push(() => app.close());
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${app.url}/mcp`)));
  open.push(() => client.close());
  return { notes, app, client };
}

const text = (r: CallToolResult) => (r.content[0] as { text: string }).text;

describe('guardMcpServer over Streamable HTTP behind @quiesce/express', () => {
  it('with mcpEndpointRule: reads run, writes are refused or queued per tool call, the queue applies once', async () => {
    const engine = createQuiesce({ soakMs: 0, rules: [mcpEndpointRule('/mcp')] });
    const { notes, client } = await setup(engine);
    const w = await engine.begin({ reason: 'r', message: 'Moving to a new disk' });

    const listed = (await client.callTool({ name: 'list_notes', arguments: {} })) as CallToolResult;
    expect(listed.isError).toBeFalsy();

    const refused = (await client.callTool({
      name: 'delete_note',
      arguments: { id: 'n1' },
    })) as CallToolResult;
    expect(refused).toMatchObject({
      isError: true,
      structuredContent: {
        code: 'READ_ONLY_MODE',
        outcome: 'refused',
        windowId: w.id,
        windowEndsAt: null,
        message: 'Moving to a new disk',
      },
    });
    expect(text(refused)).toContain('has not announced');
    expect(notes.calls.remove).toBe(0);

    const accepted = (await client.callTool({
      name: 'add_note',
      arguments: { text: 'over http' },
      _meta: { [IDEMPOTENCY_KEY_META]: 'http-1' },
    })) as CallToolResult;
    expect(accepted.isError).toBeFalsy();
    const { intentId } = accepted.structuredContent as { intentId: string };
    expect(notes.calls.add).toBe(0);

    // The endpoint itself was let through (decided, not counted as refused), every refusal came from a tool.
    const status = await engine.status();
    expect(status.counters.refused).toEqual({ tool: 1 });
    expect(status.counters.queued).toEqual({ tool: 1 });
    expect(engine.inventory().find((e) => e.surface === 'tool' && e.name === 'tool add_note')).toMatchObject({
      policy: 'queue',
      explicit: true,
    });

    await engine.end();
    await engine.waitForPhase('closed');
    expect(notes.calls.add).toBe(1);
    expect(await engine.getIntent(intentId)).toMatchObject({ status: 'applied' });
    expect(await notes.list()).toEqual([expect.objectContaining({ text: 'over http' })]);
  });

  it('the admin inventory (what `quiesce inventory --fail-on-unclassified` reads) names an undecided MCP tool', async () => {
    const engine = createQuiesce({ rules: [mcpEndpointRule('/mcp')] });
    const { app } = await setup(engine);
    const res = await fetch(`${app.url}/quiesce/admin/inventory`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(res.status).toBe(200);
    const { entries, unclassified } = (await res.json()) as {
      entries: Array<{
        name: string;
        source: string;
        explicit: boolean;
        details?: { classifiedBy?: string };
      }>;
      unclassified: Array<{ name: string }>;
    };
    const tools = entries.filter((e) => e.source === 'mcp');
    expect(tools.map((e) => [e.name, e.details?.classifiedBy])).toEqual([
      ['tool add_note', 'override'],
      ['tool delete_note', 'default'],
      ['tool list_notes', 'annotation'],
    ]);
    // delete_note declares nothing and nobody decided: the one the CLI flag fails on.
    expect(unclassified.map((e) => e.name)).toContain('tool delete_note');
    expect(unclassified.map((e) => e.name)).not.toContain('tool add_note');
    // The endpoint itself is decided (allow, by the rule), so it is not reported.
    expect(entries.find((e) => e.name === 'POST /mcp')).toMatchObject({ source: 'express', explicit: true });
    expect(unclassified.map((e) => e.name)).not.toContain('POST /mcp');
  });

  it('without the rule the HTTP layer refuses the MCP endpoint itself, reads included', async () => {
    const engine = createQuiesce();
    const { client, notes } = await setup(engine);
    await engine.begin({ reason: 'r', message: 'm' });
    await expect(client.callTool({ name: 'list_notes', arguments: {} })).rejects.toThrow(/503/);
    expect(notes.calls.list).toBe(0);
  });
});
