import { Body, Controller, Get, Inject, Module, Param, Post } from '@nestjs/common';
import { createBypassToken, createQuiesce, type QuiesceEngine } from '@quiesce/core';
import { waitForHeartbeats } from '@quiesce/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AllowDuringReadOnly,
  DropDuringReadOnly,
  QueueDuringReadOnly,
  Writes,
} from '../src/policyDecorators.js';
import { QuiesceModule } from '../src/quiesceModule.js';
import { ReadOnlyGuard } from '../src/readOnlyGuard.js';
import { QUIESCE } from '../src/tokens.js';
import { PLATFORMS, type RunningApp, startNestApp, streamingPost } from './testApp.js';

const SECRET = 'operator-secret';

interface Queued {
  intentId: string;
  idempotencyKey: string;
  statusUrl: string;
  created: boolean;
}
const ORIGIN = 'https://app.example';

function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

describe.each(PLATFORMS)('ReadOnlyGuard on Nest %s', (platform) => {
  const engine = createQuiesce({
    soakMs: 0,
    heartbeatMs: 20,
    retryAfter: { jitterSeconds: 0 },
    bypass: { secret: SECRET },
  });
  /** Which handlers actually ran. */
  const ran: string[] = [];
  let release: () => void = () => {};
  let entered: Promise<void> = Promise.resolve();
  let running: RunningApp;

  @ReadOnlyGuard()
  @Controller('orders')
  class OrdersController {
    constructor(@Inject(QUIESCE) readonly quiesce: QuiesceEngine) {}
    @Get()
    list() {
      ran.push('list');
      return { orders: [], readOnly: this.quiesce.readOnly };
    }
    @Post()
    create(@Body() body: unknown) {
      ran.push('create');
      return { created: body };
    }
    @Post('slow')
    async slow() {
      ran.push('slow');
      await new Promise<void>((resolve) => {
        release = resolve;
        entered = Promise.resolve();
      });
      return { slow: true };
    }
    @Writes()
    @Get('export')
    exportAll() {
      ran.push('export');
      return { exported: true };
    }
    @QueueDuringReadOnly()
    @Post(':id/items')
    addItem(@Param('id') id: string, @Body() body: unknown) {
      ran.push('addItem');
      return { id, body };
    }
    @QueueDuringReadOnly({ idempotencyKey: 'header', name: 'orders.pay' })
    @Post(':id/pay')
    pay() {
      ran.push('pay');
      return { paid: true };
    }
    @DropDuringReadOnly()
    @Post('events')
    event() {
      ran.push('event');
      return { recorded: true };
    }
    @AllowDuringReadOnly()
    @Post('login')
    login() {
      ran.push('login');
      return { token: 't' };
    }
  }

  @Controller('mixed')
  class MixedController {
    @ReadOnlyGuard()
    @Post('guarded')
    guarded() {
      ran.push('guarded');
      return { ok: true };
    }
    @Post('unguarded')
    unguarded() {
      ran.push('unguarded');
      return { ok: true };
    }
  }

  @Module({ imports: [QuiesceModule.forRoot({ engine })], controllers: [OrdersController, MixedController] })
  class AppModule {}

  beforeAll(async () => {
    running = await startNestApp(AppModule, platform, (app) => {
      app.enableCors({ origin: ORIGIN, exposedHeaders: ['Retry-After'] });
    });
  });
  afterAll(async () => {
    await running.close();
    await engine.close();
  });
  beforeEach(() => {
    ran.length = 0;
  });

  it('lets writes through with no window', async () => {
    const res = await post(`${running.url}/orders`, { a: 1 });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ created: { a: 1 } });
    expect(ran).toEqual(['create']);
  });

  describe('during a window', () => {
    let windowId = '';
    beforeEach(async () => {
      const w = await engine.begin({
        reason: 'migration',
        message: 'Upgrading the database',
        endsAt: new Date(Date.now() + 120_000).toISOString(),
      });
      windowId = w.id;
    });
    afterEach(async () => {
      await engine.end();
      await engine.waitForPhase('closed', { timeoutMs: 2000 });
    });

    it('refuses each unsafe method with 503, Retry-After, no-store and the problem body; the handler never runs', async () => {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
        const res = await fetch(`${running.url}/orders`, { method });
        // PUT/PATCH/DELETE have no route: 404 is Nest's answer before any guard runs.
        if (method !== 'POST') {
          expect(res.status).toBe(404);
          continue;
        }
        expect(res.status).toBe(503);
        expect(res.headers.get('content-type')).toBe('application/problem+json');
        expect(res.headers.get('cache-control')).toBe('no-store');
        const retryAfter = Number(res.headers.get('retry-after'));
        expect(retryAfter).toBeGreaterThanOrEqual(115);
        expect(retryAfter).toBeLessThanOrEqual(120);
        expect(await res.json()).toEqual({
          type: expect.any(String),
          title: expect.any(String),
          status: 503,
          detail: 'Upgrading the database',
          code: 'READ_ONLY_MODE',
          windowId,
          endsAt: expect.any(String),
          retryAfter,
        });
      }
      expect(ran).toEqual([]);
    });

    it('reads proceed and see the engine through @Inject(QUIESCE)', async () => {
      const res = await fetch(`${running.url}/orders`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ orders: [], readOnly: true });
      const head = await fetch(`${running.url}/orders`, { method: 'HEAD' });
      expect(head.status).toBe(200);
    });

    it('@Writes() makes a GET a write that is refused (by the guard, through the module filter)', async () => {
      const res = await fetch(`${running.url}/orders/export`);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json()).toMatchObject({ code: 'READ_ONLY_MODE', windowId });
      const page = await fetch(`${running.url}/orders/export`, { headers: { accept: 'text/html' } });
      expect(page.status).toBe(503);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await page.text()).toContain('Upgrading the database');
      expect(ran).toEqual([]);
    });

    it('@AllowDuringReadOnly() runs; @DropDuringReadOnly() answers 202 without running', async () => {
      const login = await post(`${running.url}/orders/login`, {});
      expect(login.status).toBe(201);
      const drop = await post(`${running.url}/orders/events`, { e: 1 });
      expect(drop.status).toBe(202);
      expect(await drop.json()).toMatchObject({ status: 'dropped', code: 'WRITE_DROPPED', windowId });
      expect(ran).toEqual(['login']);
    });

    it('@QueueDuringReadOnly() keeps an intent: 202, same key + same body → same intent, other body → 422', async () => {
      const first = await post(`${running.url}/orders/7/items`, { sku: 'A' }, { 'idempotency-key': 'k-1' });
      expect(first.status).toBe(202);
      const a = (await first.json()) as Queued;
      expect(a).toMatchObject({
        status: 'queued',
        intentId: expect.any(String),
        idempotencyKey: 'k-1',
        created: true,
      });
      expect(first.headers.get('location')).toBe(a.statusUrl);

      const again = await post(`${running.url}/orders/7/items`, { sku: 'A' }, { 'idempotency-key': 'k-1' });
      expect(again.status).toBe(202);
      expect(await again.json()).toMatchObject({ intentId: a.intentId, created: false });

      const other = await post(`${running.url}/orders/7/items`, { sku: 'B' }, { 'idempotency-key': 'k-1' });
      expect(other.status).toBe(422);
      expect(other.headers.get('content-type')).toBe('application/problem+json');
      expect(await other.json()).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', status: 422 });

      const intent = await engine.getIntent(a.intentId);
      expect(intent).toMatchObject({
        name: 'POST /orders/:id/items',
        idempotencyKey: 'k-1',
        payload: { method: 'POST', path: '/orders/7/items', body: { sku: 'A' }, params: { id: '7' } },
        windowId,
      });
      expect(ran).toEqual([]);
    });

    it('a queued write without a key gets one derived from its content', async () => {
      const one = (await (await post(`${running.url}/orders/8/items`, { sku: 'C' })).json()) as Queued;
      const two = (await (await post(`${running.url}/orders/8/items`, { sku: 'C' })).json()) as Queued;
      expect(one.idempotencyKey).toMatch(/^derived:/);
      expect(two.intentId).toBe(one.intentId);
      const three = (await (await post(`${running.url}/orders/8/items`, { sku: 'D' })).json()) as Queued;
      expect(three.intentId).not.toBe(one.intentId);
    });

    it("idempotencyKey: 'header' demands the client's key (400 naming it) and names the intent", async () => {
      const missing = await post(`${running.url}/orders/9/pay`, { amount: 5 });
      expect(missing.status).toBe(400);
      expect(await missing.json()).toMatchObject({
        code: 'IDEMPOTENCY_KEY_REQUIRED',
        field: 'Idempotency-Key',
      });
      const ok = await post(`${running.url}/orders/9/pay`, { amount: 5 }, { 'idempotency-key': 'pay-9' });
      expect(ok.status).toBe(202);
      const intent = await engine.getIntent(((await ok.json()) as Queued).intentId);
      expect(intent?.name).toBe('orders.pay');
      expect(ran).toEqual([]);
    });

    it("the app's CORS headers survive a refusal", async () => {
      const res = await post(`${running.url}/orders`, {}, { origin: ORIGIN });
      expect(res.status).toBe(503);
      expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      expect(res.headers.get('access-control-expose-headers')).toMatch(/retry-after/i);
      const preflight = await fetch(`${running.url}/orders`, {
        method: 'OPTIONS',
        headers: { origin: ORIGIN, 'access-control-request-method': 'POST' },
      });
      expect(preflight.status).toBeLessThan(300);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    });

    it('a browser asking for HTML gets a page; an API client the problem body', async () => {
      const res = await fetch(`${running.url}/orders`, {
        method: 'POST',
        headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await res.text()).toContain('Upgrading the database');
    });

    it('a valid bypass token lets an operator write; a forged one does not', async () => {
      const token = createBypassToken(SECRET, { sub: 'alice', expiresInMs: 60_000 });
      const ok = await post(`${running.url}/orders`, { a: 2 }, { 'x-quiesce-bypass': token });
      expect(ok.status).toBe(201);
      const forged = await post(`${running.url}/orders`, { a: 2 }, { 'x-quiesce-bypass': `${token}x` });
      expect(forged.status).toBe(503);
      expect(ran).toEqual(['create']);
    });

    it('a streaming upload is refused before its body is read, and its connection closed', async () => {
      const res = await streamingPost(`${running.url}/orders`, { origin: ORIGIN });
      expect(res.statusCode).toBe(503);
      expect(res.headers.connection).toBe('close');
      expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
      expect(ran).toEqual([]);
    });

    it('a handler-level @ReadOnlyGuard() guards that handler only', async () => {
      expect((await post(`${running.url}/mixed/guarded`, {})).status).toBe(503);
      expect((await post(`${running.url}/mixed/unguarded`, {})).status).toBe(201);
      expect(ran).toEqual(['unguarded']);
    });
  });

  it('an in-flight write holds the window in freezing until it finishes', async () => {
    const slow = post(`${running.url}/orders/slow`, {});
    await expect.poll(() => ran.includes('slow')).toBe(true);
    await entered;
    await engine.begin({ reason: 'r', message: 'Frozen soon' });
    expect(engine.phase).toBe('freezing');
    // Three heartbeats later that acknowledge the freeze and still report the write, the window must
    // still be freezing.
    const freezeVersion = engine.window!.freezeVersion ?? 0;
    await waitForHeartbeats(
      engine,
      3,
      'acknowledging the freeze with the write in flight',
      (self) => self.ackedVersion >= freezeVersion && self.inFlight === 1,
    );
    expect(engine.phase).toBe('freezing');
    expect((await engine.status()).inFlight.count).toBe(1);
    release();
    expect((await slow).status).toBe(201);
    await engine.waitForPhase('frozen', { timeoutMs: 2000 });
    expect((await engine.status()).inFlight.count).toBe(0);
    await engine.end();
    await engine.waitForPhase('closed', { timeoutMs: 2000 });
  });
});
