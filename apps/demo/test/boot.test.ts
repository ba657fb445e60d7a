import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POSTGRES_URL, REDIS_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildDemo, type Demo } from '../src/index.js';
import { json, quiesceCli } from './helpers.js';

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

describe('the demo on embedded PGlite, from a clean data directory', () => {
  let dir: string;
  let demo: Demo;
  afterAll(async () => {
    await demo?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('boots with no server, serves every surface, and a window reaches all of them', async () => {
    dir = await mkdtemp(join(tmpdir(), 'quiesce-demo-'));
    demo = await buildDemo({ port: 0, dataDir: dir, soakMs: 200, cron: false });
    expect(demo.database).toBe('pglite');
    expect(demo.store).toBe('file');
    expect(await readdir(dir)).toEqual(expect.arrayContaining(['pglite']));

    const page = await (await fetch(`${demo.url}/`)).text();
    expect(page).toContain('<quiesce-banner src="/quiesce" disable-writes>');
    expect((await fetch(`${demo.url}/assets/quiesce-banner.js`)).headers.get('content-type')).toMatch(
      /javascript/,
    );
    expect(await (await fetch(`${demo.url}/assets/quiesce-client.js`)).text()).toContain('withQuiesceRetry');
    const created = await json(post(`${demo.url}/api/notes`, { text: 'first note' }));
    expect(created).toMatchObject({ id: 1, text: 'first note', source: 'rest' });
    expect((await post(`${demo.url}/api/notes`, { text: '' })).status).toBe(400);
    expect(await json(fetch(`${demo.url}/nest/notes/1`))).toMatchObject({ text: 'first note' });
    const gql = await json(post(`${demo.url}/graphql`, { query: '{ notes { id text } }' }));
    expect(gql.data.notes).toEqual([{ id: '1', text: 'first note' }]);

    // The pg-boss worker writes a digest outside a window.
    const before = await demo.digests();
    await demo.sendDigest();
    await vi.waitFor(async () => expect(await demo.digests()).toBe(before + 1), {
      timeout: 15_000,
      interval: 200,
    });

    const target = ['--url', `${demo.url}/quiesce`, '--token', demo.adminToken];
    const begin = await quiesceCli([
      'begin',
      ...target,
      '--reason',
      'boot test',
      '--message',
      'Read-only for a test',
      '--for',
      '5m',
    ]);
    expect(begin.stderr).toBe('');
    expect(begin.code).toBe(0);
    expect(begin.stdout).toMatch(/frozen at/);

    // REST refuses, Nest refuses and drops, GraphQL refuses and queues, the job waits.
    const refused = await fetch(`${demo.url}/api/notes/1`, { method: 'DELETE' });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ code: 'READ_ONLY_MODE', detail: 'Read-only for a test' });
    expect((await fetch(`${demo.url}/nest/notes/1/pin`, { method: 'POST' })).status).toBe(503);
    expect((await fetch(`${demo.url}/nest/notes/1/views`, { method: 'POST' })).status).toBe(202);
    const del = await json(post(`${demo.url}/graphql`, { query: 'mutation { deleteNote(id: 1) }' }));
    expect(del.errors[0].extensions.code).toBe('READ_ONLY_MODE');
    const add = await json(
      post(`${demo.url}/graphql`, {
        query: 'mutation { addNote(input: { text: "via graphql", requestId: "g-1" }) { id } }',
      }),
    );
    expect(add.errors[0].extensions.code).toBe('WRITE_QUEUED');
    const queued = await post(`${demo.url}/api/notes`, { text: 'via rest' }, { 'idempotency-key': 'r-1' });
    expect(queued.status).toBe(202);
    const digestsInWindow = await demo.digests();
    await demo.sendDigest();

    const metrics = await (await fetch(`${demo.url}/metrics`)).text();
    expect(metrics).toMatch(/quiesce_writes_refused(_total)?\{[^}]*surface="http"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/quiesce_writes_queued(_total)?\{[^}]*\} [1-9]/);

    const end = await quiesceCli(['end', ...target]);
    expect(end.code).toBe(0);
    expect(end.stdout).toMatch(/backfill: 2\/2 intents applied, 0 failed/);
    const texts = (await json<Array<{ text: string; source: string }>>(fetch(`${demo.url}/api/notes`))).map(
      (n) => `${n.text}:${n.source}`,
    );
    expect(texts).toEqual(
      expect.arrayContaining(['via graphql:replay', 'via rest:replay', 'first note:rest']),
    );
    // The digest job sent during the window runs after it.
    expect(digestsInWindow).toBe(before + 1);
    await vi.waitFor(async () => expect(await demo.digests()).toBeGreaterThan(digestsInWindow), {
      timeout: 15_000,
      interval: 200,
    });
  });

  it('closes gracefully and boots again on the same data', async () => {
    await demo.close();
    demo = await buildDemo({ port: 0, dataDir: dir, soakMs: 200, cron: false });
    const notes = await json<unknown[]>(fetch(`${demo.url}/api/notes`));
    expect(notes).toHaveLength(3);
    const s = await json(
      fetch(`${demo.url}/quiesce/admin/status`, { headers: { authorization: `Bearer ${demo.adminToken}` } }),
    );
    expect(s.phase).toBe('closed');
  });

  it('refuses bad options, naming them', async () => {
    await expect(buildDemo({ port: 70000 })).rejects.toThrow(/port: must be an integer from 0 to 65535/);
    await expect(buildDemo({ redisUrl: REDIS_URL })).rejects.toThrow(/redisUrl: .*set DATABASE_URL too/);
    await expect(buildDemo({ adminToken: 'short', dataDir: dir })).rejects.toThrow(
      /adminToken: must be at least 16/,
    );
  });
});

