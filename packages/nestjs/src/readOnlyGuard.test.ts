import { Body, Controller, Get, Inject, Module, Post } from '@nestjs/common';
import { createQuiesce, type QuiesceEngine } from '@quiesce/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuiesceModule } from './quiesceModule.js';
import { ReadOnlyGuard } from './readOnlyGuard.js';
import { PLATFORMS, type RunningApp, startNestApp } from './testApp.js';
import { QUIESCE } from './tokens.js';

describe.each(PLATFORMS)('ReadOnlyGuard on Nest %s', (platform) => {
  const engine = createQuiesce({ soakMs: 0, retryAfter: { jitterSeconds: 0 } });
  let running: RunningApp;

  @ReadOnlyGuard()
  @Controller('orders')
  class OrdersController {
    constructor(@Inject(QUIESCE) readonly quiesce: QuiesceEngine) {}
    @Get()
    list() {
      return { orders: [], readOnly: this.quiesce.readOnly };
    }
    @Post()
    create(@Body() body: unknown) {
      return { created: body };
    }
  }

  @Module({ imports: [QuiesceModule.forRoot({ engine })], controllers: [OrdersController] })
  class AppModule {}

  beforeAll(async () => {
    running = await startNestApp(AppModule, platform);
  });
  afterAll(async () => {
    await running.close();
    await engine.close();
  });

  it('refuses a POST during a window with 503, Retry-After and the problem body; GET proceeds', async () => {
    const ok = await fetch(`${running.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(ok.status).toBe(201);
    expect(await ok.json()).toEqual({ created: { a: 1 } });

    const w = await engine.begin({
      reason: 'migration',
      message: 'Upgrading the database',
      endsAt: new Date(Date.now() + 60_000).toISOString(),
    });
    const refused = await fetch(`${running.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(refused.headers.get('cache-control')).toBe('no-store');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(55);
    expect(await refused.json()).toMatchObject({
      code: 'READ_ONLY_MODE',
      status: 503,
      detail: 'Upgrading the database',
      windowId: w.id,
    });

    const read = await fetch(`${running.url}/orders`);
    expect(read.status).toBe(200);
    expect(await read.json()).toEqual({ orders: [], readOnly: true });
    await engine.end();
  });
});
