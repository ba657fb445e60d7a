import { canonicalJson } from '@quiesce/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PgBossIntentQueue } from '../src/index.js';
import { type Backend, describeEachBackend } from './backends.js';

const hasNul = (v: unknown): boolean =>
  typeof v === 'string'
    ? v.includes('\u0000')
    : Array.isArray(v)
      ? v.some(hasNul)
      : v !== null && typeof v === 'object'
        ? Object.entries(v).some(([k, x]) => k.includes('\u0000') || hasNul(x))
        : false;

const payloads = fc.oneof(
  fc.constantFrom<unknown>({ a: 1, b: 2 }, { b: 2, a: 1 }, { a: 1, b: 3 }, [1, 2], 'text', null, {
    note: 'nul\u0000byte',
  }),
  fc.jsonValue({ maxDepth: 2 }),
);
const ops = fc.array(
  fc.record({
    name: fc.constantFrom('orders.create', 'orders.cancel'),
    key: fc.constantFrom('k1', 'k2', 'k3'),
    payload: payloads,
  }),
  {
    minLength: 1,
    maxLength: 10,
  },
);

describeEachBackend('idempotency on %s (property)', (_name, make) => {
  let backend: Backend;
  let queue: PgBossIntentQueue;
  beforeAll(async () => {
    backend = await make();
    queue = await backend.open();
  }, 30_000);
  afterAll(() => backend?.cleanup(), 30_000);

  it('behaves like a map from (name, key) to the first payload: same → same intent, other → conflict', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(ops, async (sequence) => {
        run++;
        const model = new Map<string, { id: string; canonical: string }>();
        for (const op of sequence) {
          const key = `run${run}-${op.key}`;
          const slot = `${op.name}\u0000${key}`;
          const outcome = await queue
            .enqueue({ name: op.name, idempotencyKey: key, payload: op.payload })
            .then(
              (r) => ({ ok: true as const, r }),
              (err) => ({ ok: false as const, err }),
            );
          if (hasNul(op.payload)) {
            expect(outcome).toMatchObject({
              ok: false,
              err: { code: 'INVALID_INPUT', field: expect.stringMatching(/^payload/) },
            });
            continue;
          }
          const known = model.get(slot);
          if (!known) {
            expect(outcome.ok && outcome.r.created).toBe(true);
            if (outcome.ok)
              model.set(slot, { id: outcome.r.intent.id, canonical: canonicalJson(op.payload) });
          } else if (known.canonical === canonicalJson(op.payload)) {
            expect(outcome).toMatchObject({ ok: true, r: { created: false, intent: { id: known.id } } });
          } else {
            expect(outcome).toMatchObject({
              ok: false,
              err: { code: 'IDEMPOTENCY_CONFLICT', details: { intentId: known.id } },
            });
          }
        }
        const ids = [...model.values()].map((m) => m.id);
        expect(new Set(ids).size).toBe(ids.length);
      }),
      { numRuns: 25 },
    );
  }, 60_000);
});
