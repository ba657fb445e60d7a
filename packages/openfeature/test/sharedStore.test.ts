import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlagdProvider } from '@openfeature/flagd-provider';
import { InMemoryProvider, OpenFeature, type Provider } from '@openfeature/server-sdk';
import { type AuditEntry, createQuiesce, type Operation, type QuiesceEngine } from '@quiesce/core';
import { createPostgresStore, type PostgresStore } from '@quiesce/postgres';
import { POSTGRES_URL, serviceAvailable, uniqueName } from '@quiesce/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FlagFollower, followFlag } from '../src/index.js';

const ok = await serviceAvailable('postgres', '@quiesce/openfeature shared-store flag follower');
const WRITE: Operation = { surface: 'http', name: 'POST /orders', method: 'POST', path: '/orders' };

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: POSTGRES_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

interface Instance {
  engine: QuiesceEngine;
  store: PostgresStore;
  follower: FlagFollower;
}

/** Two engines sharing one PostgreSQL store (a fresh key), each following the flag through its own provider. */
async function twoInstances(
  schema: string,
  key: string,
  providers: [Provider, Provider],
): Promise<Instance[]> {
  const out: Instance[] = [];
  for (const [i, provider] of providers.entries()) {
    const domain = `${key}-${i}`;
    await OpenFeature.setProviderAndWait(domain, provider);
    const store = createPostgresStore({ connectionString: POSTGRES_URL, schema, key });
    const engine = createQuiesce({
      store,
      instanceId: `${key}-${i}`,
      soakMs: 20,
      heartbeatMs: 200,
      drainDeadlineMs: 5000,
    });
    await engine.start();
    const follower = followFlag({ engine, client: OpenFeature.getClient(domain), pollMs: 60_000 });
    await follower.start();
    out.push({ engine, store, follower });
  }
  return out;
}

async function closeAll(instances: Instance[]): Promise<void> {
  for (const { engine, store, follower } of instances) {
    follower.close();
    await engine.close();
    await store.close();
  }
}

const audits = async (instances: Instance[], action: AuditEntry['action']) =>
  (await Promise.all(instances.map((i) => i.engine.audit()))).flat().filter((e) => e.action === action);

