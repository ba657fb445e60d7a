import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { QuiesceEngine } from '@quiesce/core';
import { z } from 'zod';
import { type GuardMcpServerOptions, guardMcpServer, replayOf } from '../src/index.js';

export interface Note {
  id: string;
  text: string;
}

export interface NotesStore {
  list(): Promise<Note[]>;
  /** `key` makes the insert idempotent (a replay applies once in effect). */
  add(text: string, key: string | null): Promise<Note>;
  remove(id: string): Promise<boolean>;
}

export function memoryNotes(): NotesStore & { calls: Record<string, number> } {
  const notes = new Map<string, Note & { key: string | null }>();
  const calls: Record<string, number> = { list: 0, add: 0, remove: 0 };
  return {
    calls,
    async list() {
      calls.list!++;
      return [...notes.values()].map(({ id, text }) => ({ id, text }));
    },
    async add(text, key) {
      calls.add!++;
      const existing = key ? [...notes.values()].find((n) => n.key === key) : undefined;
      if (existing) return { id: existing.id, text: existing.text };
      const note = { id: randomUUID(), text, key };
      notes.set(note.id, note);
      return { id: note.id, text };
    },
    async remove(id) {
      calls.remove!++;
      return notes.delete(id);
    },
  };
}

/** The demo's three tools: list_notes (read-only), add_note (queued), delete_note (no annotation: blocked). */
export function notesServer(
  engine: QuiesceEngine,
  notes: NotesStore,
  options: GuardMcpServerOptions = { tools: { add_note: 'queue' } },
): McpServer {
  const server = guardMcpServer(new McpServer({ name: 'notes', version: '1.0.0' }), engine, options);
  server.registerTool(
    'list_notes',
    { description: 'List every note.', annotations: { readOnlyHint: true } },
    async () => {
      const all = await notes.list();
      return { content: [{ type: 'text', text: JSON.stringify(all) }], structuredContent: { notes: all } };
    },
  );
  server.registerTool(
    'add_note',
    { description: 'Add a note.', inputSchema: { text: z.string().min(1) } },
    async ({ text }, extra) => {
      const note = await notes.add(text, replayOf(extra)?.idempotencyKey ?? null);
      return { content: [{ type: 'text', text: `added ${note.id}` }] };
    },
  );
  server.registerTool(
    'delete_note',
    { description: 'Delete a note.', inputSchema: { id: z.string() } },
    async ({ id }) => {
      const removed = await notes.remove(id);
      return { content: [{ type: 'text', text: removed ? `deleted ${id}` : `no note ${id}` }] };
    },
  );
  return server;
}
