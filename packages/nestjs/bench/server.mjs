// Bench servers (child process): three Nest 12 applications on Express, on 127.0.0.1 port 0.
//   bare     — no quiesce at all
//   noop     — a global guard that returns true (what any Nest guard costs)
//   guarded  — QuiesceModule + global ReadOnlyGuard, no window
//   frozen   — the same, with a window open (writes refused)
// Written in plain JS with decorators applied by hand: the bench runs on dist with no build step.
import 'reflect-metadata';
import { Body, Controller, Get, HttpCode, Module, Post } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { createQuiesce } from '@quiesce/core';
import { QuiesceModule } from '../dist/index.js';

function controller() {
  class BenchController {
    hello() {
      return 'hello';
    }
    create(body) {
      return { created: true, sku: body?.sku };
    }
  }
  const p = BenchController.prototype;
  Reflect.decorate([Get('hello')], p, 'hello', Object.getOwnPropertyDescriptor(p, 'hello'));
  Body()(p, 'create', 0);
  Reflect.decorate(
    [Post('orders'), HttpCode(201)],
    p,
    'create',
    Object.getOwnPropertyDescriptor(p, 'create'),
  );
  Reflect.decorate([Controller()], BenchController);
  return BenchController;
}

class NoopGuard {
  canActivate() {
    return true;
  }
}

function appModule(imports, providers = []) {
  class AppModule {}
  Reflect.decorate([Module({ imports, providers, controllers: [controller()] })], AppModule);
  return AppModule;
}

async function start(module) {
  const app = await NestFactory.create(module, new ExpressAdapter(), { logger: false });
  await app.listen(0, '127.0.0.1');
  return app.getHttpServer().address().port;
}

const guardedEngine = createQuiesce();
const frozenEngine = createQuiesce({ retryAfter: { jitterSeconds: 0 } });
const ports = {
  bare: await start(appModule([])),
  noop: await start(appModule([], [{ provide: APP_GUARD, useClass: NoopGuard }])),
  guarded: await start(appModule([QuiesceModule.forRoot({ engine: guardedEngine, globalGuard: true })])),
  frozen: await start(appModule([QuiesceModule.forRoot({ engine: frozenEngine, globalGuard: true })])),
};
await frozenEngine.begin({ reason: 'bench', message: 'Benchmarking refusals' });
process.stdout.write(`${JSON.stringify(ports)}\n`);
// The parent asks for this process's CPU time around each run ("cpu" line → microseconds), so
// figures can be compared per request of server CPU, which a busy machine disturbs less than req/s.
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  for (const line of chunk.split('\n')) {
    if (line.trim() === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.stdout.write(`${user + system}\n`);
    }
  }
});
// Stop with the parent.
process.stdin.on('end', () => process.exit(0));
