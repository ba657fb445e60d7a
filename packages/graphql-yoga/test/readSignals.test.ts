import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { attachReadSignals, createQuiesce, type ReadHealthReport } from '@quiesce/core';
import { createSchema, createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { useQuiesce } from '../src/index.js';

const engine = createQuiesce({ soakMs: 0 });
const yoga = createYoga({
  schema: createSchema({
    typeDefs: /* GraphQL */ `
      type Query {
        search(q: String!, drift: Float!): [String!]!
        plain: String
      }
    `,
    resolvers: {
      Query: {
        search: (_: unknown, { q, drift }: { q: string; drift: number }, context: object) => {
          attachReadSignals(context, { deltaS: drift, lambda: 0.9 });
          return [`${q}: first hit`];
        },
        plain: () => 'no signals here',
      },
    },
  }),
  plugins: [useQuiesce(engine)],
  batching: true,
  logging: false,
});
const server = createServer(yoga);
let url = '';

beforeAll(async () => {
  await engine.start();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await engine.close();
});

const gql = async (body: unknown) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return res.json();
};
const signals = async () => (await engine.status()).readHealth.signals;

it('a resolver attaches read-quality signals to the context; the timed query reports them, before and during a window; the closing record carries them (#18)', async () => {
  for (const drift of [0.1, 0.2, 0.3])
    expect(await gql({ query: `{ search(q: "tea", drift: ${drift}) }` })).toEqual({
      data: { search: ['tea: first hit'] },
    });
  // Reported when execution is done, before the response is sent: no waiting.
  const before = (await signals()).deltaS!.baseline;
  expect(before).toMatchObject({ count: 3, min: 0.1, max: 0.3 });
  expect(before.mean).toBeCloseTo(0.2, 10);
  expect((await signals()).lambda!.baseline).toMatchObject({ count: 3, mean: 0.9 });

  // Each operation of a batch has its own context: one's signals do not ride on the other.
  await gql([{ query: '{ search(q: "tea", drift: 0.4) }' }, { query: '{ plain }' }]);
  expect((await signals()).deltaS!.baseline.count).toBe(4);
  expect((await engine.status()).readHealth.baseline.count).toBe(5);

  await engine.begin({ reason: 'reindex', message: 'Search is read-only while we reindex.' });
  for (const drift of [0.6, 0.8]) await gql({ query: `{ search(q: "tea", drift: ${drift}) }` });
  await gql({ query: '{ plain }' });
  expect((await signals()).deltaS!.window).toMatchObject({ count: 2, min: 0.6, max: 0.8 });
  expect((await engine.status()).readHealth.window.count).toBe(3);

  await engine.end();
  const closed = await engine.waitForPhase('closed', { timeoutMs: 4000 });
  const recorded = (closed.report.readHealth as ReadHealthReport).signals;
  expect(recorded.deltaS!.window).toMatchObject({ count: 2, min: 0.6, max: 0.8 });
  expect(recorded.deltaS!.baseline).toMatchObject({ count: 4, min: 0.1, max: 0.4 });
});
