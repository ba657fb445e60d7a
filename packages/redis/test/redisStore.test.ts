import { isQuiesceError, type QuiesceState } from '@quiesce/core';
import {
  REDIS_URL,
  runStoreContractSuite,
  sampleState,
  serviceAvailable,
  uniqueName,
} from '@quiesce/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { createTcpProxy } from './fixtures/harness.mjs';

const ok = await serviceAvailable('redis', '@quiesce/redis store');

async function dropPrefix(prefix: string) {
  const r = new Redis(REDIS_URL);
  try {
    const keys = await r.keys(`${prefix}*`);
    if (keys.length) await r.del(...keys);
  } finally {
    r.disconnect();
  }
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(!ok)('redis store', () => {
  runStoreContractSuite('redis', () => {
    const prefix = `${uniqueName('qrs_contract')}:`;
    return {
      open: () => createRedisStore({ url: REDIS_URL, prefix }),
      async corrupt(raw) {
        const r = new Redis(REDIS_URL);
        await r.hset(`${prefix}state`, 'payload', raw);
        await r.publish(`${prefix}state`, raw);
        r.disconnect();
      },
      dispose: () => dropPrefix(prefix),
    };
  });

  describe('beyond the contract', () => {
    const base = uniqueName('qrs_store');
    afterAll(() => dropPrefix(base));

    it('recovers its pub/sub connection after CLIENT KILL and catches up on what it missed', async () => {
      const prefix = `${base}:kill:`;
      const writer = createRedisStore({ url: REDIS_URL, prefix });
      const app = new Redis(REDIS_URL, { connectionName: 'app-client' });
      // An app's own client: the store duplicates it for pub/sub and never quits it.
      const reader = createRedisStore({ client: app, prefix, reconnect: { initialDelayMs: 20 } });
      const admin = new Redis(REDIS_URL);
      try {
        const seen: number[] = [];
        const errors: Error[] = [];
        reader.subscribe(
          (s) => seen.push(s.version),
          (e) => errors.push(e),
        );
        await waitFor('listening', () => reader.listening);
        await writer.compareAndSet(0, sampleState(1));
        await waitFor('version 1', () => seen.includes(1));

        const list = (await admin.client('LIST')) as string;
        const ids = list
          .split('\n')
          .filter((l) => l.includes(`name=quiesce-subscriber:${prefix} `))
          .map((l) => /id=(\d+)/.exec(l)![1]!);
        expect(ids.length).toBeGreaterThanOrEqual(1);
        for (const id of ids) await admin.client('KILL', 'ID', id);
        await writer.compareAndSet(1, sampleState(2));
        await waitFor('version 2 after CLIENT KILL', () => seen.includes(2));
        await waitFor('the lost connection reported', () => errors.length > 0);
        expect(errors.every((e) => isQuiesceError(e) && e.code === 'STORE_UNAVAILABLE')).toBe(true);
        await waitFor('listening again', () => reader.listening);
        await writer.compareAndSet(2, sampleState(3));
        await waitFor('version 3 through the new subscription', () => seen.includes(3));
        await reader.close();
        expect(app.status).toBe('ready');
      } finally {
        await writer.close();
        await reader.close();
        app.disconnect();
        admin.disconnect();
      }
    });

    it('half-open connections (partition: no FIN, no RST) are caught and replaced', async () => {
      const prefix = `${base}:half-open:`;
      const server = new URL(REDIS_URL);
      const proxy = await createTcpProxy(server.hostname, Number(server.port || 6379));
      const viaProxy = new URL(REDIS_URL);
      viaProxy.port = String(proxy.port);
      const writer = createRedisStore({ url: REDIS_URL, prefix });
      const reader = createRedisStore({
        url: viaProxy.toString(),
        prefix,
        commandTimeoutMs: 300,
        reconnect: { initialDelayMs: 20, pingMs: 200 },
      });
      try {
        const seen: number[] = [];
        const errors: Error[] = [];
        reader.subscribe(
          (s) => seen.push(s.version),
          (e) => errors.push(e),
        );
        await waitFor('listening', () => reader.listening);
        await writer.compareAndSet(0, sampleState(1));
        await waitFor('version 1', () => seen.includes(1));
        proxy.freeze();
        await writer.compareAndSet(1, sampleState(2));
        // The engine's poll: reads fail (timed out) until the command connection is replaced.
        let polled: QuiesceState | null = null;
        await waitFor('a read of version 2 on a fresh command connection', () => {
          reader.read().then(
            (s) => (polled = s),
            () => {},
          );
          return polled?.version === 2;
        });
        await waitFor(
          'the subscriber replaced',
          () => errors.some((e) => /PING/.test(e.message)) && reader.listening,
        );
        await writer.compareAndSet(2, sampleState(3));
        await waitFor('version 3 through the new subscription', () => seen.includes(3));
      } finally {
        await writer.close();
        await reader.close();
        await proxy.close();
      }
    });

    it('the store’s own command connection comes back after CLIENT KILL', async () => {
      const prefix = `${base}:cmd:`;
      const store = createRedisStore({ url: REDIS_URL, prefix });
      const admin = new Redis(REDIS_URL);
      try {
        expect((await store.read()).version).toBe(0);
        const list = (await admin.client('LIST')) as string;
        for (const line of list.split('\n').filter((l) => l.includes(`name=quiesce-store:${prefix} `))) {
          await admin.client('KILL', 'ID', /id=(\d+)/.exec(line)![1]!);
        }
        let state: QuiesceState | null = null;
        await waitFor('a read to succeed again', () => {
          store.read().then(
            (s) => (state = s),
            () => {},
          );
          return state !== null;
        });
        expect(state!.version).toBe(0);
      } finally {
        await store.close();
        admin.disconnect();
      }
    });

    it('a state that vanishes (flushed, evicted) is an outage, never a silent return to version 0', async () => {
      const prefix = `${base}:gone:`;
      const store = createRedisStore({ url: REDIS_URL, prefix });
      const admin = new Redis(REDIS_URL);
      try {
        await store.compareAndSet(0, sampleState(1));
        await store.compareAndSet(1, sampleState(2));
        await admin.del(`${prefix}state`);
        const err = await store.read().catch((e: unknown) => e);
        expect(isQuiesceError(err) && err.code === 'STORE_UNAVAILABLE').toBe(true);
        expect(String(err)).toMatch(/gone after version 2/);
        const cas = await store.compareAndSet(0, sampleState(1)).catch((e: unknown) => e);
        expect(isQuiesceError(cas) && cas.code === 'STORE_UNAVAILABLE').toBe(true);
        expect(await admin.exists(`${prefix}state`)).toBe(0);
        // A fresh handle (a restarted instance) starts over.
        const fresh = createRedisStore({ url: REDIS_URL, prefix });
        expect((await fresh.read()).version).toBe(0);
        await fresh.close();
      } finally {
        await store.close();
        admin.disconnect();
      }
    });

    it('an unreachable server is STORE_UNAVAILABLE within the command timeout, not a hang', async () => {
      const store = createRedisStore({
        url: 'redis://127.0.0.1:1',
        prefix: `${base}:none:`,
        commandTimeoutMs: 300,
      });
      const started = Date.now();
      const err = await store.read().catch((e: unknown) => e);
      expect(isQuiesceError(err) && err.code === 'STORE_UNAVAILABLE').toBe(true);
      expect(Date.now() - started).toBeLessThan(5000);
      await store.close();
    });

    it('bad options and bad input name the field', async () => {
      expect(() => createRedisStore({} as never)).toThrow(/url/);
      expect(() => createRedisStore({ url: REDIS_URL, client: {} } as never)).toThrow(/either client or url/);
      const store = createRedisStore({ url: REDIS_URL, prefix: `${base}:input:` });
      try {
        const err = await store.compareAndSet(0, { mode: 'nope' } as never).catch((e: unknown) => e);
        expect(isQuiesceError(err) && err.code === 'INVALID_INPUT').toBe(true);
        const reg = await store.registry
          .upsert({ id: 'x', startedAt: 'now', lastSeen: 'soon' } as never)
          .catch((e: unknown) => e);
        expect(isQuiesceError(reg) && reg.field === 'lastSeen').toBe(true);
      } finally {
        await store.close();
      }
    });
  });
});
