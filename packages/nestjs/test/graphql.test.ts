import { Module } from '@nestjs/common';
import { Args, GraphQLModule, Mutation, Query, Resolver } from '@nestjs/graphql';
import { createQuiesce } from '@quiesce/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AllowDuringReadOnly, DropDuringReadOnly, QueueDuringReadOnly } from '../src/policyDecorators.js';
import { QuiesceModule } from '../src/quiesceModule.js';
import { ReadOnlyGuard } from '../src/readOnlyGuard.js';
import { PLATFORMS, type RunningApp, startNestApp } from './testApp.js';
import { YogaTestDriver } from './testGraphqlDriver.js';

const typeDefs = /* GraphQL */ `
  type Order { id: ID!, sku: String! }
  type Query { orders: [Order!]! }
  type Mutation {
    createOrder(sku: String!): Order!
    login(user: String!): String!
    importOrders(batch: String!): Boolean
    trackView(page: String!): Boolean
  }
`;

interface GraphqlResult {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, unknown> }>;
}

describe.each(PLATFORMS)('ReadOnlyGuard on GraphQL resolvers (Nest %s)', (platform) => {
  const engine = createQuiesce({ soakMs: 0, retryAfter: { jitterSeconds: 0 } });
  const ran: string[] = [];
  let running: RunningApp;

  @ReadOnlyGuard()
  @Resolver()
  class OrdersResolver {
    @Query('orders')
    orders() {
      ran.push('orders');
      return [{ id: '1', sku: 'A' }];
    }
    @Mutation('createOrder')
    createOrder(@Args('sku') sku: string) {
      ran.push('createOrder');
      return { id: '2', sku };
    }
    @AllowDuringReadOnly()
    @Mutation('login')
    login(@Args('user') user: string) {
      ran.push('login');
      return `token-for-${user}`;
    }
  }

  @ReadOnlyGuard()
  @Resolver()
  class BackgroundResolver {
    @QueueDuringReadOnly({ name: 'orders.import' })
    @Mutation('importOrders')
    importOrders(@Args('batch') batch: string) {
      ran.push(`import ${batch}`);
      return true;
    }
    @DropDuringReadOnly()
    @Mutation('trackView')
    trackView() {
      ran.push('trackView');
      return true;
    }
  }

  @Module({
    imports: [QuiesceModule.forRoot({ engine }), GraphQLModule.forRoot({ driver: YogaTestDriver, typeDefs })],
    providers: [OrdersResolver, BackgroundResolver],
  })
  class AppModule {}

  async function gql(query: string, variables?: Record<string, unknown>) {
    const res = await fetch(`${running.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as GraphqlResult;
    return { res, body };
  }

  beforeAll(async () => {
    running = await startNestApp(AppModule, platform);
  });
  afterAll(async () => {
    await running.close();
    await engine.close();
  });
  beforeEach(() => {
    ran.length = 0;
  });

  it('runs mutations with no window', async () => {
    const { res, body } = await gql('mutation { createOrder(sku: "A") { id sku } }');
    expect(res.status).toBe(200);
    expect(body).toEqual({ data: { createOrder: { id: '2', sku: 'A' } } });
  });

  describe('during a window', () => {
    let windowId = '';
    beforeAll(async () => {
      windowId = (
        await engine.begin({
          reason: 'r',
          message: 'Database upgrade',
          endsAt: new Date(Date.now() + 60_000).toISOString(),
        })
      ).id;
    });
    afterAll(async () => {
      await engine.end();
      await engine.waitForPhase('closed', { timeoutMs: 2000 });
    });

    it('refuses a mutation with extensions.code READ_ONLY_MODE, 503 and Retry-After; the resolver never runs', async () => {
      const { res, body } = await gql('mutation { createOrder(sku: "A") { id } }');
      expect(res.status).toBe(503);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(55);
      expect(res.headers.get('content-type')).toMatch(/json/);
      expect(body.data).toBeNull();
      expect(body.errors).toHaveLength(1);
      expect(body.errors![0]).toMatchObject({
        message: 'Database upgrade',
        path: ['createOrder'],
        extensions: { code: 'READ_ONLY_MODE', windowId, retryAfter: expect.any(Number) },
      });
      // The status travels in extensions.http for the server; it is not part of the body.
      expect(body.errors![0]!.extensions).not.toHaveProperty('http');
      expect(ran).toEqual([]);
    });

    it('queries are untouched', async () => {
      const { res, body } = await gql('{ orders { id sku } }');
      expect(res.status).toBe(200);
      expect(body).toEqual({ data: { orders: [{ id: '1', sku: 'A' }] } });
    });

    it('an allowed mutation runs on its own', async () => {
      const { body } = await gql('mutation { login(user: "ann") }');
      expect(body).toEqual({ data: { login: 'token-for-ann' } });
      expect(ran).toEqual(['login']);
    });

    it('a mutation is refused whole: an allowed field before a refused one does not run either', async () => {
      const { res, body } = await gql(
        'mutation M { ...F createOrder(sku: "B") { id } } fragment F on Mutation { login(user: "bob") }',
      );
      expect(res.status).toBe(503);
      expect(body.data).toBeNull();
      expect(body.errors![0]!.extensions).toMatchObject({ code: 'READ_ONLY_MODE' });
      expect(ran).toEqual([]);
    });

    it('a queued mutation keeps an intent and says so; a dropped one is discarded; neither resolver runs', async () => {
      const queued = await gql('mutation { importOrders(batch: "b-1") }');
      expect(queued.body.errors![0]!.extensions).toMatchObject({
        code: 'WRITE_QUEUED',
        intentId: expect.any(String),
        idempotencyKey: expect.any(String),
        statusUrl: expect.any(String),
        created: true,
      });
      const intent = await engine.getIntent(queued.body.errors![0]!.extensions!.intentId as string);
      expect(intent).toMatchObject({
        name: 'orders.import',
        payload: { batch: 'b-1' },
        surface: 'graphql',
        windowId,
      });
      const dropped = await gql('mutation { trackView(page: "/home") }');
      expect(dropped.body.errors![0]!.extensions).toMatchObject({ code: 'WRITE_DROPPED', windowId });
      expect(ran).toEqual([]);
    });
  });

  it('reports mutations with their policies to the inventory', () => {
    const graphql = engine.inventory().filter((e) => e.surface === 'graphql');
    expect(graphql).toEqual([
      expect.objectContaining({
        name: 'mutation createOrder',
        classification: 'write',
        policy: 'block',
        explicit: false,
        source: 'nestjs',
      }),
      expect.objectContaining({ name: 'mutation importOrders', policy: 'queue', explicit: true }),
      expect.objectContaining({
        name: 'mutation login',
        classification: 'write',
        policy: 'allow',
        explicit: true,
      }),
      expect.objectContaining({ name: 'mutation trackView', policy: 'drop', explicit: true }),
    ]);
  });
});
