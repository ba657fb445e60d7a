import 'reflect-metadata';
import { Controller, Delete, Get, Module, Post, Put } from '@nestjs/common';
import { createQuiesce } from '@quiesce/core';
import { checkEnforcementInvariant, type InvariantRoute, invariantRuns } from '@quiesce/testkit';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  AllowDuringReadOnly,
  DropDuringReadOnly,
  QueueDuringReadOnly,
  Writes,
} from '../src/policyDecorators.js';
import { QuiesceModule } from '../src/quiesceModule.js';
import { PLATFORMS, type RunningApp, startNestApp } from './testApp.js';

// Issue #11's invariant against real Nest applications on Express and on Fastify, with a global
// prefix, params, a `:name.json` route declared before a guarded `:id`, decorators and rules.

const routes: InvariantRoute[] = [
  { id: 'login', method: 'POST', paths: ['/api/auth/login'], allowed: true },
  { id: 'hooks', method: 'POST', paths: ['/api/hooks/github'], allowed: true },
  { id: 'export', method: 'PUT', paths: ['/api/items/5.json'], allowed: true },
  { id: 'list', method: 'GET', paths: ['/api/orders'], allowed: true },
  { id: 'create', method: 'POST', paths: ['/api/orders'], allowed: false },
  { id: 'pay', method: 'POST', paths: ['/api/orders/7/pay'], allowed: false },
  { id: 'update', method: 'PUT', paths: ['/api/items/5', '/api/items/json'], allowed: false },
  { id: 'remove', method: 'DELETE', paths: ['/api/items/5'], allowed: false },
  { id: 'report', method: 'POST', paths: ['/api/reports/9'], allowed: false },
  { id: 'unsubscribe', method: 'GET', paths: ['/api/orders/unsubscribe'], allowed: false },
];

describe.each(PLATFORMS)('enforcement invariant (Nest on %s)', (platform) => {
  const hits: string[] = [];
  const engine = createQuiesce({
    soakMs: 0,
    heartbeatMs: 20,
    retryAfter: { jitterSeconds: 0 },
    rules: [
      { surface: 'http', method: 'POST', path: '/api/hooks/**', policy: 'allow' },
      { surface: 'http', method: 'POST', path: '/api/reports/:id', policy: 'drop' },
    ],
  });

  @Controller('auth')
  class AuthController {
    @AllowDuringReadOnly()
    @Post('login')
    login() {
      hits.push('login');
      return {};
    }
  }
  @Controller()
  class MiscController {
    @Post('hooks/:event')
    hook() {
      hits.push('hooks');
      return {};
    }
    @Post('reports/:id')
    report() {
      hits.push('report');
      return {};
    }
  }
  @Controller('items')
  class ItemsController {
    @AllowDuringReadOnly()
    @Put(':name.json')
    exportJson() {
      hits.push('export');
      return {};
    }
    @Put(':id')
    update() {
      hits.push('update');
      return {};
    }
    @DropDuringReadOnly()
    @Delete(':id')
    remove() {
      hits.push('remove');
      return {};
    }
  }
  @Controller('orders')
  class OrdersController {
    @Writes()
    @Get('unsubscribe')
    unsubscribe() {
      hits.push('unsubscribe');
      return {};
    }
    @Get()
    list() {
      hits.push('list');
      return {};
    }
    @Post()
    create() {
      hits.push('create');
      return {};
    }
    @QueueDuringReadOnly({ name: 'pay' })
    @Post(':id/pay')
    pay() {
      hits.push('pay');
      return {};
    }
  }
  @Module({
    imports: [QuiesceModule.forRoot({ engine, globalGuard: true })],
    controllers: [AuthController, MiscController, ItemsController, OrdersController],
  })
  class AppModule {}

  let running: RunningApp;
  beforeAll(async () => {
    running = await startNestApp(AppModule, platform, (app) => {
      app.setGlobalPrefix('api');
    });
    await engine.begin({
      reason: 'invariant',
      message: 'Paused',
      endsAt: new Date(Date.now() + 600_000).toISOString(),
    });
    await engine.waitForPhase('frozen');
  });
  afterAll(async () => {
    await running?.close();
    await engine.close();
  });

  it(`holds for ${invariantRuns()} generated requests (QUIESCE_INVARIANT_RUNS; CI: 10000)`, async () => {
    await checkEnforcementInvariant({
      url: running.url,
      routes,
      hits,
      // Express routes any letter case, a trailing slash and absolute-form like the plain path;
      // Fastify (default options) is case-sensitive and strict about the trailing slash.
      routedLikePlain:
        platform === 'express'
          ? { case: true, trailingSlash: true, spellings: ['absolute'] }
          : { case: false, trailingSlash: false, spellings: [] },
    });
  }, 600_000);
});
