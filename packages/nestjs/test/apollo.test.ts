import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { Module } from '@nestjs/common';
import { Args, GraphQLModule, Mutation, Query, Resolver } from '@nestjs/graphql';
import { createQuiesce } from '@quiesce/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AllowDuringReadOnly } from '../src/policyDecorators.js';
import { QuiesceModule } from '../src/quiesceModule.js';
import { ReadOnlyGuard } from '../src/readOnlyGuard.js';
import { PLATFORMS, type Platform, type RunningApp, startNestApp } from './testApp.js';

// The real Apollo driver (@nestjs/apollo 14, @apollo/server 5) on Nest's Express and Fastify platforms.

const typeDefs = /* GraphQL */ `
  type Order { id: ID!, sku: String! }
  type Query { orders: [Order!]! }
  type Mutation {
    createOrder(sku: String!): Order!
    login(user: String!): String!
  }
`;

interface GraphqlResult {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, unknown> }>;
}

function apolloApp(platform: Platform, driverOptions: Partial<ApolloDriverConfig>) {
  const engine = createQuiesce({ soakMs: 0, retryAfter: { jitterSeconds: 0 } });
  const ran: string[] = [];

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

  @Module({
    imports: [
      QuiesceModule.forRoot({ engine }),
      GraphQLModule.forRoot<ApolloDriverConfig>({
        driver: ApolloDriver,
        typeDefs,
        graphiql: false,
        includeStacktraceInErrorResponses: false,
        ...driverOptions,
      }),
    ],
    providers: [OrdersResolver],
  })
  class AppModule {}

  const state = { engine, ran, running: undefined as RunningApp | undefined, windowId: '' };
  const gql = async (query: string) => {
    const res = await fetch(`${state.running!.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query }),
    });
    return { res, body: (await res.json()) as GraphqlResult };
  };
  beforeAll(async () => {
    state.running = await startNestApp(AppModule, platform);
    state.windowId = (
      await engine.begin({
        reason: 'r',
        message: 'Database upgrade',
        endsAt: new Date(Date.now() + 60_000).toISOString(),
      })
    ).id;
  });
  afterAll(async () => {
    await state.running?.close();
    await engine.close();
  });
  beforeEach(() => {
    ran.length = 0;
  });
  return { state, gql };
}

describe.each(PLATFORMS)('ReadOnlyGuard with the Apollo driver (Nest %s)', (platform) => {
  const { state, gql } = apolloApp(platform, { preserveHttpStatusForExecutionErrors: false });

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
      extensions: { code: 'READ_ONLY_MODE', windowId: state.windowId, retryAfter: expect.any(Number) },
    });
    // Apollo takes the status and headers from extensions.http and leaves it out of the body.
    expect(body.errors![0]!.extensions).not.toHaveProperty('http');
    expect(state.ran).toEqual([]);
  });

  it('refuses a mutation whole: an allowed field selected with a refused one does not run either', async () => {
    const { res, body } = await gql('mutation { login(user: "bob") createOrder(sku: "B") { id } }');
    expect(res.status).toBe(503);
    expect(body.data).toBeNull();
    expect(body.errors!.map((e) => e.extensions?.code)).toEqual(['READ_ONLY_MODE']);
    expect(state.ran).toEqual([]);
  });

  it('runs queries', async () => {
    const { res, body } = await gql('{ orders { id sku } }');
    expect(res.status).toBe(200);
    expect(body).toEqual({ data: { orders: [{ id: '1', sku: 'A' }] } });
    expect(state.ran).toEqual(['orders']);
  });

  it('runs an allowed mutation', async () => {
    const { res, body } = await gql('mutation { login(user: "ann") }');
    expect(res.status).toBe(200);
    expect(body).toEqual({ data: { login: 'token-for-ann' } });
    expect(state.ran).toEqual(['login']);
  });
});

describe('the Apollo driver without preserveHttpStatusForExecutionErrors: false (Nest express)', () => {
  const { gql, state } = apolloApp('express', {});

  it('still refuses with READ_ONLY_MODE and Retry-After, but @nestjs/apollo resets the status to 200', async () => {
    const { res, body } = await gql('mutation { createOrder(sku: "A") { id } }');
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(55);
    expect(body.data).toBeNull();
    expect(body.errors![0]!.extensions).toMatchObject({ code: 'READ_ONLY_MODE' });
    expect(state.ran).toEqual([]);
  });
});
