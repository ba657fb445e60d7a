import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDemo, type Demo } from '../src/index.js';

const gql = async (url: string, query: string) =>
  (await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  }).then((r) => r.json())) as {
    data?: unknown;
    errors?: Array<{ message: string; extensions?: { code?: string } }>;
  };

describe('the demo GraphQL API refuses a malformed note id as bad input (issue #15)', () => {
  let dir: string;
  let demo: Demo;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quiesce-demo-gql-'));
    demo = await buildDemo({ port: 0, dataDir: dir, soakMs: 0, cron: false });
  }, 120_000);
  afterAll(async () => {
    await demo?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each([
    'mutation { deleteNote(id: "abc") }',
    'mutation { viewNote(id: "1.5") }',
    '{ note(id: "-1") { id } }',
  ])('%s outside a window → BAD_USER_INPUT naming id, not INTERNAL_SERVER_ERROR', async (query) => {
    const r = await gql(demo.url, query);
    expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(r.errors?.[0]?.message).toMatch(/^id: must be a note id/);
  });

  it('a well-formed id still works', async () => {
    const r = await gql(demo.url, 'mutation { deleteNote(id: "999") }');
    expect(r.errors).toBeUndefined();
  });
});
