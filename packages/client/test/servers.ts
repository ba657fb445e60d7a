import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createQuiesce, type QuiesceEngine, type RetryAfterOptions } from '@quiesce/core';
import { queue, quiesce, quiesceRouter } from '@quiesce/express';
import { quiesceDirectives, useQuiesce } from '@quiesce/graphql-yoga';
import express from 'express';
import { createSchema, createYoga } from 'graphql-yoga';

/** A real Express app and a real Yoga server, both under one engine, counting what reaches them. */
export interface Servers {
  engine: QuiesceEngine;
  /** Base URL of the Express app (`/notes`, `/orders`, `/flaky`, `/quiesce/events`). */
  rest: string;
  /** URL of the Yoga endpoint. */
  graphql: string;
  /** Writes the handlers applied, in order. */
  applied: string[];
  /** Requests that reached each server, refused or not, by `METHOD path` (GraphQL: by operation name). */
  hits: Map<string, number>;
  hit(key: string): number;
  /** Opens a window ending `endsInMs` from now (`null`: no announced end) and waits until writes are refused. */
  begin(endsInMs: number | null, message?: string): Promise<void>;
  close(): Promise<void>;
}

const typeDefs = /* GraphQL */ `
  type Note {
    id: ID!
    text: String!
  }
  type Query {
    notes: [Note!]!
  }
  type Mutation {
    addNote(text: String!): Note!
    placeOrder(requestId: String!, item: String!): Boolean @queueDuringReadOnly(key: "requestId")
  }
`;

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function startServers(retryAfter?: RetryAfterOptions): Promise<Servers> {
  // By default Retry-After is capped at 1 s (no floor, no server jitter): a test waits about a
  // second per refusal.
  const engine = createQuiesce({
    soakMs: 0,
    heartbeatMs: 50,
    retryAfter: retryAfter ?? { floorSeconds: 0, capSeconds: 1, jitterSeconds: 0 },
  });
  await engine.start();
  const applied: string[] = [];
  const hits = new Map<string, number>();
  const count = (key: string) => hits.set(key, (hits.get(key) ?? 0) + 1);

  const app = express();
  app.use((req, _res, next) => {
    count(`${req.method} ${req.path}`);
    next();
  });
  app.use(quiesce(engine));
  app.use(express.json());
  const router = quiesceRouter(engine, { adminToken: 'client-test-admin-token-0123456789' });
  app.use('/quiesce', router);
  app.post('/notes', (req, res) => {
    applied.push(`note:${req.body.text}`);
    res.status(201).json({ id: applied.length, text: req.body.text });
  });
  app.post('/orders', queue({ name: 'orders.create' }), (req, res) => {
    applied.push(`order:${req.body.item}`);
    res.status(201).json({ ok: true });
  });
  // A 503 that is not quiesce's: an upstream outage, where the write may or may not have happened.
  let flakyGets = 0;
  app.all('/flaky', (req, res) => {
    if (req.method === 'GET' && ++flakyGets > 1) {
      res.json({ ok: true, gets: flakyGets });
      return;
    }
    res
      .status(503)
      .set('retry-after', '0')
      .json({ type: 'about:blank', title: 'Upstream down', status: 503, code: 'UPSTREAM_DOWN' });
  });
  const restServer = createServer(app);
  const rest = await listen(restServer);

  const yoga = createYoga({
    schema: createSchema({
      typeDefs: [quiesceDirectives, typeDefs],
      resolvers: {
        Query: { notes: () => [] },
        Mutation: {
          addNote: (_: unknown, { text }: { text: string }) => {
            applied.push(`note:${text}`);
            return { id: String(applied.length), text };
          },
          placeOrder: (_: unknown, { item }: { item: string }) => {
            applied.push(`order:${item}`);
            return true;
          },
        },
      },
    }),
    plugins: [
      useQuiesce(engine),
      {
        onParams({ params }) {
          count(`graphql ${params.operationName ?? 'anonymous'}`);
        },
      },
    ],
    logging: false,
  });
  const graphqlServer = createServer(yoga);
  const graphql = `${await listen(graphqlServer)}/graphql`;

  const close = async (server: Server) => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return {
    engine,
    rest,
    graphql,
    applied,
    hits,
    hit: (key) => hits.get(key) ?? 0,
    async begin(endsInMs, message = 'Moving notes to the new database') {
      await engine.begin({
        reason: 'client test',
        message,
        ...(endsInMs === null ? {} : { endsAt: new Date(Date.now() + endsInMs).toISOString() }),
      });
      await engine.waitForPhase('frozen');
    },
    async close() {
      router.close();
      await close(restServer);
      await close(graphqlServer);
      await engine.close();
    },
  };
}

/**
 * Ends the window when the client reports its first refusal (its `onRetry`), so the test drives the
 * end instead of timing it; `ended` resolves once the engine has ended it.
 */
export function endOnFirstRefusal(servers: Servers) {
  let ended: Promise<unknown> | undefined;
  const refusals: number[] = [];
  return {
    onRetry: (event: { refusal: unknown; delayMs: number }) => {
      if (!event.refusal) return;
      refusals.push(event.delayMs);
      ended ??= servers.engine.end();
    },
    refusals,
    ended: () => ended,
  };
}
