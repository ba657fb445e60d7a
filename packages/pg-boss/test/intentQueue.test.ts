import { type IntentHandler, isQuiesceError, type ReplayProgress } from '@quiesce/core';
import { waitFor } from '@quiesce/testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPgBossIntentQueue, type PgBossIntentQueue } from '../src/index.js';
import { type Backend, describeEachBackend } from './backends.js';

async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

const handlers = (entries: Record<string, IntentHandler>) => new Map(Object.entries(entries));

describeEachBackend('pg-boss intent queue on %s', (_name, make) => {
  let backend: Backend;
  let queue: PgBossIntentQueue;

  let n = 0;
  let name = '';
  beforeAll(async () => {
    backend = await make();
  }, 30_000);
  // Each test has a pg-boss queue (and so intent rows) of its own.
  beforeEach(async () => {
    name = `quiesce.intents.t${++n}`;
    queue = await backend.open({ queue: name });
  }, 30_000);
  afterAll(() => backend?.cleanup(), 30_000);

  it('commits an intent with its pg-boss job; same key + same payload is the same intent; another payload conflicts', async () => {
    const first = await queue.enqueue({
      name: 'orders.create',
      idempotencyKey: 'order-1',
      payload: { sku: 'A-1', qty: 2, meta: { b: 1, a: 2 } },
      principal: 'user:7',
      surface: 'http',
      windowId: 'win_1',
    });
    expect(first.created).toBe(true);
    expect(first.intent).toMatchObject({
      name: 'orders.create',
      status: 'queued',
      attempts: 0,
      principal: 'user:7',
      surface: 'http',
      windowId: 'win_1',
    });
    expect(first.intent.id).toMatch(/^int_[0-9a-f-]{36}$/);

    // Key order does not matter: the payload is hashed as canonical JSON.
    const again = await queue.enqueue({
      name: 'orders.create',
      idempotencyKey: 'order-1',
      payload: { meta: { a: 2, b: 1 }, qty: 2, sku: 'A-1' },
    });
    expect(again).toMatchObject({ created: false, intent: { id: first.intent.id } });

    const err = await rejection(
      queue.enqueue({ name: 'orders.create', idempotencyKey: 'order-1', payload: { sku: 'A-1', qty: 3 } }),
    );
    expect(isQuiesceError(err)).toBe(true);
    expect(err).toMatchObject({
      code: 'IDEMPOTENCY_CONFLICT',
      status: 422,
      field: 'idempotencyKey',
      details: { intentId: first.intent.id },
    });

    // Keys are scoped by intent name.
    const other = await queue.enqueue({
      name: 'orders.cancel',
      idempotencyKey: 'order-1',
      payload: { id: 1 },
    });
    expect(other.created).toBe(true);
    expect(other.intent.id).not.toBe(first.intent.id);

    expect(await queue.get(first.intent.id)).toMatchObject({
      payload: { sku: 'A-1', qty: 2, meta: { a: 2, b: 1 } },
    });
    expect(await queue.get('int_00000000-0000-0000-0000-000000000000')).toBeNull();
    expect(await queue.get('not-an-id')).toBeNull();

    const [job] = await queue.boss.findJobs(name, { id: first.intent.id.slice(4) });
    expect(job).toMatchObject({ state: 'created', data: { intent: first.intent.id } });

    const listed = await queue.list({ status: 'queued' });
    expect(listed.map((i) => i.id)).toEqual([first.intent.id, other.intent.id]);
    expect((await queue.list({ limit: 1 })).map((i) => i.id)).toEqual([other.intent.id]);
    const stats = await queue.stats();
    expect(stats).toMatchObject({ depth: 2, applied: 0, failed: 0, replaying: 0 });
    expect(stats.oldestAgeMs).toBeGreaterThanOrEqual(0);
  });

  it('commits exactly one job per intent on each enqueue path (prepared, unprepared, transaction), none for a repeated key', async () => {
    // Quotes, backslashes, dollar quotes and non-ASCII: the prepared path on PGlite sends them as literals.
    const key = `it's \\ a "key" $$ E'\\'' ü`;
    const payload = { note: `O'Brien \\n \\' $q$ 🙂`, path: 'C:\\temp\\', nested: [{ quote: "'" }] };
    // A queue with pg-boss `notify` makes pg-boss's job insert a WITH statement, which the one-statement
    // enqueue does not embed: that queue enqueues in a transaction.
    const notifying = `${name}.notify`;
    await queue.boss.createQueue(notifying, { notify: true });
    expect((await queue.boss.getQueue(notifying))?.notify).toBe(true);
    const paths: Array<[string, PgBossIntentQueue]> = [
      ['prepared', queue],
      ['unprepared', await backend.open({ queue: `${name}.plain`, prepareStatements: false })],
      ['transaction', await backend.open({ queue: notifying })],
    ];
    for (const [path, q] of paths) {
      const first = await q.enqueue({
        name: 'orders.create',
        idempotencyKey: key,
        payload,
        principal: "user:'7'",
      });
      expect(first.created, path).toBe(true);
      const again = await q.enqueue({ name: 'orders.create', idempotencyKey: key, payload });
      expect(again, path).toMatchObject({
        created: false,
        intent: { id: first.intent.id, principal: "user:'7'" },
      });
      expect(
        await rejection(q.enqueue({ name: 'orders.create', idempotencyKey: key, payload: { other: 1 } })),
        path,
      ).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
      expect(await q.get(first.intent.id), path).toMatchObject({
        idempotencyKey: key,
        payload,
        status: 'queued',
      });
      const second = await q.enqueue({ name: 'orders.create', idempotencyKey: 'plain', payload: 1 });
      const queueName = path === 'prepared' ? name : path === 'unprepared' ? `${name}.plain` : notifying;
      const jobs = await q.boss.findJobs(queueName);
      expect(jobs.map((j) => j.id).sort(), path).toEqual(
        [first.intent.id.slice(4), second.intent.id.slice(4)].sort(),
      );
    }
    if (backend.name === 'pglite') {
      // PGlite is one session: a DEALLOCATE ALL from anyone drops the prepared enqueue; it comes back.
      await backend.sql('DEALLOCATE ALL');
      expect(
        (await queue.enqueue({ name: 'orders.create', idempotencyKey: 'after', payload: 2 })).created,
      ).toBe(true);
      expect(await queue.boss.findJobs(name)).toHaveLength(3);
    }
  });

  it('creates one intent when many requests race with the same key', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, () =>
        queue.enqueue({ name: 'race', idempotencyKey: 'same', payload: { n: 1 } }),
      ),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.intent.id)).size).toBe(1);
    expect(await queue.boss.findJobs(name, { id: results[0]!.intent.id.slice(4) })).toHaveLength(1);
  });

  it('rejects bad input with an error naming the field', async () => {
    expect(await rejection(queue.enqueue({ name: '', idempotencyKey: 'k', payload: 1 }))).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'name',
    });
    expect(await rejection(queue.enqueue({ name: 'n', idempotencyKey: '', payload: 1 }))).toMatchObject({
      code: 'IDEMPOTENCY_KEY_REQUIRED',
      field: 'idempotencyKey',
    });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(
      await rejection(queue.enqueue({ name: 'n', idempotencyKey: 'k', payload: circular })),
    ).toMatchObject({ code: 'INVALID_INPUT', field: 'payload' });
    expect(
      await rejection(
        queue.enqueue({ name: 'n', idempotencyKey: 'k', payload: 'x'.repeat(1024 * 1024 + 1) }),
      ),
    ).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      field: 'payload',
    });
    expect(
      await rejection(queue.enqueue({ name: 'n', idempotencyKey: 'k', payload: 1, surface: 'fax' as never })),
    ).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'surface',
    });
    expect(await rejection(queue.replay({ handlers: {} as never }))).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'handlers',
    });
    expect(await rejection(queue.replay({ handlers: new Map(), concurrency: 0 }))).toMatchObject({
      field: 'concurrency',
    });
    expect(await rejection(queue.list({ status: 'done' as never }))).toMatchObject({ field: 'status' });
    expect(
      await rejection(createPgBossIntentQueue({ boss: queue.boss, schema: 'Bad-Schema' })),
    ).toMatchObject({ field: 'schema' });
    expect(await rejection(createPgBossIntentQueue({ boss: queue.boss, leaseMs: 0 }))).toMatchObject({
      field: 'leaseMs',
    });
    expect(
      await rejection(createPgBossIntentQueue({ boss: queue.boss, dataDir: '/tmp/x' } as never)),
    ).toMatchObject({ field: 'dataDir' });
    expect(await queue.stats()).toMatchObject({ depth: 0 });
  });

  it('replays through handlers with bounded concurrency, retries with backoff and a dead letter', async () => {
    for (let i = 0; i < 12; i++)
      await queue.enqueue({ name: 'ok', idempotencyKey: `ok-${i}`, payload: { i } });
    const flaky = await queue.enqueue({ name: 'flaky', idempotencyKey: 'f', payload: {} });
    const poison = await queue.enqueue({ name: 'poison', idempotencyKey: 'p', payload: {} });
    const orphan = await queue.enqueue({ name: 'nobody.handles.this', idempotencyKey: 'o', payload: {} });

    let inFlight = 0;
    let maxInFlight = 0;
    // The first handler waits until a second runs beside it: concurrency shown without timing.
    let overlapped!: () => void;
    const overlap = new Promise<void>((r) => (overlapped = r));
    const seen: Array<{ key: string; attempt: number; i: unknown }> = [];
    let flakyCalls = 0;
    const progress: ReplayProgress[] = [];
    const report = await queue.replay({
      concurrency: 3,
      maxAttempts: 3,
      backoffMs: 5,
      onProgress: (p) => progress.push(p),
      handlers: handlers({
        ok: async (payload, ctx) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          if (inFlight >= 2) overlapped();
          await overlap;
          await new Promise((r) => setImmediate(r));
          inFlight--;
          seen.push({ key: ctx.idempotencyKey, attempt: ctx.attempt, i: payload.i });
        },
        flaky: () => {
          flakyCalls++;
          if (flakyCalls < 3) throw new Error(`flaky ${flakyCalls}`);
        },
        poison: () => {
          throw new Error('bad payload');
        },
      }),
    });

    expect(report).toEqual({ done: 15, total: 15, applied: 13, failed: 2, paused: false });
    expect(maxInFlight).toBeGreaterThan(1);
    expect(maxInFlight).toBeLessThanOrEqual(3);
    expect(seen.map((s) => s.key).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `ok-${i}`).sort());
    expect(seen.every((s) => s.attempt === 1 && s.key === `ok-${s.i}`)).toBe(true);
    expect(progress[0]).toEqual({ done: 0, total: 15, applied: 0, failed: 0 });
    expect(progress.at(-1)).toEqual({ done: 15, total: 15, applied: 13, failed: 2 });
    expect(progress.map((p) => p.done)).toEqual([...progress.map((p) => p.done)].sort((a, b) => a - b));

    expect(await queue.get(flaky.intent.id)).toMatchObject({
      status: 'applied',
      attempts: 3,
      lastError: null,
    });
    expect((await queue.get(flaky.intent.id))!.appliedAt).not.toBeNull();
    expect(await queue.get(poison.intent.id)).toMatchObject({
      status: 'failed',
      attempts: 3,
      lastError: 'bad payload',
      appliedAt: null,
    });
    expect(await queue.get(orphan.intent.id)).toMatchObject({
      status: 'failed',
      lastError: expect.stringContaining('no replay handler'),
    });
    // The dead letter is pg-boss's failed state too; applied intents completed their jobs.
    const [poisonJob] = await queue.boss.findJobs(name, { id: poison.intent.id.slice(4) });
    expect(poisonJob?.state).toBe('failed');
    const [flakyJob] = await queue.boss.findJobs(name, { id: flaky.intent.id.slice(4) });
    expect(flakyJob?.state).toBe('completed');
    expect(await queue.stats()).toMatchObject({ depth: 0, oldestAgeMs: null, replaying: 0, failed: 2 });

    // Out of the dead letter again, once the handler is fixed.
    expect(await queue.requeue(poison.intent.id)).toMatchObject({ status: 'queued', attempts: 0 });
    expect(await queue.requeue(flaky.intent.id)).toMatchObject({ status: 'applied' }); // not failed: unchanged
    const again = await queue.replay({ handlers: handlers({ poison: () => {} }) });
    expect(again).toMatchObject({ done: 1, applied: 1, failed: 0 });
    expect(await queue.get(poison.intent.id)).toMatchObject({ status: 'applied', attempts: 1 });
  });

  it('a new window (abort) pauses the backfill; the next replay finishes it, applying each intent once', async () => {
    for (let i = 0; i < 10; i++)
      await queue.enqueue({ name: 'slow', idempotencyKey: `s-${i}`, payload: { i } });
    const applied: string[] = [];
    const ctrl = new AbortController();
    const slow: IntentHandler = async (_p, ctx) => {
      await new Promise((r) => setImmediate(r));
      applied.push(ctx.idempotencyKey);
      if (applied.length === 3) ctrl.abort();
    };
    const first = await queue.replay({ concurrency: 2, signal: ctrl.signal, handlers: handlers({ slow }) });
    expect(first.paused).toBe(true);
    expect(first.done).toBeLessThan(10);
    expect(first.total).toBe(10);
    const stats = await queue.stats();
    expect(stats.replaying).toBe(0); // claims handed back, not left to lapse
    expect(stats.depth).toBe(10 - first.done);

    const second = await queue.replay({ concurrency: 2, handlers: handlers({ slow }) });
    expect(second).toMatchObject({ paused: false, applied: 10 - first.done });
    expect(applied.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `s-${i}`).sort());
  });

  it('replays intents whose pg-boss jobs were deleted, cancelled or completed from outside', async () => {
    const ids: string[] = [];
    for (const key of ['deleted', 'cancelled', 'completed', 'untouched']) {
      ids.push(
        (await queue.enqueue({ name: 'repair', idempotencyKey: key, payload: { key } })).intent.id.slice(4),
      );
    }
    await queue.boss.deleteJob(name, ids[0]!);
    await queue.boss.cancel(name, ids[1]!);
    await queue.boss.complete(name, ids[2]!, null, { includeQueued: true });
    const seen: string[] = [];
    const report = await queue.replay({
      handlers: handlers({ repair: (_p, ctx) => void seen.push(ctx.idempotencyKey) }),
    });
    expect(report).toMatchObject({ applied: 4, failed: 0, paused: false });
    expect(seen.sort()).toEqual(['cancelled', 'completed', 'deleted', 'untouched']);
  });

  it('two replayers share one queue; each intent is applied once', async () => {
    const other = await backend.open({ queue: name });
    for (let i = 0; i < 20; i++)
      await queue.enqueue({ name: 'shared', idempotencyKey: `sh-${i}`, payload: { i } });
    const calls: string[] = [];
    const shared: IntentHandler = async (_p, ctx) => {
      await new Promise((r) => setImmediate(r));
      calls.push(ctx.idempotencyKey);
    };
    const [a, b] = await Promise.all([
      queue.replay({ concurrency: 2, handlers: handlers({ shared }) }),
      other.replay({ concurrency: 2, handlers: handlers({ shared }) }),
    ]);
    expect(a.applied + b.applied).toBe(20);
    expect(calls).toHaveLength(20);
    expect(new Set(calls).size).toBe(20);
  });

  it('keeps a finished key for the dedupe horizon, then lets it be used again', async () => {
    const short = await backend.open({ dedupeHorizonMs: 1, queue: 'quiesce.intents.short' });
    const first = await short.enqueue({ name: 'h', idempotencyKey: 'horizon', payload: { v: 1 } });
    // Within the horizon (the default queue keeps 7 days) a finished intent still answers for its key.
    await short.replay({ handlers: handlers({ h: () => {} }) });
    // Once the 1 ms horizon has passed, purge (replay purges too, at its end) drops it.
    await waitFor('the finished intent to be purged after its 1 ms horizon', async () => {
      await short.purge();
      return (await short.get(first.intent.id)) === null;
    });
    const reused = await short.enqueue({ name: 'h', idempotencyKey: 'horizon', payload: { v: 2 } });
    expect(reused.created).toBe(true);
    expect(reused.intent.id).not.toBe(first.intent.id);

    const kept = await queue.enqueue({ name: 'h2', idempotencyKey: 'kept', payload: { v: 1 } });
    await queue.replay({ handlers: handlers({ h2: () => {} }) });
    expect(await queue.purge()).toBe(0);
    expect(await queue.enqueue({ name: 'h2', idempotencyKey: 'kept', payload: { v: 1 } })).toMatchObject({
      created: false,
      intent: { id: kept.intent.id, status: 'applied' },
    });
  });
});
