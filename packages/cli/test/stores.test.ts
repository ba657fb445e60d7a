import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileStore, createQuiesce, type QuiesceEngine, type StateStore } from '@quiesce/core';
import { createPostgresStore } from '@quiesce/postgres';
import { createRedisStore } from '@quiesce/redis';
import { POSTGRES_URL, REDIS_URL, serviceAvailable, uniqueName, waitFor } from '@quiesce/testkit';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../src/index.js';
import { cli, startCli } from './helpers.js';

const WRITE = { surface: 'http', name: 'POST /orders', method: 'POST', path: '/orders' } as const;

/**
 * The CLI on a store directly, with app instances (participant engines) on the same store: the CLI
 * confirms the freeze by counting their acknowledgements and in-flight writes in the registry.
 */
function storeSuite(
  name: string,
  setup: () => Promise<{ args: string[]; makeStore: () => StateStore; cleanup: () => Promise<void> }>,
) {
  describe(name, () => {
    let args: string[];
    let apps: QuiesceEngine[];
    let cleanup: () => Promise<void>;
    /** What the apps' replay handlers applied (each app holds its own memory queue here). */
    const applied: string[] = [];
    beforeAll(async () => {
      const s = await setup();
      args = s.args;
      cleanup = s.cleanup;
      apps = [0, 1].map((i) =>
        createQuiesce({ store: s.makeStore(), instanceId: `app-${i}`, heartbeatMs: 100 }),
      );
      for (const a of apps) a.handle('orders.create', (p: { id: string }) => void applied.push(p.id));
      await Promise.all(apps.map((a) => a.start()));
    });
    afterAll(async () => {
      await Promise.all(apps.map((a) => a.close()));
      await cleanup();
    });

    it('begin waits for every app instance (naming the one with a write in flight), then both refuse writes', async () => {
      const h = apps[1]!.track(WRITE);
      const begin = startCli([
        'begin',
        ...args,
        '--reason',
        'reindex',
        '--message',
        'Read-only for the reindex',
        '--for',
        '45m',
      ]);
      // The write is held until the CLI has printed that it waits on it: no race with the drain.
      await begin.printed(/waiting on app-1 \(1 in flight: POST \/orders\)/);
      h.done();
      const r = await begin.result;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(EXIT.ok);
      expect(r.stdout).toMatch(/waiting on app-1 \(1 in flight: POST \/orders\)/);
      expect(r.stdout).toMatch(/frozen at .*: 2 live instances confirmed/);
      for (const a of apps) {
        await a.waitForPhase('frozen', { timeoutMs: 3000 });
        expect(a.decide(WRITE).outcome).toBe('refuse');
      }
      const s = await cli(['status', ...args, '--json']);
      expect(s.json.phase).toBe('frozen');
      expect(s.json.instances.map((i: { id: string }) => i.id).sort()).toEqual(['app-0', 'app-1']);
      const human = await cli(['status', ...args]);
      expect(human.stdout).toMatch(/instances\s+2 live/);
      expect(human.stdout).not.toMatch(/refused/); // the counters live in the apps, not here
    });

    it('extend and end work on the store; end soaks, the apps replay their queues, and it closes', async () => {
      const until = new Date(Date.now() + 2 * 3_600_000).toISOString();
      const e = await cli(['extend', ...args, '--until', until]);
      expect(e.code).toBe(EXIT.ok);
      await waitFor('both apps to see the new end', () => apps.every((a) => a.window?.endsAt === until));
      // A write kept during the window, in app-1's queue.
      const order = {
        surface: 'http',
        name: 'POST /orders',
        method: 'POST',
        path: '/orders',
        idempotencyKey: 'o-1',
        annotation: { classification: 'write', policy: 'queue' },
      } as const;
      expect(apps[1]!.decide(order).outcome).toBe('enqueue');
      await apps[1]!.enqueue(order, { id: 'o-1' }, { name: 'orders.create' });
      const r = await cli(['end', ...args, '--soak', '100ms', '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(EXIT.ok);
      // The CLI holds no queue: the app instances replayed theirs and the last one closed the window.
      expect(r.json.window.phase).toBe('closed');
      expect(applied).toEqual(['o-1']);
      for (const a of apps) {
        await a.waitForPhase('closed', { timeoutMs: 3000 });
        expect(a.decide(WRITE).outcome).toBe('proceed');
      }
    });

    it('the audit, inventory and intents live in the app: a clear pointer to --url (exit 2)', async () => {
      for (const cmd of ['audit', 'inventory', 'intents']) {
        const r = await cli([cmd, ...args]);
        expect(r.code).toBe(EXIT.usage);
        expect(r.stderr).toMatch(/lives in the app's processes.*--url/);
      }
    });
  });
}

storeSuite('quiesce CLI on a file store', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'quiesce-cli-'));
  const path = join(dir, 'state.json');
  return {
    args: ['--store', `file:${path}`],
    makeStore: () => createFileStore({ path, pollMs: 50 }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

const pgOk = await serviceAvailable('postgres', 'cli: CLI on a postgres store');
describe.skipIf(!pgOk)('postgres', () => {
  storeSuite('quiesce CLI on a postgres store', async () => {
    const schema = uniqueName('cli');
    const stores: StateStore[] = [];
    return {
      args: ['--store', POSTGRES_URL, '--schema', schema],
      makeStore: () => {
        const s = createPostgresStore({ connectionString: POSTGRES_URL, schema });
        stores.push(s);
        return s;
      },
      cleanup: async () => {
        await Promise.all(stores.map((s) => s.close()));
        const c = new pg.Client({ connectionString: POSTGRES_URL });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await c.end();
      },
    };
  });
});

const redisOk = await serviceAvailable('redis', 'cli: CLI on a redis store');
describe.skipIf(!redisOk)('redis', () => {
  storeSuite('quiesce CLI on a redis store', async () => {
    const prefix = `${uniqueName('cli')}:`;
    const stores: StateStore[] = [];
    return {
      args: ['--store', REDIS_URL, '--prefix', prefix],
      makeStore: () => {
        const s = createRedisStore({ url: REDIS_URL, prefix });
        stores.push(s);
        return s;
      },
      cleanup: async () => {
        await Promise.all(stores.map((s) => s.close()));
        const r = new Redis(REDIS_URL);
        const keys = await r.keys(`${prefix}*`);
        if (keys.length) await r.del(...keys);
        r.disconnect();
      },
    };
  });
});

describe('unreachable stores', () => {
  // The test's timeout is the bound: the CLI gives up on an unreachable store instead of retrying.
  it('a postgres or redis server that is not there is exit 3, without hanging', {
    timeout: 15_000,
  }, async () => {
    const p = await cli(['status', '--store', 'postgres://postgres@127.0.0.1:1/none']);
    expect(p.code).toBe(EXIT.unreachable);
    expect(p.stderr).toMatch(/cannot reach the postgres store/);
    const r = await cli(['status', '--store', 'redis://127.0.0.1:1']);
    expect(r.code).toBe(EXIT.unreachable);
    expect(r.stderr).toMatch(/redis store/);
  });
});
