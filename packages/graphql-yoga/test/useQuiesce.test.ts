import { createRequire } from 'node:module';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { createBypassToken } from '@quiesce/core';
import { waitForHeartbeats } from '@quiesce/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { quiesceDirectives } from '../src/index.js';
import { codeFirstSchema, type Harness, harness, sdlSchema } from './fixtures.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.engine.close();
  h = undefined;
});

const CREATE = /* GraphQL */ `
  mutation Create($input: OrderInput!) {
    createOrder(input: $input) {
      id
      item
    }
  }
`;

function expectRefusal(res: { status: number; headers: Headers; body: any }, fields: string[]) {
  expect(res.status).toBe(503);
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 5).toBe(true);
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.body.data).toBeUndefined();
  expect(res.body.errors).toHaveLength(1);
  const [error] = res.body.errors;
  expect(error.message).toBe('Orders are read-only during the database migration.');
  expect(error.extensions).toEqual({
    code: 'READ_ONLY_MODE',
    windowId: expect.stringMatching(/^win_/),
    endsAt: expect.any(String),
    retryAfter,
    fields,
  });
}

it('runs on graphql 16 in this file (graphql17.test.ts runs the same contract on 17)', () => {
  const require = createRequire(import.meta.url);
  expect(createRequire(require.resolve('graphql-yoga'))('graphql').versionInfo.major).toBe(16);
});

