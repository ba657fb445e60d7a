import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { QuiesceEngine } from '@quiesce/core';
import { quiesceRouter } from '@quiesce/express';
import express from 'express';

/**
 * A real Express app serving the banner's routes with `@quiesce/express`'s `quiesceRouter`
 * (`GET /quiesce/state`, `GET /quiesce/events`), a page that embeds the banner, and the bundle.
 */
export async function startStateServer(engine: QuiesceEngine, options: { port?: number; page: string }) {
  const bundle = readFileSync(new URL('../dist/quiesce-banner.global.js', import.meta.url));
  const router = quiesceRouter(engine, { admin: false, heartbeatMs: 1000, retryMs: 500 });
  const app = express();
  app.use('/quiesce', router);
  app.get('/quiesce-banner.global.js', (_req, res) => {
    res.type('text/javascript').send(bundle);
  });
  app.get('/', (_req, res) => {
    res.type('html').send(options.page);
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port ?? 0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      router.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