describe.skipIf(!ok)('flag flips drive one window across two engines sharing a PostgreSQL store', () => {
  const schema = uniqueName('qof');
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quiesce-openfeature-'));
  });
  afterAll(async () => {
    await OpenFeature.close();
    await admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await rm(dir, { recursive: true, force: true });
  });

  it('in-memory provider: on → one window, both refuse; off → writes back on both', async () => {
    const config = (on: boolean) => ({
      read_only: { variants: { on: true, off: false }, defaultVariant: on ? 'on' : 'off', disabled: false },
    });
    const a = new InMemoryProvider(config(false));
    const b = new InMemoryProvider(config(false));
    const instances = await twoInstances(schema, 'inmemory', [a, b]);
    const [ia, ib] = instances as [Instance, Instance];
    try {
      // Both providers learn of the flip in the same tick: the two followers race to begin.
      a.putConfiguration(config(true));
      b.putConfiguration(config(true));
      await expect.poll(() => ia.engine.decide(WRITE).outcome).toBe('refuse');
      await expect.poll(() => ib.engine.decide(WRITE).outcome).toBe('refuse');
      await expect.poll(() => ib.follower.status().applied).toBe(true);
      await expect.poll(() => ia.follower.status().applied).toBe(true);
      expect(ia.engine.window?.id).toBe(ib.engine.window?.id);
      const begins = await audits(instances, 'begin');
      expect(begins).toHaveLength(1);
      expect(begins[0]!.actor).toBe('openfeature:read_only@in-memory');
      await ia.engine.waitForPhase('frozen', { timeoutMs: 10_000 });

      // Off reaches one instance first: it ends the window; the other, told later, finds nothing to end.
      b.putConfiguration(config(false));
      await expect.poll(() => ib.engine.decide(WRITE).outcome).toBe('proceed');
      await expect.poll(() => ia.engine.decide(WRITE).outcome).toBe('proceed');
      a.putConfiguration(config(false));
      await expect.poll(() => ia.follower.status().applied).toBe(false);
      expect(await audits(instances, 'end')).toHaveLength(1);
      await ia.engine.waitForPhase('closed', { timeoutMs: 10_000 });
    } finally {
      await closeAll(instances);
    }
  });

  it('a follower whose provider lags does not undo the window on its next evaluation', async () => {
    const config = (on: boolean) => ({
      read_only: { variants: { on: true, off: false }, defaultVariant: on ? 'on' : 'off', disabled: false },
    });
    const a = new InMemoryProvider(config(false));
    const b = new InMemoryProvider(config(false));
    const instances = await twoInstances(schema, 'lag', [a, b]);
    const [ia, ib] = instances as [Instance, Instance];
    try {
      a.putConfiguration(config(true)); // b's provider has not heard of it yet
      await expect.poll(() => ib.engine.decide(WRITE).outcome).toBe('refuse');
      const w = ia.engine.window!;
      await ib.follower.sync(); // b's safety-net evaluation still reads "off"
      expect(ib.follower.status()).toMatchObject({ flag: false, applied: false });
      expect(ib.engine.window).toMatchObject({ id: w.id, phase: expect.stringMatching(/freezing|frozen/) });
      expect(ia.engine.readOnly && ib.engine.readOnly).toBe(true);
      b.putConfiguration(config(true)); // b catches up: nothing to do, no second window
      await expect.poll(() => ib.follower.status().applied).toBe(true);
      expect(await audits(instances, 'begin')).toHaveLength(1);
      expect(await audits(instances, 'end')).toHaveLength(0);
      a.putConfiguration(config(false));
      b.putConfiguration(config(false));
      await expect.poll(() => ia.engine.readOnly || ib.engine.readOnly).toBe(false);
      await expect.poll(() => ia.follower.status().applied || ib.follower.status().applied).toBe(false);
      expect(await audits(instances, 'end')).toHaveLength(1);
    } finally {
      await closeAll(instances);
    }
  });

  it('flagd provider, in-process resolver reading a flag file offline: flips begin and end the window', async () => {
    const file = join(dir, 'flags.json');
    const write = (on: boolean) =>
      writeFile(
        file,
        JSON.stringify({
          flags: {
            read_only: {
              state: 'ENABLED',
              variants: { on: true, off: false },
              defaultVariant: on ? 'on' : 'off',
              metadata: {
                message: 'Orders are read-only during the database upgrade.',
                contact: '#ops-oncall',
                rollbackPlan: 'switch the app back to the old primary',
              },
            },
          },
        }),
      );
    await write(false);
    const provider = () => new FlagdProvider({ resolverType: 'in-process', offlineFlagSourcePath: file });
    const instances = await twoInstances(schema, 'flagd', [provider(), provider()]);
    const [ia, ib] = instances as [Instance, Instance];
    try {
      expect(ia.follower.status()).toMatchObject({ provider: 'flagd', flag: false, applied: false });
      // flagd's file source notices the change on its next stat poll (fs.watchFile, about every 5 s).
      await write(true);
      await expect
        .poll(() => ia.engine.decide(WRITE).outcome, { timeout: 20_000, interval: 100 })
        .toBe('refuse');
      await expect
        .poll(() => ib.engine.decide(WRITE).outcome, { timeout: 20_000, interval: 100 })
        .toBe('refuse');
      await expect
        .poll(() => ia.follower.status().applied && ib.follower.status().applied, { timeout: 20_000 })
        .toBe(true);
      expect(ia.engine.window).toMatchObject({
        message: 'Orders are read-only during the database upgrade.',
        contact: '#ops-oncall',
        rollbackPlan: 'switch the app back to the old primary',
        openedBy: 'openfeature:read_only@flagd',
      });
      expect(await audits(instances, 'begin')).toHaveLength(1);

      await write(false);
      await expect
        .poll(() => ia.engine.decide(WRITE).outcome, { timeout: 20_000, interval: 100 })
        .toBe('proceed');
      await expect
        .poll(() => ib.engine.decide(WRITE).outcome, { timeout: 20_000, interval: 100 })
        .toBe('proceed');
      await expect
        .poll(() => !ia.follower.status().applied && !ib.follower.status().applied, { timeout: 20_000 })
        .toBe(true);
      const ends = await audits(instances, 'end');
      expect(ends).toHaveLength(1);
      expect(ends[0]!.actor).toBe('openfeature:read_only@flagd');
    } finally {
      await closeAll(instances);
    }
  }, 60_000);
});