describe.each([
  ['SDL-first', sdlSchema],
  ['code-first', codeFirstSchema],
])('%s schema', (_, schema) => {
  it('runs queries and mutations outside a window', async () => {
    h = await harness({ schema });
    const q = await h.gql('{ hello }');
    expect(q).toMatchObject({ status: 200, body: { data: { hello: 'world' } } });
    const m = await h.gql(CREATE, { input: { requestId: 'r1', item: 'tea' } });
    expect(m).toMatchObject({ status: 200, body: { data: { createOrder: { id: '1', item: 'tea' } } } });
    expect(h.rec.calls).toEqual(['createOrder']);
  });

  it('refuses a blocked mutation whole during a window, before any resolver runs', async () => {
    h = await harness({ schema });
    await h.begin();
    const res = await h.gql('mutation { signIn(user: "ann") deleteOrder(id: 1) trackView(page: "/") }');
    expectRefusal(res, ['Mutation.deleteOrder']);
    expect(h.rec.calls).toEqual([]);
    expect((await h.engine.status()).counters.refused.graphql).toBe(1);
  });

  it('keeps queries and @allowDuringReadOnly mutations running during a window', async () => {
    h = await harness({ schema });
    await h.begin();
    expect(await h.gql('{ hello orders { id } }')).toMatchObject({
      status: 200,
      body: { data: { hello: 'world', orders: [] } },
    });
    expect(await h.gql('{ __schema { mutationType { name } } }')).toMatchObject({
      status: 200,
      body: { data: { __schema: { mutationType: { name: 'Mutation' } } } },
    });
    const res = await h.gql('mutation { signIn(user: "ann") }');
    expect(res).toMatchObject({ status: 200, body: { data: { signIn: 'token-for-ann' } } });
    expect(res.body.errors).toBeUndefined();
    expect(h.rec.calls).toEqual(['signIn']);
  });

  it('queues a @queueDuringReadOnly mutation as a write intent keyed by its argument', async () => {
    h = await harness({ schema });
    await h.begin();
    const res = await h.gql(CREATE, { input: { requestId: 'req-42', item: 'tea' } });
    expect(res.status).toBe(202);
    expect(res.body.data).toEqual({ createOrder: null });
    expect(res.body.errors).toHaveLength(1);
    const [error] = res.body.errors;
    expect(error.path).toEqual(['createOrder']);
    expect(error.message).toMatch(/^Mutation\.createOrder was queued as write intent /);
    expect(error.extensions).toEqual({
      code: 'WRITE_QUEUED',
      intentId: expect.any(String),
      idempotencyKey: 'req-42',
      statusUrl: `/quiesce/intents/${encodeURIComponent(error.extensions.intentId)}`,
      created: true,
      windowId: expect.stringMatching(/^win_/),
      endsAt: expect.any(String),
      retryAfter: expect.any(Number),
    });
    expect(h.rec.calls).toEqual([]);
    const intent = await h.engine.getIntent(error.extensions.intentId);
    expect(intent).toMatchObject({
      name: 'Mutation.createOrder',
      idempotencyKey: 'req-42',
      payload: { input: { requestId: 'req-42', item: 'tea' } },
      surface: 'graphql',
      status: 'queued',
    });

    // Same key, same payload: the same intent. Same key, other payload: 422.
    const again = await h.gql(CREATE, { input: { requestId: 'req-42', item: 'tea' } });
    expect(again.body.errors[0].extensions).toMatchObject({
      intentId: error.extensions.intentId,
      created: false,
    });
    const conflict = await h.gql(CREATE, { input: { requestId: 'req-42', item: 'coffee' } });
    expect(conflict.status).toBe(422);
    expect(conflict.body.errors[0]).toMatchObject({
      path: ['createOrder'],
      extensions: { code: 'IDEMPOTENCY_CONFLICT' },
    });
    expect(h.rec.calls).toEqual([]);
  });

  it('drops a @dropDuringReadOnly mutation and counts it', async () => {
    h = await harness({ schema });
    await h.begin();
    const res = await h.gql('mutation { trackView(page: "/home") }');
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ trackView: null });
    expect(res.body.errors[0]).toMatchObject({
      path: ['trackView'],
      extensions: { code: 'WRITE_DROPPED', windowId: expect.stringMatching(/^win_/) },
    });
    expect(h.rec.calls).toEqual([]);
    expect((await h.engine.status()).counters.dropped.graphql).toBe(1);
  });

  it('treats a @writes query field as a mutation', async () => {
    h = await harness({ schema });
    expect(await h.gql('{ touchLastSeen }')).toMatchObject({
      status: 200,
      body: { data: { touchLastSeen: true } },
    });
    await h.begin();
    expectRefusal(await h.gql('{ hello touchLastSeen }'), ['Query.touchLastSeen']);
    expect(h.rec.calls).toEqual(['touchLastSeen']);
  });

  it('reports every mutation field and @writes query to the inventory, unannotated ones as block', async () => {
    h = await harness({ schema });
    const inventory = h.engine.inventory().filter((e) => e.source === 'graphql-yoga');
    const byName = Object.fromEntries(inventory.map((e) => [e.name, e]));
    expect(byName['mutation createOrder']).toMatchObject({
      surface: 'graphql',
      classification: 'write',
      policy: 'queue',
      explicit: true,
      details: {
        coordinate: 'Mutation.createOrder',
        key: 'input.requestId',
        intentName: 'Mutation.createOrder',
      },
    });
    expect(byName['mutation signIn']).toMatchObject({ policy: 'allow', explicit: true });
    expect(byName['mutation trackView']).toMatchObject({ policy: 'drop', explicit: true });
    expect(byName['mutation deleteOrder']).toMatchObject({ policy: 'block', explicit: false });
    expect(byName['query touchLastSeen']).toMatchObject({
      classification: 'write',
      policy: 'block',
      explicit: false,
    });
    expect(byName['query hello']).toBeUndefined();
  });
});

