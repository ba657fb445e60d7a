import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, describe, expect, it } from 'vitest';
import { buildDemo, type Demo } from '../src/index.js';
import { json, quiesceCli } from './helpers.js';

describe('the demo as an MCP server (Streamable HTTP at /mcp)', () => {
  let dir: string;
  let demo: Demo;
  let client: Client;
  afterAll(async () => {
    await client?.close();
    await demo?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('list_notes runs during a window, add_note is queued and applied after it, delete_note is refused', async () => {
    dir = await mkdtemp(join(tmpdir(), 'quiesce-demo-mcp-'));
    demo = await buildDemo({ port: 0, dataDir: dir, soakMs: 0, cron: false });
    client = new Client({ name: 'demo-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${demo.url}/mcp`)));
    const call = (name: string, args: Record<string, unknown> = {}) =>
      client.callTool({ name, arguments: args }) as Promise<CallToolResult>;

    expect((await call('add_note', { text: 'from an agent' })).isError).toBeFalsy();
    expect(await json(fetch(`${demo.url}/api/notes`))).toEqual([
      expect.objectContaining({ id: 1, text: 'from an agent', source: 'mcp' }),
    ]);

    const target = ['--url', `${demo.url}/quiesce`, '--token', demo.adminToken];
    // Every tool is decided (nothing for --fail-on-unclassified to catch from MCP).
    const inventory = await quiesceCli(['inventory', ...target, '--json']);
    const entries = JSON.parse(inventory.stdout).entries as Array<{
      name: string;
      policy: string;
      explicit: boolean;
    }>;
    expect(entries.filter((e) => e.name.startsWith('tool '))).toEqual([
      expect.objectContaining({ name: 'tool add_note', policy: 'queue', explicit: true }),
      expect.objectContaining({ name: 'tool delete_note', policy: 'block', explicit: true }),
      expect.objectContaining({ name: 'tool list_notes', policy: 'allow', explicit: true }),
    ]);

    await demo.engine.begin({ reason: 'mcp test', message: 'Agents wait too' });
    expect((await call('list_notes')).structuredContent).toMatchObject({
      notes: [{ text: 'from an agent' }],
    });
    const refused = await call('delete_note', { id: 1 });
    expect(refused).toMatchObject({
      isError: true,
      structuredContent: { code: 'READ_ONLY_MODE', outcome: 'refused' },
    });
    const queued = await call('add_note', { text: 'after the window' });
    expect(queued).toMatchObject({ structuredContent: { outcome: 'queued' } });
    expect(queued.isError).toBeFalsy();

    await demo.engine.end();
    await demo.engine.waitForPhase('closed');
    const texts = (await json<Array<{ text: string; source: string }>>(fetch(`${demo.url}/api/notes`))).map(
      (n) => `${n.text}:${n.source}`,
    );
    expect(texts.sort()).toEqual(['after the window:replay', 'from an agent:mcp']);
  });
});
