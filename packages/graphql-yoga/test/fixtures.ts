import { makeExecutableSchema } from '@graphql-tools/schema';
import { createQuiesce, type QuiesceEngine, type QuiesceOptions } from '@quiesce/core';
import {
  GraphQLBoolean,
  GraphQLID,
  GraphQLInputObjectType,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
} from 'graphql';
import { createYoga, type Plugin, type YogaServerOptions } from 'graphql-yoga';
import { type QuiesceYogaOptions, quiesceDirectives, useQuiesce } from '../src/index.js';

export const typeDefs = /* GraphQL */ `
  type Order {
    id: ID!
    item: String!
  }
  input OrderInput {
    requestId: String!
    item: String!
  }
  type Query {
    hello: String
    orders: [Order!]!
    touchLastSeen: Boolean @writes
    exportReport: String @writes @queueDuringReadOnly
  }
  type Mutation {
    createOrder(input: OrderInput!): Order @queueDuringReadOnly(key: "input.requestId")
    placeOrder(item: String!): Order @queueDuringReadOnly
    signIn(user: String!): String @allowDuringReadOnly
    trackView(page: String!): Boolean @dropDuringReadOnly
    deleteOrder(id: ID!): Boolean
    slowWrite: Boolean
  }
  type Subscription {
    ticks(count: Int!): Int!
  }
`;

/** What the resolvers did: a refused or queued field must leave no trace here. */
export interface Recorder {
  calls: string[];
  orders: { id: string; item: string }[];
  /** Resolves the pending `slowWrite`. */
  releaseSlowWrite: () => void;
  /** Resolves once `slowWrite` has started. */
  slowWriteStarted: Promise<void>;
  /** What `slowWrite` waits for, and how it says it started. */
  slowWriteGate: Promise<void>;
  markSlowWriteStarted: () => void;
  /** The `ticks` subscription yields its first tick, then waits for this before the others. */
  ticksGate: Promise<void>;
  releaseTicks: () => void;
}

export function createRecorder(): Recorder {
  let release!: () => void;
  let markStarted!: () => void;
  const slowWriteGate = new Promise<void>((r) => {
    release = r;
  });
  const slowWriteStarted = new Promise<void>((r) => {
    markStarted = r;
  });
  let releaseTicks!: () => void;
  const ticksGate = new Promise<void>((r) => {
    releaseTicks = r;
  });
  return {
    calls: [],
    orders: [],
    releaseSlowWrite: () => release(),
    slowWriteGate,
    slowWriteStarted,
    markSlowWriteStarted: () => markStarted(),
    ticksGate,
    releaseTicks,
  };
}

export function resolversFor(rec: Recorder) {
  const order = (item: string) => {
    const o = { id: String(rec.orders.length + 1), item };
    rec.orders.push(o);
    return o;
  };
  return {
    Query: {
      hello: () => 'world',
      orders: () => rec.orders,
      touchLastSeen: () => {
        rec.calls.push('touchLastSeen');
        return true;
      },
      exportReport: () => {
        rec.calls.push('exportReport');
        return 'report';
      },
    },
    Mutation: {
      createOrder: (_: unknown, { input }: { input: { item: string } }) => {
        rec.calls.push('createOrder');
        return order(input.item);
      },
      placeOrder: (_: unknown, { item }: { item: string }) => {
        rec.calls.push('placeOrder');
        return order(item);
      },
      signIn: (_: unknown, { user }: { user: string }) => {
        rec.calls.push('signIn');
        return `token-for-${user}`;
      },
      trackView: () => {
        rec.calls.push('trackView');
        return true;
      },
      deleteOrder: () => {
        rec.calls.push('deleteOrder');
        return true;
      },
      slowWrite: async () => {
        rec.calls.push('slowWrite');
        rec.markSlowWriteStarted();
        await rec.slowWriteGate;
        return true;
      },
    },
    Subscription: {
      ticks: {
        async *subscribe(_: unknown, { count }: { count: number }) {
          for (let i = 1; i <= count; i++) {
            // The test begins a window between the first tick and the others.
            if (i === 2) await rec.ticksGate;
            yield { ticks: i };
          }
        },
      },
    },
  };
}