describe('operations', () => {
  it('decides an operation by its strictest field and names the fields that caused it', async () => {
    h = await harness();
    await h.begin();
    const res = await h.gql(
      'mutation { a: signIn(user: "x") b: deleteOrder(id: 1) c: trackView(page: "/") d: deleteOrder(id: 2) slowWrite }',
    );
    expectRefusal(res, ['Mutation.deleteOrder', 'Mutation.slowWrite']);
    // Without the blocked field: the queue field is queued, the drop field dropped, the allow field runs.
    const mixed = await h.gql(
      'mutation ($input: OrderInput!) { signIn(user: "x") createOrder(input: $input) { id } trackView(page: "/") }',
      { input: { requestId: 'm1', item: 'tea' } },
    );
    expect(mixed.status).toBe(202);
    expect(mixed.body.data).toEqual({ signIn: 'token-for-x', createOrder: null, trackView: null });
    expect(mixed.body.errors.map((e: any) => [e.path[0], e.extensions.code])).toEqual([
      ['createOrder', 'WRITE_QUEUED'],
      ['trackView', 'WRITE_DROPPED'],
    ]);
    expect(h.rec.calls).toEqual(['signIn']);
  });

  it('selects the operation by operationName in a multi-operation document', async () => {
    h = await harness();
    await h.begin();
    const document = 'query Read { hello } mutation Write { deleteOrder(id: 1) }';
    const read = await h.post({ query: document, operationName: 'Read' });
    expect(read.status).toBe(200);
    expect(await read.json()).toEqual({ data: { hello: 'world' } });
    const write = await h.post({ query: document, operationName: 'Write' });
    expectRefusal({ status: write.status, headers: write.headers, body: await write.json() }, [
      'Mutation.deleteOrder',
    ]);
  });

  it('follows fragments, aliases and @skip/@include', async () => {
    h = await harness();
    await h.begin();
    const viaFragment = await h.gql(
      'mutation { ...W } fragment W on Mutation { ... on Mutation { gone: deleteOrder(id: 1) } }',
    );
    expectRefusal(viaFragment, ['Mutation.deleteOrder']);
    const skipped = await h.gql(
      'mutation ($no: Boolean!) { signIn(user: "x") deleteOrder(id: 1) @include(if: $no) }',
      {
        no: false,
      },
    );
    expect(skipped).toMatchObject({ status: 200, body: { data: { signIn: 'token-for-x' } } });
    const two = await h.gql(
      'mutation { first: placeOrder(item: "a") { id } second: placeOrder(item: "b") { id } }',
      undefined,
      {
        'idempotency-key': 'K1',
      },
    );
    expect(two.status).toBe(202);
    // One header key, two queued fields: each gets the key scoped by its response key.
    expect(two.body.errors.map((e: any) => e.extensions.idempotencyKey)).toEqual(['K1:first', 'K1:second']);
  });

  it('keys a queued field from the Idempotency-Key header, or derives one from its arguments', async () => {
    h = await harness();
    await h.begin();
    const withHeader = await h.gql('mutation { placeOrder(item: "tea") { id } }', undefined, {
      'Idempotency-Key': 'client-7',
    });
    expect(withHeader.body.errors[0].extensions).toMatchObject({
      code: 'WRITE_QUEUED',
      idempotencyKey: 'client-7',
    });
    const derived = await h.gql('mutation { placeOrder(item: "tea") { id } }');
    expect(derived.body.errors[0].extensions.idempotencyKey).toMatch(/^derived:[0-9a-f]{32}$/);
    const derivedAgain = await h.gql('mutation { placeOrder(item: "tea") { id } }');
    expect(derivedAgain.body.errors[0].extensions).toMatchObject({
      intentId: derived.body.errors[0].extensions.intentId,
      created: false,
    });
  });

  it('queues a @writes query that carries @queueDuringReadOnly, under its own intent name', async () => {
    h = await harness({ plugin: { intentName: (f) => `reports.${f.fieldName}` } });
    await h.begin();
    const res = await h.gql('{ hello exportReport }');
    expect(res.status).toBe(202);
    expect(res.body.data).toEqual({ hello: 'world', exportReport: null });
    expect(res.body.errors[0]).toMatchObject({
      path: ['exportReport'],
      extensions: { code: 'WRITE_QUEUED' },
    });
    expect((await h.engine.getIntent(res.body.errors[0].extensions.intentId))?.name).toBe(
      'reports.exportReport',
    );
    expect(h.rec.calls).toEqual([]);
  });

  it('nulls the parent of a queued non-null field, as graphql-js does for any field error', async () => {
    const schema = () =>
      makeExecutableSchema({
        typeDefs: [
          quiesceDirectives,
          'type Query { a: Int } type Mutation { mustAnswer(n: Int!): Boolean! @queueDuringReadOnly }',
        ],
        resolvers: { Mutation: { mustAnswer: () => true } },
      });
    h = await harness({ schema });
    await h.begin();
    const res = await h.gql('mutation { mustAnswer(n: 1) }');
    expect(res.status).toBe(202);
    expect(res.body.data).toBeNull();
    expect(res.body.errors[0]).toMatchObject({ path: ['mustAnswer'], extensions: { code: 'WRITE_QUEUED' } });
  });

  it('leaves GraphQL alone when the window is scoped to other surfaces', async () => {
    h = await harness();
    await h.engine.begin({ reason: 'http only', message: 'REST is read-only.', scope: ['http'] });
    expect(h.engine.readOnly).toBe(true);
    expect(await h.gql('mutation { deleteOrder(id: 1) }')).toMatchObject({
      status: 200,
      body: { data: { deleteOrder: true } },
    });
  });

  it('reports query timings to the read-health watcher, before and during a window', async () => {
    h = await harness();
    for (let i = 0; i < 3; i++) await h.gql('{ hello }');
    await h.gql('mutation { deleteOrder(id: 1) }');
    expect((await h.engine.status()).readHealth.baseline.count).toBe(3);
    await h.begin();
    await h.gql('{ hello }');
    await h.gql('{ nope }');
    expect((await h.engine.status()).readHealth.window).toMatchObject({ count: 1, errorRatio: 0 });
  });

  it('answers IDEMPOTENCY_KEY_REQUIRED (400) when a key is required and none is given', async () => {
    h = await harness({ plugin: { requireIdempotencyKey: true } });
    await h.begin();
    const res = await h.gql('mutation { placeOrder(item: "tea") { id } }');
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toMatchObject({
      path: ['placeOrder'],
      extensions: { code: 'IDEMPOTENCY_KEY_REQUIRED', field: 'idempotency-key' },
    });
    expect(res.body.errors[0].message).toMatch(/idempotency-key header/);
  });

  it('serves GET queries during a window; GET mutations stay refused by Yoga itself (405)', async () => {
    h = await harness();
    await h.begin();
    const q = await h.yoga.fetch(`http://yoga.test/graphql?query=${encodeURIComponent('{ hello }')}`, {
      headers: { accept: 'application/graphql-response+json' },
    });
    expect(q.status).toBe(200);
    expect(await q.json()).toEqual({ data: { hello: 'world' } });
    const m = await h.yoga.fetch(
      `http://yoga.test/graphql?query=${encodeURIComponent('mutation { deleteOrder(id: 1) }')}`,
      {
        headers: { accept: 'application/graphql-response+json' },
      },
    );
    expect(m.status).toBe(405);
    expect(h.rec.calls).toEqual([]);
  });

  it('answers 423 when the engine is configured so, and keeps the app CORS headers on a refusal', async () => {
    h = await harness({ engine: { refusalStatus: 423 }, yoga: { cors: { origin: 'https://app.example' } } });
    await h.begin();
    const res = await h.post({ query: 'mutation { deleteOrder(id: 1) }' }, { origin: 'https://app.example' });
    expect(res.status).toBe(423);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await res.json()).errors[0].extensions.code).toBe('READ_ONLY_MODE');
  });

  it('lets a bypass token through and, in dry-run, refuses nothing', async () => {
    h = await harness({ engine: { bypass: { secret: 's3cret' } } });
    await h.begin();
    const token = createBypassToken('s3cret', { sub: 'ops@example.com', expiresInMs: 60_000 });
    const res = await h.gql('mutation { deleteOrder(id: 1) }', undefined, { 'x-quiesce-bypass': token });
    expect(res).toMatchObject({ status: 200, body: { data: { deleteOrder: true } } });
    const cookie = await h.gql('mutation { deleteOrder(id: 2) }', undefined, {
      cookie: `a=b; quiesce_bypass=${token}`,
    });
    expect(cookie.status).toBe(200);
    expectRefusal(
      await h.gql('mutation { deleteOrder(id: 3) }', undefined, { 'x-quiesce-bypass': 'forged.token' }),
      ['Mutation.deleteOrder'],
    );
    // A cookie that is not valid percent-encoding is ignored, not a 500.
    expectRefusal(
      await h.gql('mutation { deleteOrder(id: 4) }', undefined, { cookie: 'quiesce_bypass=%E0%A4%A' }),
      ['Mutation.deleteOrder'],
    );
    await h.engine.close();

    h = await harness({ engine: { dryRun: true } });
    await h.begin();
    expect(await h.gql('mutation { deleteOrder(id: 1) }')).toMatchObject({
      status: 200,
      body: { data: { deleteOrder: true } },
    });
    expect((await h.engine.status()).counters.dryRun.graphql).toBe(1);
  });

  it('lets the principal option bypass for operators and records it on intents', async () => {
    h = await harness({
      engine: { bypass: { principal: (p) => p === 'operator' } },
      plugin: { principal: (ctx) => ctx.request.headers.get('x-user') ?? undefined },
    });
    await h.begin();
    expect((await h.gql('mutation { deleteOrder(id: 1) }', undefined, { 'x-user': 'operator' })).status).toBe(
      200,
    );
    expect((await h.gql('mutation { deleteOrder(id: 1) }', undefined, { 'x-user': 'ann' })).status).toBe(503);
    const q = await h.gql('mutation { placeOrder(item: "x") { id } }', undefined, { 'x-user': 'ann' });
    expect((await h.engine.getIntent(q.body.errors[0].extensions.intentId))?.principal).toBe('ann');
  });

  it('replays a queued field through its handler after the window', async () => {
    h = await harness({ engine: { soakMs: 0 } });
    const replayed: unknown[] = [];
    h.engine.handle('Mutation.createOrder', (payload, { idempotencyKey }) => {
      replayed.push({ payload, idempotencyKey });
    });
    await h.begin();
    await h.gql(CREATE, { input: { requestId: 'r-9', item: 'tea' } });
    await h.engine.end();
    const report = await h.engine.backfill();
    expect(report).toMatchObject({ applied: 1, failed: 0 });
    expect(replayed).toEqual([
      { payload: { input: { requestId: 'r-9', item: 'tea' } }, idempotencyKey: 'r-9' },
    ]);
  });

  it('runs mutations again once the window ends', async () => {
    h = await harness();
    await h.begin();
    expect((await h.gql('mutation { deleteOrder(id: 1) }')).status).toBe(503);
    await h.engine.end();
    expect(await h.gql('mutation { deleteOrder(id: 1) }')).toMatchObject({
      status: 200,
      body: { data: { deleteOrder: true } },
    });
  });
});

