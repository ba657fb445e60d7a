import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { QuiesceEngine } from '@quiesce/core';
import { guardMcpServer, replayOf } from '@quiesce/mcp';
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { NotesRepository } from './database.js';

/**
 * The board's notes as MCP tools for agents: `list_notes` (read-only, runs during a window),
 * `add_note` (queued during a window, applied after it), `delete_note` (refused during a window).
 */
function notesMcpServer(engine: QuiesceEngine, notes: NotesRepository): McpServer {
  const server = guardMcpServer(new McpServer({ name: 'quiesce-demo-notes', version: '1.0.0' }), engine, {
    tools: { add_note: 'queue', delete_note: 'block' },
  });
  server.registerTool(
    'list_notes',
    { description: 'List the notes on the board.', annotations: { readOnlyHint: true } },
    async () => {
      const all = await notes.list();
      return { content: [{ type: 'text', text: JSON.stringify(all) }], structuredContent: { notes: all } };
    },
  );
  server.registerTool(
    'add_note',
    { description: 'Add a note to the board.', inputSchema: { text: z.string().trim().min(1).max(500) } },
    async ({ text }, extra) => {
      const replay = replayOf(extra);
      const note = await notes.create(text, replay ? 'replay' : 'mcp', replay?.idempotencyKey);
      return { content: [{ type: 'text', text: `Added note ${note.id}.` }] };
    },
  );
  server.registerTool(
    'delete_note',
    {
      description: 'Delete a note by id.',
      inputSchema: { id: z.number().int().positive() },
      annotations: { destructiveHint: true },
    },
    async ({ id }) => {
      const removed = await notes.remove(id);
      return { content: [{ type: 'text', text: removed ? `Deleted note ${id}.` : `No note ${id}.` }] };
    },
  );
  return server;
}

/** POST handler of the Streamable HTTP endpoint (stateless: one server per request). */
export function createMcpNotes(engine: QuiesceEngine, notes: NotesRepository) {
  // Once at start, so the tools are in the inventory and a queued add_note has its replay handler.
  notesMcpServer(engine, notes);
  return async (req: Request, res: Response) => {
    const server = notesMcpServer(engine, notes);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  };
}
