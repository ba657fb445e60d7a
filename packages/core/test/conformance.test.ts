import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createBypassToken } from '../src/bypass.js';
import { createQuiesce } from '../src/engine.js';
import type { QuiesceError } from '../src/errors.js';
import { createFileStore } from '../src/fileStore.js';
import { renderError } from '../src/http.js';
import type { IntentQueue } from '../src/intentQueue.js';
import { createMemoryIntentQueue } from '../src/memoryIntentQueue.js';
import { createMemoryStore } from '../src/memoryStore.js';
import type { Logger } from '../src/notifier.js';
import type { Operation } from '../src/operation.js';
import type { StateStore } from '../src/store.js';
import { INITIAL_STATE, parseState } from '../src/window.js';

const dir = mkdtempSync(join(tmpdir(), 'quiesce-conform-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const stores: Array<[string, () => StateStore]> = [
  ['memory store', () => createMemoryStore()],
  ['file store', () => createFileStore({ path: join(dir, `state-${files++}.json`) })],
];
const inMinutes = (m: number) => new Date(Date.now() + m * 60_000);

async function rejection(p: Promise<unknown>): Promise<QuiesceError> {
  try {
    await p;
  } catch (err) {
    return err as QuiesceError;
  }
  throw new Error('expected a rejection');
}

describe.each(stores)('times and text at the engine boundary (%s)', (_name, makeStore) => {
  it('begin accepts a Date and RFC 3339 with any offset; refuses every loose date naming the field', async () => {
    const engine = createQuiesce({ store: makeStore(), soakMs: 0 });
    const before = await engine.status();
    for (const endsAt of [
      '2030',
      '12/25/2030',
      'Mon, 01 Jan 2035 00:00:00 GMT',
      'March 7, 2035',
      '2035-01-01T00:00:00',
      new Date(Number.NaN),
      2_000_000_000_000,
    ]) {
      const e = await rejection(engine.begin({ reason: 'r', message: 'm', endsAt: endsAt as string }));
      expect(e).toMatchObject({ code: 'INVALID_INPUT', field: 'endsAt' });
      expect(e.message).toContain('e.g. 2035-01-01T09:30:00Z');
      const s = await rejection(engine.schedule({ reason: 'r', message: 'm', startsAt: endsAt as string }));
      expect(s).toMatchObject({ code: 'INVALID_INPUT', field: 'startsAt' });
    }
    expect((await engine.status()).state.version).toBe(before.state.version);
    expect(await engine.audit()).toEqual([]);
    const end = inMinutes(30);
    const w = await engine.begin({ reason: 'r', message: 'm', endsAt: end });
    expect(w.endsAt).toBe(end.toISOString());
    const local = new Date(end.getTime() + 90 * 60_000 + 2 * 3600_000).toISOString().slice(0, 19);
    const x = await engine.extend({ endsAt: `${local}+02:00` });
    expect(x.endsAt).toBe(new Date(end.getTime() + 90 * 60_000).toISOString().replace(/\.\d+Z$/, '.000Z'));
    const e = await rejection(engine.extend({ endsAt: 'March 7, 2035' }));
    expect(e).toMatchObject({ code: 'INVALID_INPUT', field: 'endsAt' });
    await engine.close();
  });

  it('NUL or a lone surrogate in reason/message/contact is 400 naming the field; nothing stored', async () => {
    const store = makeStore();
    const engine = createQuiesce({ store, soakMs: 0 });
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ reason: 'a\u0000b', message: 'm' }, 'reason'],
      [{ reason: 'r', message: 'back \ud800soon' }, 'message'],
      [{ reason: 'r', message: 'm', contact: '\udc00' }, 'contact'],
      [{ reason: 'r', message: 'm', rollbackPlan: 'x\u0000' }, 'rollbackPlan'],
      [{ reason: 'r', message: 'm', scope: ['http', '\ud800'] }, 'scope.1'],
      [{ reason: 'r', message: 'm', actor: 'al\u0000ice' }, 'actor'],
    ];
    for (const [input, field] of cases) {
      const e = await rejection(engine.begin(input as never));
      expect(e, field).toMatchObject({ code: 'INVALID_INPUT', status: 400, field });
      expect(e.message).toMatch(/U\+0000|surrogate/);
    }
    expect((await store.read())?.version ?? 0).toBe(0);
    await engine.begin({ reason: 'r', message: 'm' });
    const e = await rejection(engine.extend({ message: 'x\ud800' }));
    expect(e).toMatchObject({ code: 'INVALID_INPUT', field: 'message' });
    const e2 = await rejection(engine.end({ reason: 'oops\u0000' }));
    expect(e2).toMatchObject({ code: 'INVALID_INPUT', field: 'reason' });
    expect((await engine.status()).state.mode).toBe('read-only');
    expect((await engine.audit()).map((a) => a.action)).not.toContain('end');
    await engine.close();
  });
});

describe('store payloads', () => {
  it('a state payload with a loose time is refused naming the field (a store never feeds one to the engine)', () => {
    for (const updatedAt of ['2035-01-01T00:00:00', 'March 7, 2035', '2030']) {
      expect(() => parseState({ ...INITIAL_STATE, updatedAt })).toThrow(
        /state payload: updatedAt: must be an RFC 3339/,
      );
    }
    expect(parseState({ ...INITIAL_STATE, updatedAt: '2035-01-01T01:00:00+01:00' }).updatedAt).toBe(
      '2035-01-01T00:00:00.000Z',
    );
  });
});