describe('in-flight writes', () => {
  it('holds the window in freezing until a running mutation finishes', async () => {
    h = await harness({ engine: { heartbeatMs: 20 } });
    const running = h.gql('mutation { slowWrite }');
    await h.rec.slowWriteStarted;
    expect((await h.engine.status()).inFlight.count).toBe(1);
    await h.begin();
    let frozen = false;
    const reached = h.engine.waitForPhase('frozen', { timeoutMs: 5000 }).then(() => {
      frozen = true;
    });
    // Three heartbeats later that acknowledge the freeze and still report the mutation, the window
    // must still be freezing.
    const freezeVersion = h.engine.window!.freezeVersion ?? 0;
    await waitForHeartbeats(
      h.engine,
      3,
      'acknowledging the freeze with the mutation in flight',
      (self) => self.ackedVersion >= freezeVersion && self.inFlight === 1,
    );
    expect(h.engine.phase).toBe('freezing');
    expect(frozen).toBe(false);
    h.rec.releaseSlowWrite();
    expect(await running).toMatchObject({ status: 200, body: { data: { slowWrite: true } } });
    await reached;
    expect(h.engine.phase).toBe('frozen');
    expect((await h.engine.status()).inFlight.count).toBe(0);
  });

  it('releases the in-flight count when execution fails or throws', async () => {
    let failWith: 'reject' | 'throw' | null = null;
    h = await harness({
      before: [
        {
          onExecute({ executeFn, setExecuteFn }) {
            setExecuteFn((args) => {
              if (failWith === 'reject') return Promise.reject(new Error('executor down'));
              if (failWith === 'throw') throw new Error('executor down');
              return executeFn(args);
            });
          },
        },
      ],
    });
    // A variable that fails coercion: execution answers with errors.
    const res = await h.gql('mutation ($id: ID!) { deleteOrder(id: $id) }', { id: { not: 'an id' } });
    expect(res.body.errors).toBeDefined();
    expect((await h.engine.status()).inFlight.count).toBe(0);
    for (const mode of ['reject', 'throw'] as const) {
      failWith = mode;
      const failed = await h.gql('mutation { deleteOrder(id: 1) }');
      expect(failed.status).toBe(500);
      expect((await h.engine.status()).inFlight.count).toBe(0);
    }
  });
});

