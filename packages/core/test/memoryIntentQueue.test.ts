import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QuiesceError } from '../src/errors.js';
import { canonicalJson, deriveIdempotencyKey } from '../src/intentQueue.js';
import { createMemoryIntentQueue } from '../src/memoryIntentQueue.js';

describe('memory intent queue', () => {
  it('same key + same payload → the same intent; different payload → conflict', async () => {
    const q = createMemoryIntentQueue();
    const a = await q.enqueue({ name: 'orders.create', idempotencyKey: 'k1', payload: { a: 1, b: [1, 2] } });
    const b = await q.enqueue({ name: 'orders.create', idempotencyKey: 'k1', payload: { b: [1, 2], a: 1 } });
    expect(a.created).toBe(true);
    expect(b).toMatchObject({ created: false, intent: { id: a.intent.id } });
    const err = await q
      .enqueue({ name: 'orders.create', idempotencyKey: 'k1', payload: { a: 2 } })
      .catch((e) => e);
    expect(err).toBeInstanceOf(QuiesceError);
    expect(err.code).toBe('IDEMPOTENCY_CONFLICT');
    expect((await q.stats()).depth).toBe(1);
  });

  it('replays through handlers with retries and a dead-letter state', async () => {
    const q = createMemoryIntentQueue();
    await q.enqueue({ name: 'ok', idempotencyKey: '1', payload: 1 });
    await q.enqueue({ name: 'flaky', idempotencyKey: '2', payload: 2 });
    const { intent: bad } = await q.enqueue({ name: 'broken', idempotencyKey: '3', payload: 3 });
    await q.enqueue({ name: 'unknown', idempotencyKey: '4', payload: 4 });
    let flaky = 0;
    const applied: unknown[] = [];
    const progress: number[] = [];
    const report = await q.replay({
      handlers: new Map<string, (p: unknown) => void>([
        ['ok', (p) => void applied.push(p)],
        [
          'flaky',
          (p) => {
            if (++flaky < 3) throw new Error('try again');
            applied.push(p);
          },
        ],
        [
          'broken',
          () => {
            throw new Error('always');
          },
        ],
      ]),
      maxAttempts: 3,
      backoffMs: 1,
      onProgress: (p) => progress.push(p.done),
    });
    expect(report).toMatchObject({ total: 4, done: 4, applied: 2, failed: 2, paused: false });
    expect(applied.sort()).toEqual([1, 2]);
    expect(await q.get(bad.id)).toMatchObject({ status: 'failed', attempts: 3, lastError: 'always' });
    expect(progress.at(-1)).toBe(4);
    expect(await q.stats()).toMatchObject({ depth: 0, applied: 2, failed: 2 });
  });

  it('an aborted replay pauses and the next one resumes the rest', async () => {
    const q = createMemoryIntentQueue();
    for (let i = 0; i < 10; i++) await q.enqueue({ name: 'n', idempotencyKey: String(i), payload: i });
    const ctrl = new AbortController();
    const seen: number[] = [];
    const r1 = await q.replay({
      handlers: new Map([
        [
          'n',
          (p: number) => {
            seen.push(p);
            if (seen.length === 3) ctrl.abort();
          },
        ],
      ]),
      concurrency: 1,
      signal: ctrl.signal,
    });
    expect(r1.paused).toBe(true);
    const r2 = await q.replay({ handlers: new Map([['n', (p: number) => void seen.push(p)]]) });
    expect(r2.applied + r1.applied).toBe(10);
    expect(new Set(seen).size).toBe(10);
    expect(seen).toHaveLength(10);
  });

  it('property: canonical JSON ignores key order; derived keys are stable', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        return (
          canonicalJson(obj) === canonicalJson(reversed) &&
          deriveIdempotencyKey('n', obj) === deriveIdempotencyKey('n', reversed)
        );
      }),
    );
  });

  it('property: idempotency holds for any sequence of enqueues', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.constantFrom(1, 2)), { maxLength: 30 }),
        async (ops) => {
          const q = createMemoryIntentQueue();
          const first = new Map<string, number>();
          for (const [key, payload] of ops) {
            const r = await q
              .enqueue({ name: 'n', idempotencyKey: key, payload })
              .catch((e: QuiesceError) => e);
            const known = first.get(key);
            if (known === undefined) {
              first.set(key, payload);
              if (r instanceof Error || !r.created) return false;
            } else if (known === payload) {
              if (r instanceof Error || r.created) return false;
            } else if (!(r instanceof QuiesceError && r.code === 'IDEMPOTENCY_CONFLICT')) return false;
          }
          return (await q.stats()).depth === first.size;
        },
      ),
    );
  });
});
