import { createServer, type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import express from 'express';

export type Platform = 'express' | 'fastify';
export const PLATFORMS: Platform[] = ['express', 'fastify'];

export interface RunningApp {
  app: INestApplication;
  url: string;
  close(): Promise<void>;
}

/** Test-only: a real Nest application on the platform, listening on 127.0.0.1 port 0. */
export async function startNestApp(
  module: Function,
  platform: Platform,
  configure?: (app: INestApplication) => void | Promise<void>,
): Promise<RunningApp> {
  const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  const app = await NestFactory.create(module as never, adapter as never, {
    logger: false,
    abortOnError: false,
  });
  await configure?.(app);
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${address.port}`, close: () => app.close() };
}

/**
 * Test-only: a Nest application on Express, mounted under `mountPath` in an outer Express app (as
 * `outer.use('/nest', nestInstance)`), the outer app listening on 127.0.0.1 port 0.
 */
export async function startMountedNestApp(
  module: Function,
  mountPath: string,
  configure?: (app: INestApplication) => void | Promise<void>,
): Promise<RunningApp> {
  const instance = express();
  const app = await NestFactory.create(module as never, new ExpressAdapter(instance), {
    logger: false,
    abortOnError: false,
  });
  await configure?.(app);
  await app.init();
  const outer = express();
  outer.use(mountPath, instance);
  const server = createServer(outer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await app.close();
    },
  };
}

/**
 * Test-only: a POST whose chunked body starts and never ends. It gets an answer only if the server
 * decides without reading the body.
 */
export function streamingPost(url: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...headers },
    });
    req.on('response', (r) => {
      r.resume();
      r.on('end', () => {
        resolve(r);
        req.destroy();
      });
    });
    req.on('error', reject);
    req.setTimeout(3000, () => req.destroy(new Error('no answer within 3 s: the body was read first')));
    req.write('{"never":');
  });
}
