import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { ContractAppInput, ContractPolicy } from '@quiesce/testkit';
import cors from 'cors';
import express, { type Express, type RequestHandler } from 'express';
import {
  allow,
  drop,
  type QuiesceRouterOptions,
  queue,
  quiesce,
  quiesceRouter,
  writes,
} from '../src/index.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

function helper(policy: ContractPolicy | undefined): RequestHandler[] {
  if (!policy) return [];
  switch (policy.kind) {
    case 'allow':
      return [allow()];
    case 'drop':
      return [drop()];
    case 'writes':
      return [writes()];
    case 'queue': {
      const key = policy.idempotencyKey;
      return [
        queue({
          name: policy.name,
          idempotencyKey:
            typeof key === 'function'
              ? (req, payload) => key({ headers: req.headers, body: payload.body })
              : key,
        }),
      ];
    }
  }
}

export async function listen(app: Express): Promise<{ url: string; close(): Promise<void> }> {
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The contract suite's app: cors → quiesce → express.json() → the quiesce router → the routes. */
export async function buildExpressApp(
  { engine, routes, cors: corsOptions }: ContractAppInput,
  router: Partial<QuiesceRouterOptions> = {},
) {
  const app = express();
  app.use(cors(corsOptions));
  app.use(quiesce(engine));
  app.use(express.json({ type: ['application/json', 'application/*+json'] }));
  app.use(
    '/quiesce',
    quiesceRouter(engine, {
      adminToken: ADMIN_TOKEN,
      heartbeatMs: 15_000,
      ...router,
    } as QuiesceRouterOptions),
  );
  for (const r of routes) {
    const m = r.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete';
    app[m](r.path, ...helper(r.policy), async (req, res) => {
      res.json(await r.handle({ method: req.method, path: req.path, headers: req.headers, body: req.body }));
    });
  }
  return listen(app);
}
