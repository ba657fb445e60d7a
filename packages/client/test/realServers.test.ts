import { ApolloClient, ApolloLink, gql, HttpLink, InMemoryCache } from '@apollo/client';
import { Client, fetchExchange } from '@urql/core';
import ky, { HTTPError } from 'ky';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { quiesceRetryLink } from '../src/apollo.js';
import { type QueuedIntent, QuiesceRetryError, withQuiesceRetry } from '../src/index.js';
import { quiesceKy } from '../src/ky.js';
import { quiesceExchange } from '../src/urql.js';
import { endOnFirstRefusal, type Servers, startServers } from './servers.js';

let s: Servers;
beforeEach(async () => {
  s = await startServers();
});
afterEach(async () => {
  await s.close();
});

// Small client waits: the servers cap Retry-After at 1 s.
const FAST = { jitterMs: 50, maxWaitMs: 2_000, budgetMs: 30_000 };
const ADD_NOTE = gql`
  mutation AddNote($text: String!) {
    addNote(text: $text) {
      id
      text
    }
  }
`;
const PLACE_ORDER = gql`
  mutation PlaceOrder($requestId: String!, $item: String!) {
    placeOrder(requestId: $requestId, item: $item)
  }
`;

const apollo = (options: Parameters<typeof quiesceRetryLink>[0]) =>
  new ApolloClient({
    link: ApolloLink.from([quiesceRetryLink(options), new HttpLink({ uri: s.graphql })]),
    cache: new InMemoryCache(),
  });

const urql = (options: Parameters<typeof quiesceExchange>[0]) =>
  new Client({ url: s.graphql, exchanges: [quiesceExchange(options), fetchExchange] });

describe('a write during a window that ends: applied exactly once after it, with no app code', () => {
  it('fetch wrapper (Express)', async () => {
    await s.begin(5_000);
    const end = endOnFirstRefusal(s);
    const f = withQuiesceRetry(fetch, { ...FAST, onRetry: end.onRetry });
    const res = await f(`${s.rest}/notes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'hello' }),
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ id: 1, text: 'hello' });
    expect(s.applied).toEqual(['note:hello']);
    expect(end.refusals.length).toBeGreaterThanOrEqual(1);
    expect(s.hit('POST /notes')).toBe(end.refusals.length + 1);
    // Retry-After was 1 s: the client waited the server's second plus at most its jitter.
    expect(end.refusals[0]).toBeGreaterThanOrEqual(1_000);
    expect(end.refusals[0]).toBeLessThan(1_050);
  });

  it('fetch wrapper with a Request object (its body re-sent on each attempt)', async () => {
    await s.begin(5_000);
    const end = endOnFirstRefusal(s);
    const f = withQuiesceRetry(fetch, { ...FAST, onRetry: end.onRetry });
    const req = new Request(`${s.rest}/notes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'from a Request' }),
    });
    expect((await f(req)).status).toBe(201);
    expect(s.applied).toEqual(['note:from a Request']);
  });

  it('ky hooks preset (Express)', async () => {
    await s.begin(5_000);
    const end = endOnFirstRefusal(s);
    const api = ky.create({ baseUrl: `${s.rest}/`, ...quiesceKy({ ...FAST, onRetry: end.onRetry }) });
    expect(await api.post('notes', { json: { text: 'via ky' } }).json()).toEqual({ id: 1, text: 'via ky' });
    expect(s.applied).toEqual(['note:via ky']);
    expect(s.hit('POST /notes')).toBe(end.refusals.length + 1);
  });

  it('Apollo Client link (Yoga)', async () => {
    await s.begin(5_000);
    const end = endOnFirstRefusal(s);
    const client = apollo({ ...FAST, onRetry: end.onRetry });
    const result = await client.mutate({ mutation: ADD_NOTE, variables: { text: 'via apollo' } });
    expect(result.data).toEqual({ addNote: { __typename: 'Note', id: '1', text: 'via apollo' } });
    expect(s.applied).toEqual(['note:via apollo']);
    expect(end.refusals.length).toBeGreaterThanOrEqual(1);
    expect(s.hit('graphql AddNote')).toBe(end.refusals.length + 1);
  });

  it('urql exchange (Yoga)', async () => {
    await s.begin(5_000);
    const end = endOnFirstRefusal(s);
    const client = urql({ ...FAST, onRetry: end.onRetry });
    const result = await client.mutation(ADD_NOTE, { text: 'via urql' }).toPromise();
    expect(result.error).toBeUndefined();
    expect(result.data).toEqual({ addNote: { id: '1', text: 'via urql' } });
    expect(s.applied).toEqual(['note:via urql']);
    expect(end.refusals.length).toBeGreaterThanOrEqual(1);
    expect(s.hit('graphql AddNote')).toBe(end.refusals.length + 1);
  });
});

