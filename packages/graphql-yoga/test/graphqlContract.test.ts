import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { GRAPHQL_CONTRACT_TYPEDEFS, runGraphqlContract } from '@quiesce/testkit';
import { createYoga } from 'graphql-yoga';
import { quiesceDirectives, useQuiesce } from '../src/index.js';

// The contract schema with the policies as directives.
const typeDefs = GRAPHQL_CONTRACT_TYPEDEFS.replace(
  'login(user: String!): String!',
  'login(user: String!): String! @allowDuringReadOnly',
)
  .replace('trackView(page: String!): Boolean', 'trackView(page: String!): Boolean @dropDuringReadOnly')
  .replace('placeOrder(item: String!): String', 'placeOrder(item: String!): String @queueDuringReadOnly');

runGraphqlContract({
  name: 'graphql-yoga',
  async build({ engine, ran, principal }) {
    const field = (name: string, value: unknown) => () => {
      ran(name);
      return value;
    };
    const schema = makeExecutableSchema({
      typeDefs: [quiesceDirectives, typeDefs],
      resolvers: {
        Query: { hello: field('hello', 'hello') },
        Mutation: {
          createOrder: field('createOrder', 'createOrder'),
          login: field('login', 'login'),
          trackView: field('trackView', true),
          placeOrder: field('placeOrder', 'placeOrder'),
        },
      },
    });
    const yoga = createYoga({
      schema,
      logging: false,
      plugins: [useQuiesce(engine, { principal, intentName: (f) => f.fieldName })],
    });
    const server = createServer(yoga);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      close: async () => {
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
      },
    };
  },
});
