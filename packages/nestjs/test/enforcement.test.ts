import 'reflect-metadata';
import { Controller, Get, Module, Post } from '@nestjs/common';
import { createBypassToken, createQuiesce, type QuiesceEngine, type QuiesceOptions } from '@quiesce/core';
import { rawRequest } from '@quiesce/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { AllowDuringReadOnly, QuiesceModule, ReadOnlyGuard, Writes } from '../src/index.js';
import { PLATFORMS, type RunningApp, startNestApp } from './testApp.js';

/* The cases of issue #11 against real Nest applications on both platforms. */

const ran: string[] = [];

@ReadOnlyGuard()
@Controller('orders')
class OrdersController {
  // Declared first: Express dispatches `/orders/5.json` here, `/orders/5` to `:id`.
  @AllowDuringReadOnly()
  @Post(':name.json')
  exportJson() {
    ran.push('export');
    return { ok: 'export' };
  }
  @Post(':id')
  update() {
    ran.push('update');
    return { ok: 'update' };
  }
  @Writes()
  @Get('unsubscribe/now')
  unsubscribe() {
    ran.push('unsubscribe');
    return { ok: 'unsubscribe' };
  }
}

let running: RunningApp | undefined;
let engine: QuiesceEngine | undefined;
afterEach(async () => {
  await running?.close();
  await engine?.close();
  running = undefined;
  engine = undefined;
  ran.length = 0;
});

async function start(
  platform: (typeof PLATFORMS)[number],
  options: QuiesceOptions = {},
  module: { principal?: (req: unknown) => string | undefined; decideBeforeBody?: boolean } = {},
  configure?: Parameters<typeof startNestApp>[2],
) {
  engine = createQuiesce({ soakMs: 0, heartbeatMs: 20, retryAfter: { jitterSeconds: 0 }, ...options });
  const e = engine;
  @Module({ imports: [QuiesceModule.forRoot({ engine: e, ...module })], controllers: [OrdersController] })
  class AppModule {}
  running = await startNestApp(AppModule, platform, configure);
  await e.begin({ reason: 'test', message: 'Paused for a test' });
  await e.waitForPhase('frozen');
  return running.url;
}

describe.each(PLATFORMS)('Nest on %s: one fail-closed path (#11)', (platform) => {
  it('the early decision never runs a guarded handler: POST /orders/5 is refused, /orders/5.json allowed', async () => {
    const url = await start(platform);
    expect((await rawRequest(url, 'POST', '/orders/5', { body: '{}' })).status).toBe(503);
    expect((await rawRequest(url, 'POST', '/orders/5.json', { body: '{}' })).status).toBe(201);
    expect(ran).toEqual(['export']);
  });

  it('a handler marked @Writes() stays refused as HEAD and in another letter case', async () => {
    const url = await start(platform);
    expect((await rawRequest(url, 'GET', '/orders/unsubscribe/now')).status).toBe(503);
    expect((await rawRequest(url, 'HEAD', '/orders/unsubscribe/now')).status).toBe(503);
    if (platform === 'express') {
      // Express routes case-insensitively; Fastify does not (it answers 404 without running anything).
      expect((await rawRequest(url, 'GET', '/ORDERS/UNSUBSCRIBE/NOW')).status).toBe(503);
    }
    expect(ran).toEqual([]);
  });

  it('a throwing principal function refuses the write with the normal refusal, never a 500', async () => {
    const url = await start(
      platform,
      {},
      {
        principal: () => {
          throw new Error('session store down');
        },
      },
    );
    const res = await rawRequest(url, 'POST', '/orders/5', { body: '{}' });
    expect(res.status).toBe(503);
    expect(JSON.parse(res.text)).toMatchObject({ code: 'READ_ONLY_MODE' });
    expect(ran).toEqual([]);
  });

  it("an app-supplied engine's bypass header is the one read", async () => {
    const secret = 'bypass-secret-0123456789';
    const url = await start(platform, { bypass: { secret, header: 'x-ops' } });
    const token = createBypassToken(secret, { sub: 'ops', expiresInMs: 60_000 });
    const headers = (name: string) => ({ body: '{}', headers: { [name]: token } });
    expect((await rawRequest(url, 'POST', '/orders/5', headers('x-quiesce-bypass'))).status).toBe(503);
    expect((await rawRequest(url, 'POST', '/orders/5', headers('x-ops'))).status).toBe(201);
    expect(ran).toEqual(['update']);
  });
});

describe('Nest on express: an early pass the handler disagrees with', () => {
  it('is refused (the early decision may only be stricter than the guard)', async () => {
    // Forge what a mistaken route table would leave: an early "allowed write" pass for a guarded handler.
    // Without the real early decision, so the forged pass is what the guard sees.
    const url = await start('express', {}, { decideBeforeBody: false }, (app) => {
      app.use((req: Record<symbol, unknown>, _res: unknown, next: () => void) => {
        req[Symbol.for('quiesce:nestjs-early-decision')] = {
          respond: null,
          decision: { outcome: 'proceed', classification: 'write', policy: 'allow', reason: 'allow' },
        };
        next();
      });
    });
    const res = await rawRequest(url, 'POST', '/orders/5', { body: '{}' });
    expect(res.status).toBe(503);
    expect(ran).toEqual([]);
  });
});