export function sdlSchema(rec: Recorder) {
  return makeExecutableSchema({ typeDefs: [quiesceDirectives, typeDefs], resolvers: resolversFor(rec) });
}

/** The same schema built code-first with graphql-js classes; policies under `extensions.directives`. */
export function codeFirstSchema(rec: Recorder) {
  const r = resolversFor(rec);
  const Order = new GraphQLObjectType({
    name: 'Order',
    fields: {
      id: { type: new GraphQLNonNull(GraphQLID) },
      item: { type: new GraphQLNonNull(GraphQLString) },
    },
  });
  const OrderInput = new GraphQLInputObjectType({
    name: 'OrderInput',
    fields: {
      requestId: { type: new GraphQLNonNull(GraphQLString) },
      item: { type: new GraphQLNonNull(GraphQLString) },
    },
  });
  return new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: {
        hello: { type: GraphQLString, resolve: r.Query.hello },
        orders: { type: new GraphQLList(Order), resolve: r.Query.orders },
        touchLastSeen: {
          type: GraphQLBoolean,
          resolve: r.Query.touchLastSeen,
          extensions: { directives: { writes: {} } },
        },
      },
    }),
    mutation: new GraphQLObjectType({
      name: 'Mutation',
      fields: {
        createOrder: {
          type: Order,
          args: { input: { type: new GraphQLNonNull(OrderInput) } },
          resolve: r.Mutation.createOrder as any,
          extensions: { directives: { queueDuringReadOnly: { key: 'input.requestId' } } },
        },
        // The array convention (Pothos-style) of the same extension.
        signIn: {
          type: GraphQLString,
          args: { user: { type: new GraphQLNonNull(GraphQLString) } },
          resolve: r.Mutation.signIn as any,
          extensions: { directives: [{ name: 'allowDuringReadOnly', args: {} }] },
        },
        trackView: {
          type: GraphQLBoolean,
          args: { page: { type: new GraphQLNonNull(GraphQLString) } },
          resolve: r.Mutation.trackView,
          extensions: { directives: { dropDuringReadOnly: true } },
        },
        deleteOrder: {
          type: GraphQLBoolean,
          args: { id: { type: new GraphQLNonNull(GraphQLID) } },
          resolve: r.Mutation.deleteOrder,
        },
      },
    }),
  });
}

export interface Harness {
  engine: QuiesceEngine;
  yoga: ReturnType<typeof createYoga>;
  rec: Recorder;
  post: (body: unknown, headers?: Record<string, string>) => Promise<Response>;
  gql: (
    query: string,
    variables?: Record<string, unknown>,
    headers?: Record<string, string>,
  ) => Promise<{ status: number; headers: Headers; body: any }>;
  begin: () => Promise<void>;
}

export async function harness(
  options: {
    schema?: (rec: Recorder) => GraphQLSchema;
    engine?: QuiesceOptions;
    plugin?: QuiesceYogaOptions;
    yoga?: Partial<YogaServerOptions<any, any>>;
    /** Plugins placed before useQuiesce. */
    before?: Plugin[];
  } = {},
): Promise<Harness> {
  const rec = createRecorder();
  const engine = createQuiesce({ drainDeadlineMs: 10_000, ...options.engine });
  await engine.start();
  const yoga = createYoga({
    schema: (options.schema ?? sdlSchema)(rec),
    plugins: [...(options.before ?? []), useQuiesce(engine, options.plugin)],
    logging: false,
    ...options.yoga,
  });
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    Promise.resolve(
      yoga.fetch('http://yoga.test/graphql', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json',
          ...headers,
        },
        body: JSON.stringify(body),
      }),
    );
  return {
    engine,
    yoga,
    rec,
    post,
    async gql(query, variables, headers) {
      const res = await post({ query, variables }, headers);
      return { status: res.status, headers: res.headers, body: await res.json() };
    },
    async begin() {
      await engine.begin({
        reason: 'migration',
        message: 'Orders are read-only during the database migration.',
        endsAt: new Date(Date.now() + 120_000).toISOString(),
      });
    },
  };
}