const pgOk = await serviceAvailable('postgres', 'demo: boots on PostgreSQL');
const redisOk = pgOk && (await serviceAvailable('redis', 'demo: state in Redis'));

describe.skipIf(!pgOk)('the demo on PostgreSQL, as two instances', () => {
  const schema = uniqueName('demo');
  const demos: Demo[] = [];
  afterAll(async () => {
    await Promise.all(demos.map((d) => d.close()));
    const c = new pg.Client({ connectionString: POSTGRES_URL });
    await c.connect();
    for (const s of [schema, `${schema}_boss`, `${schema}_quiesce`])
      await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await c.end();
  });

  it('both instances share notes and state; the CLI on the store waits for both', async () => {
    for (const i of [0, 1]) {
      demos.push(
        await buildDemo({
          port: 0,
          databaseUrl: POSTGRES_URL,
          schema,
          soakMs: 200,
          cron: false,
          instanceId: `demo-${i}`,
        }),
      );
    }
    const [a, b] = demos as [Demo, Demo];
    expect(a.database).toBe('postgres');
    expect(a.store).toBe('postgres');
    await post(`${a.url}/api/notes`, { text: 'shared' });
    expect(await json(fetch(`${b.url}/api/notes`))).toEqual([expect.objectContaining({ text: 'shared' })]);

    const store = ['--store', POSTGRES_URL, '--schema', `${schema}_quiesce`];
    const begin = await quiesceCli([
      'begin',
      ...store,
      '--reason',
      'pg',
      '--message',
      'Read-only on every instance',
      '--for',
      '5m',
    ]);
    expect(begin.stderr).toBe('');
    expect(begin.code).toBe(0);
    expect(begin.stdout).toMatch(/2 live instances confirmed/);
    for (const d of demos) await d.engine.waitForPhase('frozen', { timeoutMs: 5000 });
    expect((await fetch(`${b.url}/api/notes/1`, { method: 'DELETE' })).status).toBe(503);
    expect(
      (await post(`${b.url}/api/notes`, { text: 'queued on b' }, { 'idempotency-key': 'pg-1' })).status,
    ).toBe(202);
    // Reads during the window on both instances: the closing record adds them up.
    for (const d of demos)
      for (let i = 0; i < 3; i++) expect((await fetch(`${d.url}/api/notes`)).status).toBe(200);
    const windowId = a.engine.window!.id;

    const end = await quiesceCli(['end', ...store, '--soak', '200ms']);
    expect(end.code).toBe(0);
    // The storage write audit: none of the demo's tables was written between freeze and thaw (the
    // audit covers the demo's schema, whose tables carry its triggers).
    await vi.waitFor(
      () => {
        const audit = a.engine.window?.report.writeAudit as
          | { verdict: string; tables: Array<{ schema: string; verdict: string }>; tablesAudited: number }
          | undefined;
        expect(audit).toBeDefined();
        expect(audit!.tablesAudited).toBeGreaterThanOrEqual(2);
        expect(audit!.tables.every((t) => t.schema === schema && t.verdict === 'clean')).toBe(true);
        expect(audit!.verdict).toBe('clean');
      },
      { timeout: 15_000, interval: 200 },
    );
    // The CLI holds neither the queue nor its handlers: the instances replay once the window closes.
    await vi.waitFor(
      async () =>
        expect(
          (await json<Array<{ text: string }>>(fetch(`${a.url}/api/notes`))).map((n) => n.text),
        ).toContain('queued on b'),
      { timeout: 15_000, interval: 200 },
    );
    // The closing record as `quiesce audit --window` shows it: both instances' reads, the backfill,
    // the write audit, the real end.
    await vi.waitFor(() => expect(a.engine.window?.phase).toBe('closed'), { timeout: 15_000, interval: 100 });
    const app = ['--url', `${a.url}/quiesce`, '--token', a.adminToken];
    const audit = await quiesceCli(['audit', ...app, '--window', windowId, '--json']);
    expect(audit.stderr).toBe('');
    const record = JSON.parse(audit.stdout).record;
    expect(record.readHealth.source).toBe('instances');
    expect(record.readHealth.instances.map((i: { instanceId: string }) => i.instanceId)).toEqual([
      'demo-0',
      'demo-1',
    ]);
    for (const i of record.readHealth.instances) expect(i.during.count).toBeGreaterThanOrEqual(3);
    expect(record.readHealth.during.count).toBeGreaterThanOrEqual(6);
    expect(record.endedAt).not.toBeNull();
    expect(Date.parse(record.endedAt)).toBeLessThan(Date.parse(record.plannedEnd));
    // Backfill totals of every instance come with the engine's checklist (#12); without it, the
    // closing instance's own replay.
    expect(record.backfill).not.toBeNull();
    expect(record.writeAudit.verdict).toBe('clean');
    const human = await quiesceCli(['audit', ...app, '--window', windowId]);
    expect(human.stdout).toMatch(/reads {6}from 2 instances/);
    expect(human.stdout).toMatch(/storage {3}CLEAN/);
    expect(human.stdout).toMatch(/ended {4}\S+ \(planned /);
    // Through the store alone (no app): the record is in the state, with every change's who/when/why.
    const onStore = await quiesceCli(['audit', ...store, '--window', windowId]);
    expect(onStore.code).toBe(0);
    expect(onStore.stdout).toMatch(/begin → freezing {2}by .+ · pg/);
    expect(onStore.stdout).toMatch(/end → thawing/);
    expect(onStore.stdout).toMatch(/reads {6}from 2 instances/);
    expect(onStore.stdout).toMatch(/the audit log lives in the app/);
  });
});

describe.skipIf(!redisOk)('the demo with its state in Redis', () => {
  const schema = uniqueName('demor');
  let demo: Demo;
  afterAll(async () => {
    await demo?.close();
    const c = new pg.Client({ connectionString: POSTGRES_URL });
    await c.connect();
    for (const s of [schema, `${schema}_boss`, `${schema}_quiesce`])
      await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await c.end();
    const { Redis } = await import('ioredis');
    const r = new Redis(REDIS_URL);
    const keys = await r.keys(`${schema}:*`);
    if (keys.length) await r.del(...keys);
    r.disconnect();
  });

  it('begins and ends a window through the admin API', async () => {
    demo = await buildDemo({
      port: 0,
      databaseUrl: POSTGRES_URL,
      redisUrl: REDIS_URL,
      schema,
      soakMs: 200,
      cron: false,
    });
    expect(demo.store).toBe('redis');
    const target = ['--url', `${demo.url}/quiesce`, '--token', demo.adminToken];
    const begin = await quiesceCli(['begin', ...target, '--reason', 'r', '--message', 'm', '--for', '2m']);
    expect(begin.stderr).toBe('');
    expect(begin.code).toBe(0);
    expect((await fetch(`${demo.url}/api/notes/1`, { method: 'DELETE' })).status).toBe(503);
    expect((await quiesceCli(['end', ...target])).code).toBe(0);
    expect((await fetch(`${demo.url}/api/notes/1`, { method: 'DELETE' })).status).toBe(404);
  });
});