describe('a window longer than the budget: fails fast with the window details', () => {
  const LONG = 10 * 60_000;
  const BUDGET = { ...FAST, budgetMs: 20_000 };

  const expectDetails = (error: unknown) => {
    expect(error).toBeInstanceOf(QuiesceRetryError);
    const e = error as QuiesceRetryError;
    expect(e).toMatchObject({
      reason: 'window-outlasts-budget',
      detail: 'Moving notes to the new database',
      windowId: s.engine.window!.id,
      endsAt: s.engine.window!.endsAt,
      attempts: 1,
    });
    expect(e.message).toContain('Moving notes to the new database');
  };

  it('fetch wrapper: throws on the first refusal, one request sent', async () => {
    await s.begin(LONG);
    const error = await withQuiesceRetry(fetch, BUDGET)(`${s.rest}/notes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"text":"late"}',
    }).catch((e: unknown) => e);
    expectDetails(error);
    expect((error as QuiesceRetryError).status).toBe(503);
    expect(s.hit('POST /notes')).toBe(1);
    expect(s.applied).toEqual([]);
  });

  it('ky: throws the same error', async () => {
    await s.begin(LONG);
    const error = await ky
      .post(`${s.rest}/notes`, { json: { text: 'late' }, ...quiesceKy(BUDGET) })
      .catch((e: unknown) => e);
    expectDetails(error);
    expect(s.hit('POST /notes')).toBe(1);
  });

  it('Apollo: the mutation rejects with it', async () => {
    await s.begin(LONG);
    const error = await apollo(BUDGET)
      .mutate({ mutation: ADD_NOTE, variables: { text: 'late' } })
      .catch((e: unknown) => e);
    expectDetails(error);
    expect((error as QuiesceRetryError).refusal.fields).toEqual(['Mutation.addNote']);
    expect(s.hit('graphql AddNote')).toBe(1);
  });

  it('urql: the result carries it as the network error', async () => {
    await s.begin(LONG);
    const result = await urql(BUDGET).mutation(ADD_NOTE, { text: 'late' }).toPromise();
    expectDetails(result.error?.networkError);
    expect(s.hit('graphql AddNote')).toBe(1);
  });
});

describe('a window with no announced end: gives up when the budget runs out', () => {
  // Retry-After is 1 s (the cap) and the budget 1.5 s: two or three attempts, depending on how long
  // each request takes, the last wait cut to what the budget has left.
  const SHORT = { ...FAST, budgetMs: 1_500 };
  const expectBudget = (error: unknown, hits: number) => {
    expect(error).toBeInstanceOf(QuiesceRetryError);
    const e = error as QuiesceRetryError;
    expect(e).toMatchObject({
      reason: 'budget-exhausted',
      endsAt: null,
      detail: 'Moving notes to the new database',
    });
    expect(e.elapsedMs).toBeGreaterThanOrEqual(1_500);
    expect(e.attempts).toBeGreaterThanOrEqual(2);
    // Every attempt the client counted reached the server, and nothing else did.
    expect(hits).toBe(e.attempts);
  };

  it('fetch wrapper', async () => {
    await s.begin(null);
    const error = await withQuiesceRetry(fetch, SHORT)(`${s.rest}/notes`, {
      method: 'POST',
      body: '{}',
    }).catch((e: unknown) => e);
    expectBudget(error, s.hit('POST /notes'));
  });

  it('ky (the budget spans its retries)', async () => {
    await s.begin(null);
    const error = await ky
      .post(`${s.rest}/notes`, { json: {}, ...quiesceKy(SHORT) })
      .catch((e: unknown) => e);
    expectBudget(error, s.hit('POST /notes'));
  });

  it('Apollo', async () => {
    await s.begin(null);
    const error = await apollo(SHORT)
      .mutate({ mutation: ADD_NOTE, variables: { text: 'x' } })
      .catch((e: unknown) => e);
    expectBudget(error, s.hit('graphql AddNote'));
  });
});

describe('a queued write returns its intent and is not retried', () => {
  it('fetch wrapper (Express queue())', async () => {
    await s.begin(5_000);
    const queued: QueuedIntent[] = [];
    const res = await withQuiesceRetry(fetch, { ...FAST, onQueued: (i) => queued.push(i) })(
      `${s.rest}/orders`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'order-42' },
        body: JSON.stringify({ item: 'tea' }),
      },
    );
    expect(res.status).toBe(202);
    const body = await res.json();
    expect(body).toMatchObject({ code: 'WRITE_QUEUED', idempotencyKey: 'order-42' });
    expect(queued).toEqual([
      expect.objectContaining({ intentId: body.intentId, idempotencyKey: 'order-42' }),
    ]);
    expect(s.hit('POST /orders')).toBe(1);
    expect(s.applied).toEqual([]);
    expect(await s.engine.getIntent(body.intentId)).toMatchObject({ idempotencyKey: 'order-42' });
  });

  it('ky (Express queue())', async () => {
    await s.begin(5_000);
    const queued: QueuedIntent[] = [];
    const body = await ky
      .post(`${s.rest}/orders`, {
        json: { item: 'tea' },
        ...quiesceKy({ ...FAST, onQueued: (i) => queued.push(i) }),
      })
      .json<{ code: string; intentId: string }>();
    expect(body.code).toBe('WRITE_QUEUED');
    expect(queued.map((q) => q.intentId)).toEqual([body.intentId]);
    expect(s.hit('POST /orders')).toBe(1);
  });

  it('Apollo (Yoga @queueDuringReadOnly)', async () => {
    await s.begin(5_000);
    const queued: QueuedIntent[] = [];
    const result = await apollo({ ...FAST, onQueued: (i) => queued.push(i) }).mutate({
      mutation: PLACE_ORDER,
      variables: { requestId: 'req-1', item: 'tea' },
      errorPolicy: 'all',
    });
    expect(result.error?.message).toContain('queued as write intent');
    expect(queued).toEqual([expect.objectContaining({ code: 'WRITE_QUEUED', idempotencyKey: 'req-1' })]);
    expect(await s.engine.getIntent(queued[0]!.intentId)).toMatchObject({ idempotencyKey: 'req-1' });
    expect(s.hit('graphql PlaceOrder')).toBe(1);
    expect(s.applied).toEqual([]);
  });

  it('urql (Yoga @queueDuringReadOnly)', async () => {
    await s.begin(5_000);
    const queued: QueuedIntent[] = [];
    const result = await urql({ ...FAST, onQueued: (i) => queued.push(i) })
      .mutation(PLACE_ORDER, { requestId: 'req-2', item: 'tea' })
      .toPromise();
    expect(result.error?.graphQLErrors[0]?.extensions).toMatchObject({
      code: 'WRITE_QUEUED',
      idempotencyKey: 'req-2',
    });
    expect(queued.map((q) => q.idempotencyKey)).toEqual(['req-2']);
    expect(s.hit('graphql PlaceOrder')).toBe(1);
  });
});

describe('a 503 that is not READ_ONLY_MODE', () => {
  it('on a POST is not retried (fetch wrapper): the 503 is returned as is', async () => {
    const res = await withQuiesceRetry(fetch, FAST)(`${s.rest}/flaky`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'UPSTREAM_DOWN' });
    expect(s.hit('POST /flaky')).toBe(1);
  });

  it('on a POST is not retried (ky): HTTPError after one request', async () => {
    const error = await ky.post(`${s.rest}/flaky`, { json: {}, ...quiesceKy(FAST) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).response.status).toBe(503);
    expect(s.hit('POST /flaky')).toBe(1);
  });

  it('on a GET (safe to repeat) is retried', async () => {
    const res = await withQuiesceRetry(fetch, FAST)(`${s.rest}/flaky`);
    expect(await res.json()).toEqual({ ok: true, gets: 2 });
    expect(s.hit('GET /flaky')).toBe(2);
  });
});