describe('batching', () => {
  it('refuses the refused entries of a batch; the batch is 503 only when refused whole', async () => {
    h = await harness({ yoga: { batching: true } });
    await h.begin();
    const mixed = await h.post([{ query: '{ hello }' }, { query: 'mutation { deleteOrder(id: 1) }' }]);
    expect(mixed.status).toBe(200);
    expect(mixed.headers.get('retry-after')).toMatch(/^\d+$/);
    const [read, write] = (await mixed.json()) as any[];
    expect(read).toEqual({ data: { hello: 'world' } });
    expect(write.errors[0].extensions).toMatchObject({
      code: 'READ_ONLY_MODE',
      fields: ['Mutation.deleteOrder'],
    });
    expect(write.errors[0].extensions.http).toBeUndefined();

    const whole = await h.post([
      { query: 'mutation { deleteOrder(id: 1) }' },
      { query: 'mutation { deleteOrder(id: 2) }' },
    ]);
    expect(whole.status).toBe(503);
    expect(whole.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(whole.headers.get('cache-control')).toBe('no-store');
    expect(((await whole.json()) as any[]).map((r) => r.errors[0].extensions.code)).toEqual([
      'READ_ONLY_MODE',
      'READ_ONLY_MODE',
    ]);
    expect(h.rec.calls).toEqual([]);
  });
});

describe('subscriptions', () => {
  it('keep streaming while a window begins', async () => {
    h = await harness();
    const res = await h.yoga.fetch('http://yoga.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription { ticks(count: 4) }' }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const ticks: number[] = [];
    let buffer = '';
    let begun = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (const m of buffer.matchAll(/data: (\{.*\})\n/g)) {
        const tick = JSON.parse(m[1]!).data.ticks;
        if (!ticks.includes(tick)) ticks.push(tick);
      }
      if (ticks.length >= 1 && !begun) {
        begun = true;
        await h.begin();
        expect(h.engine.readOnly).toBe(true);
        h.rec.releaseTicks();
      }
      if (buffer.includes('event: complete')) break;
    }
    expect(ticks).toEqual([1, 2, 3, 4]);
  });
});
