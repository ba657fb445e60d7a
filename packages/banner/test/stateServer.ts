import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { QuiesceEngine } from '@quiesce/core';

/**
 * The banner's HTTP contract served from a real engine, for the browser test: `GET /quiesce/state`
 * and `GET /quiesce/events` (SSE, `event: state` on connect and on every change, `: ping`
 * heartbeats), plus a page that embeds the banner with its one-line script.
 */
export async function startStateServer(engine: QuiesceEngine, options: { port?: number; page: string }) {
  const bundle = readFileSync(new URL('../dist/quiesce-banner.global.js', import.meta.url));
  const clients = new Set<ServerResponse>();
  const view = () => {
    const w = engine.state.window;
    return JSON.stringify({
      mode: engine.readOnly ? 'read-only' : 'read-write',
      phase: w?.phase ?? null,
      version: engine.state.version,
      windowId: w?.id ?? null,
      message: w?.message ?? null,
      reason: w?.reason ?? null,
      startsAt: w?.startsAt ?? null,
      endsAt: w?.endsAt ?? null,
      endedAt: w?.endedAt ?? null,
      contact: w?.contact ?? null,
      serverTime: new Date().toISOString(),
    });
  };
  const push = () => {
    for (const res of clients) res.write(`event: state\ndata: ${view()}\n\n`);
  };
  const off = engine.on('state', push);
  const ping = setInterval(() => {
    for (const res of clients) res.write(': ping\n\n');
  }, 1000);

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/quiesce/state') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(view());
    } else if (path === '/quiesce/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      res.write(`event: state\ndata: ${view()}\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
    } else if (path === '/quiesce-banner.global.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    } else if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(options.page);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      off();
      clearInterval(ping);
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