describe('bypass tokens never leave the decision', () => {
  it('decision events carry the operation with its token redacted; logs, audit and status never hold it', async () => {
    const lines: string[] = [];
    const logger: Logger = {
      debug: (m, f) => lines.push(m + JSON.stringify(f ?? {})),
      info: (m, f) => lines.push(m + JSON.stringify(f ?? {})),
      warn: (m, f) => lines.push(m + JSON.stringify(f ?? {})),
      error: (m, f) => lines.push(m + JSON.stringify(f ?? {})),
    };
    const engine = createQuiesce({ bypass: { secret: 'bypass-secret-0123456789' }, logger, soakMs: 0 });
    const events: unknown[] = [];
    engine.on('decision', (d, op) => events.push({ d, op }));
    await engine.begin({ reason: 'r', message: 'm' });
    const token = createBypassToken('bypass-secret-0123456789', { sub: 'alice', expiresInMs: 60_000 });
    const op: Operation = {
      surface: 'http',
      name: 'POST /x',
      method: 'POST',
      path: '/x',
      bypassToken: token,
    };
    expect(engine.decide(op)).toMatchObject({ outcome: 'proceed', reason: 'bypass' });
    expect(engine.decide({ ...op, bypassToken: `${token}x` }).outcome).toBe('refuse');
    expect(op.bypassToken).toBe(token); // the caller's object is not touched
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ op: { bypassToken: '[redacted]', name: 'POST /x' } });
    const everything = JSON.stringify([events, lines, await engine.audit(), await engine.status()]);
    expect(everything).not.toContain(token.split('.')[1]);
    expect(everything).not.toContain(token.split('.')[0]);
    await engine.close();
  });
});

describe('queued writes: text, concurrency and outages', () => {
  const post: Operation = { surface: 'http', name: 'POST /notes', method: 'POST', path: '/notes' };

  it('a lone surrogate or NUL anywhere in the payload is 400 naming the path, on every queue', async () => {
    const engine = createQuiesce({ soakMs: 0 });
    await engine.begin({ reason: 'r', message: 'm' });
    const e = await rejection(engine.enqueue(post, { body: { title: 'x\ud800' } }));
    expect(e).toMatchObject({ code: 'INVALID_INPUT', status: 400, field: 'payload.body.title' });
    const k = await rejection(engine.enqueue({ ...post, idempotencyKey: 'k\u0000' }, {}));
    expect(k).toMatchObject({ code: 'INVALID_INPUT', field: 'intent.idempotencyKey' });
    expect(await engine.listIntents()).toEqual([]);
    await engine.close();
  });

  it('the same key while its first request is still being stored is 409; afterwards the same intent', async () => {
    const inner = createMemoryIntentQueue();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const queue: IntentQueue = {
      ...inner,
      kind: 'gated',
      enqueue: async (input) => {
        await gate;
        return inner.enqueue(input);
      },
    };
    const engine = createQuiesce({ soakMs: 0, intentQueue: queue });
    await engine.begin({ reason: 'r', message: 'm' });
    const op = { ...post, idempotencyKey: 'k-1' };
    const first = engine.enqueue(op, { a: 1 });
    const e = await rejection(engine.enqueue(op, { a: 1 }));
    expect(e).toMatchObject({ code: 'IDEMPOTENCY_IN_PROGRESS', status: 409 });
    expect(JSON.parse(renderError(e).body)).toMatchObject({ status: 409, code: 'IDEMPOTENCY_IN_PROGRESS' });
    release();
    const r1 = await first;
    const r2 = await engine.enqueue(op, { a: 1 });
    expect(r2.intent.id).toBe(r1.intent.id);
    expect(r2.created).toBe(false);
    const c = await rejection(engine.enqueue(op, { a: 2 }));
    expect(c).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', status: 422 });
    await engine.close();
  });

  it('a queue that cannot store the intent is QUEUE_UNAVAILABLE: 503 problem with Retry-After, never 500', async () => {
    const inner = createMemoryIntentQueue();
    const queue: IntentQueue = {
      ...inner,
      kind: 'down',
      enqueue: async () => {
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      },
    };
    const engine = createQuiesce({ soakMs: 0, intentQueue: queue });
    await engine.begin({ reason: 'r', message: 'm' });
    const e = await rejection(engine.enqueue(post, { a: 1 }));
    expect(e).toMatchObject({ code: 'QUEUE_UNAVAILABLE', status: 503 });
    const rendered = renderError(e);
    expect(rendered.status).toBe(503);
    expect(rendered.headers['retry-after']).toMatch(/^\d+$/);
    expect(rendered.headers['content-type']).toBe('application/problem+json');
    expect(rendered.body).not.toContain('127.0.0.1');
    // The key is free again: a retry once the queue is back is not refused as "in progress".
    const e2 = await rejection(engine.enqueue(post, { a: 1 }));
    expect(e2.code).toBe('QUEUE_UNAVAILABLE');
    await engine.close();
  });
});
