import { isQuiesceError } from '@quiesce/core';
import {
  REDIS_URL,
  runStoreContractSuite,
  sampleState,
  serviceAvailable,
  uniqueName,
  waitFor,
} from '@quiesce/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisStore } from '../src/index.js';
import { dropPrefix, terminateConnections } from './admin.js';

const ok = await serviceAvailable('redis', '@quiesce/redis store');

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
      connection: {
        url: REDIS_URL,
        defaultPort: 6379,
        openVia(url) {
          return createRedisStore({
            url,
            prefix,
            commandTimeoutMs: 300,
            reconnect: { initialDelayMs: 20, pingMs: 200 },
          });
        },
        terminate: terminateConnections,
      },
      dispose: () => dropPrefix(prefix),
    };
  });

  describe('beyond the contract', () => {
    const base = uniqueName('qrs_store');
    afterAll(() => dropPrefix(base));

    it("on an app's client: pub/sub runs on a duplicate, and close() leaves the client to the app", async () => {
      const prefix = `${base}:app:`;
      const writer = createRedisStore({ url: REDIS_URL, prefix });
      const app = new Redis(REDIS_URL, { connectionName: 'app-client' });
      const reader = createRedisStore({ client: app, prefix });
      try {
        const seen: number[] = [];
        reader.subscribe((s) => seen.push(s.version));
        await waitFor('listening', () => reader.listening);
        await writer.compareAndSet(0, sampleState(1));
        await waitFor('version 1 at the store on the app client', () => seen.includes(1));
        await reader.close();
        expect(app.status).toBe('ready');
        expect(await app.ping()).toBe('PONG');
      } finally {
        await writer.close();
        await reader.close();
        app.disconnect();
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
      // A hang would run into the test's own timeout.
      const err = await store.read().catch((e: unknown) => e);
      expect(isQuiesceError(err) && err.code === 'STORE_UNAVAILABLE').toBe(true);
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
