import { AbstractGraphQLDriver, type GqlModuleOptions } from '@nestjs/graphql';
import { createYoga } from 'graphql-yoga';

/**
 * Test-only: the smallest Nest GraphQL driver, serving the schema Nest built with GraphQL Yoga on
 * the application's own HTTP server (Express or Fastify). The resolver context is `{ req, res }` on
 * Express and `{ req, reply }` on Fastify, as Nest's own drivers give it.
 */
export class YogaTestDriver extends AbstractGraphQLDriver<GqlModuleOptions> {
  async start(options: GqlModuleOptions): Promise<void> {
    const path = options.path ?? '/graphql';
    const adapter = this.httpAdapterHost.httpAdapter;
    const yoga = createYoga<Record<string, any>>({
      schema: options.schema!,
      graphqlEndpoint: path,
      logging: false,
      maskedErrors: true,
    });
    if (adapter.getType() === 'fastify') {
      const fastify = adapter.getInstance();
      fastify.route({
        url: path,
        method: ['GET', 'POST', 'OPTIONS'],
        handler: async (req: any, reply: any) => {
          const response = await yoga.handleNodeRequestAndResponse(req, reply, { req, reply });
          for (const [key, value] of response.headers) reply.header(key, value);
          reply.status(response.status);
          reply.send(Buffer.from(await response.arrayBuffer()));
          return reply;
        },
      });
    } else {
      adapter.getInstance().use(path, yoga);
    }
  }

  async stop(): Promise<void> {}
}
