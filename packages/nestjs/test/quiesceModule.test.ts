import type { AddressInfo } from 'node:net';
import {
  type ArgumentsHost,
  Catch,
  Controller,
  Get,
  Inject,
  Injectable,
  Logger,
  Module,
  Post,
} from '@nestjs/common';
import { APP_GUARD, BaseExceptionFilter, HttpAdapterHost } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { createQuiesce, type QuiesceEngine } from '@quiesce/core';
import { quiesceRouter } from '@quiesce/express';
import { describe, expect, it, vi } from 'vitest';
import {
  AllowDuringReadOnly,
  DropDuringReadOnly,
  QueueDuringReadOnly,
  Writes,
} from '../src/policyDecorators.js';
import { QuiesceModule } from '../src/quiesceModule.js';
import { ReadOnlyGuard } from '../src/readOnlyGuard.js';
import { QUIESCE } from '../src/tokens.js';
import { startMountedNestApp, startNestApp, streamingPost } from './testApp.js';

@Controller('things')
class ThingsController {
  @Get()
  list() {
    return [];
  }
  @Post()
  create() {
    return { created: true };
  }
  @Writes()
  @Get('touch')
  touch() {
    return { touched: true };
  }
  @QueueDuringReadOnly({ name: 'things.import' })
  @Post('import')
  importAll() {
    return {};
  }
  @DropDuringReadOnly()
  @Post('views')
  view() {
    return {};
  }
  @AllowDuringReadOnly()
  @Post('login')
  login() {
    return {};
  }
}

describe('QuiesceModule', () => {
  it('forRoot with core options creates the engine, injects it by QUIESCE, registers a global guard and closes it on shutdown', async () => {
    let injected: QuiesceEngine | undefined;
    @Injectable()
    class Probe {
      constructor(@Inject(QUIESCE) engine: QuiesceEngine) {
        injected = engine;
      }
    }
    @Module({
      imports: [QuiesceModule.forRoot({ globalGuard: true, soakMs: 0, refusalStatus: 423 })],
      controllers: [ThingsController],
      providers: [Probe],
    })
    class AppModule {}
    const running = await startNestApp(AppModule, 'express');
    const close = vi.spyOn(injected!, 'close');
    try {
      expect(injected).toBeDefined();
      const engine = injected!;
      await engine.begin({ reason: 'r', message: 'Global guard' });
      const res = await fetch(`${running.url}/things`, { method: 'POST' });
      expect(res.status).toBe(423);
      expect(await res.json()).toMatchObject({ code: 'READ_ONLY_MODE', status: 423, detail: 'Global guard' });
      expect((await fetch(`${running.url}/things`)).status).toBe(200);
      await engine.end();
    } finally {
      await running.close();
    }
    // The module created the engine, so it closed it.
    expect(close).toHaveBeenCalledOnce();
  });

  it('forRootAsync builds the options from injected providers; an engine it was given stays open', async () => {
    const engine = createQuiesce({ soakMs: 0 });
    const CONFIG = Symbol('config');
    @Module({ providers: [{ provide: CONFIG, useValue: { engine } }], exports: [CONFIG] })
    class ConfigModule {}
    @Module({
      imports: [
        QuiesceModule.forRootAsync({
          imports: [ConfigModule],
          inject: [CONFIG],
          useFactory: async (config: { engine: QuiesceEngine }) => ({ engine: config.engine }),
          globalGuard: true,
        }),
      ],
      controllers: [ThingsController],
    })
    class AppModule {}
    const running = await startNestApp(AppModule, 'fastify');
    const close = vi.spyOn(engine, 'close');
    try {
      await engine.begin({ reason: 'r', message: 'Async' });
      expect((await fetch(`${running.url}/things`, { method: 'POST' })).status).toBe(503);
    } finally {
      await running.close();
    }
    expect(close).not.toHaveBeenCalled();
    await engine.end();
    await engine.close();
  });

  it('APP_GUARD with useClass: ReadOnlyGuard guards every route', async () => {
    const engine = createQuiesce({ soakMs: 0 });
    @Module({
      imports: [QuiesceModule.forRoot({ engine })],
      controllers: [ThingsController],
      providers: [{ provide: APP_GUARD, useClass: ReadOnlyGuard }],
    })
    class AppModule {}
    const running = await startNestApp(AppModule, 'express');
    try {
      await engine.begin({ reason: 'r', message: 'm' });
      expect((await fetch(`${running.url}/things`, { method: 'POST' })).status).toBe(503);
      expect((await fetch(`${running.url}/things/touch`)).status).toBe(503);
      expect((await fetch(`${running.url}/things/login`, { method: 'POST' })).status).toBe(201);
      // The app's own APP_GUARD registration is found: refused before the body is read.
      expect((await streamingPost(`${running.url}/things`)).statusCode).toBe(503);
      await engine.end();
    } finally {
      await running.close();
      await engine.close();
    }
  });

  it('dry-run: nothing is refused, the would-be refusals are counted', async () => {
    const engine = createQuiesce({ soakMs: 0, dryRun: true });
    @Module({
      imports: [QuiesceModule.forRoot({ engine, globalGuard: true })],
      controllers: [ThingsController],
    })
    class AppModule {}
    const running = await startNestApp(AppModule, 'fastify');
    try {
      await engine.begin({ reason: 'r', message: 'm' });
      expect((await fetch(`${running.url}/things`, { method: 'POST' })).status).toBe(201);
      expect((await engine.status()).counters.dryRun).toMatchObject({ http: 1 });
      await engine.end();
    } finally {
      await running.close();
      await engine.close();
    }
  });

  it('reports read outcomes to the read-health watcher', async () => {
    const engine = createQuiesce();
    @Module({
      imports: [QuiesceModule.forRoot({ engine, globalGuard: true })],
      controllers: [ThingsController],
    })
    class AppModule {}
    const running = await startNestApp(AppModule, 'express');
    try {
      for (let i = 0; i < 3; i++) await (await fetch(`${running.url}/things`)).text();
      expect((await engine.status()).readHealth.baseline.count).toBe(3);
    } finally {
      await running.close();
      await engine.close();
    }
  });

  it('reports handlers and their policies to engine.inventory(), with the global prefix', async () => {
    const engine = createQuiesce({ rules: [{ path: '/api/things', method: 'POST', policy: 'drop' }] });
    @Module({ imports: [QuiesceModule.forRoot({ engine })], controllers: [ThingsController] })
    class AppModule {}
    const running = await startNestApp(AppModule, 'express', (app) => {
      app.setGlobalPrefix('api');
    });
    try {
      const entries = engine.inventory().filter((e) => e.source === 'nestjs');
      const byName = Object.fromEntries(entries.map((e) => [e.name, e]));
      expect(Object.keys(byName).sort()).toEqual([
        'GET /api/things/touch',
        'POST /api/things',
        'POST /api/things/import',
        'POST /api/things/login',
        'POST /api/things/views',
      ]);
      expect(byName['POST /api/things']).toMatchObject({
        surface: 'http',
        method: 'POST',
        classification: 'write',
        policy: 'block',
        explicit: false,
      });
      expect(byName['GET /api/things/touch']).toMatchObject({
        classification: 'write',
        policy: 'block',
        explicit: true,
      });
      expect(byName['POST /api/things/import']).toMatchObject({
        policy: 'queue',
        explicit: true,
        details: { controller: 'ThingsController', handler: 'importAll' },
      });
      expect(byName['POST /api/things/views']).toMatchObject({ policy: 'drop', explicit: true });
      expect(byName['POST /api/things/login']).toMatchObject({ policy: 'allow', explicit: true });
      // And the prefixed name is the one the guard decides with.
      expect((await fetch(`${running.url}/api/things`, { method: 'POST' })).status).toBe(201);
    } finally {
      await running.close();
      await engine.close();
    }
  });

  it('mountPath: a Nest app mounted in an outer Express app reports and decides with the path clients call', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => {});
    // Rules are relative to the mount point (or `pathFrom: 'root'`): the inventory and the guard both see them.
    const engine = createQuiesce({
      soakMs: 0,
      rules: [
        { path: '/api/things/views', method: 'POST', policy: 'drop' },
        { path: '/nest/api/things/other', method: 'POST', policy: 'queue', pathFrom: 'root' },
      ],
    });
    @Module({
      imports: [QuiesceModule.forRoot({ engine, mountPath: '/nest/', globalGuard: true })],
      controllers: [ThingsController],
    })
    class AppModule {}
    const running = await startMountedNestApp(AppModule, '/nest', (app) => {
      app.setGlobalPrefix('api');
    });
    try {
      const entries = engine.inventory().filter((e) => e.source === 'nestjs');
      expect(entries.map((e) => `${e.name} ${e.policy}`).sort()).toEqual([
        'GET /nest/api/things/touch block',
        'POST /nest/api/things block',
        'POST /nest/api/things/import queue',
        'POST /nest/api/things/login allow',
        'POST /nest/api/things/views drop',
      ]);
      expect(entries.find((e) => e.name === 'POST /nest/api/things')).toMatchObject({
        path: '/nest/api/things',
      });
      expect((await fetch(`${running.url}/nest/api/things`, { method: 'POST' })).status).toBe(201);
      expect(warn).not.toHaveBeenCalled();

      await engine.begin({ reason: 'r', message: 'Upgrade' });
      // Matched before the body is read, under the mount path.
      expect((await streamingPost(`${running.url}/nest/api/things`)).statusCode).toBe(503);
      const dropped = await fetch(`${running.url}/nest/api/things/views`, { method: 'POST' });
      expect(dropped.status).toBe(202);
      expect(await dropped.json()).toMatchObject({ code: 'WRITE_DROPPED' });
      await engine.end();
    } finally {
      warn.mockRestore();
      await running.close();
      await engine.close();
    }
  });

  it('mountPath on Fastify (behind a proxy that strips /nest): names and rules carry it, writes are still decided before the body', async () => {
    const engine = createQuiesce({
      soakMs: 0,
      rules: [{ path: '/things/views', method: 'POST', policy: 'drop' }],
    });
    @Module({
      imports: [QuiesceModule.forRoot({ engine, mountPath: '/nest', globalGuard: true })],
      controllers: [ThingsController],
    })
    class AppModule {}
    const running = await startNestApp(AppModule, 'fastify');
    try {
      const names = engine.inventory().map((e) => `${e.name} ${e.policy}`);
      expect(names).toContain('POST /nest/things block');
      expect(names).toContain('POST /nest/things/views drop');
      await engine.begin({ reason: 'r', message: 'Upgrade' });
      expect((await streamingPost(`${running.url}/things`)).statusCode).toBe(503);
      expect((await fetch(`${running.url}/things/views`, { method: 'POST' })).status).toBe(202);
      await engine.end();
    } finally {
      await running.close();
      await engine.close();
    }
  });

  it('without mountPath, a mounted app still decides before the body; its names lack the mount path, and it warns once', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => {});
    const engine = createQuiesce({ soakMs: 0 });
    @Module({
      imports: [QuiesceModule.forRoot({ engine, globalGuard: true })],
      controllers: [ThingsController],
    })
    class AppModule {}
    const running = await startMountedNestApp(AppModule, '/nest');
    try {
      expect(engine.inventory().map((e) => e.name)).toContain('POST /things');
      expect((await fetch(`${running.url}/nest/things`, { method: 'POST' })).status).toBe(201);
      expect((await fetch(`${running.url}/nest/things`)).status).toBe(200);
      expect(warn.mock.calls).toEqual([[expect.stringMatching(/mounted under \/nest.*mountPath: '\/nest'/)]]);
      await engine.begin({ reason: 'r', message: 'Upgrade' });
      expect((await streamingPost(`${running.url}/nest/things`)).statusCode).toBe(503);
      await engine.end();
    } finally {
      warn.mockRestore();
      await running.close();
      await engine.close();
    }
  });

  it('principal: the bypass predicate sees it and queued intents keep it', async () => {
    @Module({
      imports: [
        QuiesceModule.forRoot({
          globalGuard: true,
          soakMs: 0,
          bypass: { principal: (who) => who === 'ops-oncall' },
          principal: (req: { headers: Record<string, string | undefined> }) => req.headers['x-user'],
        }),
      ],
      controllers: [ThingsController],
    })
    class AppModule {}
    const running = await startNestApp(AppModule, 'fastify');
    const engine = running.app.get<QuiesceEngine>(QUIESCE);
    try {
      await engine.begin({ reason: 'r', message: 'm' });
      const post = (user: string, path = '/things') =>
        fetch(`${running.url}${path}`, {
          method: 'POST',
          headers: { 'x-user': user, 'content-type': 'application/json' },
          body: '{"n":1}',
        });
      expect((await post('ops-oncall')).status).toBe(201);
      expect((await post('ann')).status).toBe(503);
      const queued = await post('ann', '/things/import');
      expect(queued.status).toBe(202);
      const { intentId } = (await queued.json()) as { intentId: string };
      expect(await engine.getIntent(intentId)).toMatchObject({ name: 'things.import', principal: 'ann' });
      await engine.end();
    } finally {
      await running.close();
    }
  });

  it("a controller's policy applies to its writes; its reads stay reads", async () => {
    @DropDuringReadOnly()
    @Controller('metrics')
    class MetricsController {
      @Get()
      read() {
        return { n: 1 };
      }
      @Post()
      record() {
        return { recorded: true };
      }
      @QueueDuringReadOnly()
      @Post('important')
      important() {
        return { recorded: true };
      }
    }
    const engine = createQuiesce({ soakMs: 0 });
    @Module({
      imports: [QuiesceModule.forRoot({ engine, globalGuard: true })],
      controllers: [MetricsController],
    })
    class AppModule {}
    const running = await startNestApp(AppModule, 'express');
    try {
      await engine.begin({ reason: 'r', message: 'm' });
      expect((await fetch(`${running.url}/metrics`)).status).toBe(200);
      expect(await (await fetch(`${running.url}/metrics`, { method: 'POST' })).json()).toMatchObject({
        code: 'WRITE_DROPPED',
      });
      expect(
        await (await fetch(`${running.url}/metrics/important`, { method: 'POST' })).json(),
      ).toMatchObject({
        code: 'WRITE_QUEUED',
      });
      const names = engine.inventory().map((e) => `${e.name} ${e.policy}`);
      expect(names).toEqual(['POST /metrics drop', 'POST /metrics/important queue']);
      await engine.end();
    } finally {
      await running.close();
      await engine.close();
    }
  });

  it('works in an app from @nestjs/testing (the guard decides, after the body)', async () => {
    const engine = createQuiesce({ soakMs: 0 });
    const moduleRef = await Test.createTestingModule({
      imports: [QuiesceModule.forRoot({ engine, globalGuard: true })],
      controllers: [ThingsController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    const url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    try {
      expect(app.get(QUIESCE)).toBe(engine);
      await engine.begin({ reason: 'r', message: 'Testing module' });
      const res = await fetch(`${url}/things`, {
        method: 'POST',
        body: '{}',
        headers: { 'content-type': 'application/json' },
      });
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ code: 'READ_ONLY_MODE', detail: 'Testing module' });
      await engine.end();
    } finally {
      await app.close();
      await engine.close();
    }
  });

  it.each(['express', 'fastify'] as const)(
    "an app's own catch-all filter on Nest's base filter still sends the refusal's status, headers and problem body (%s)",
    async (platform) => {
      const engine = createQuiesce({ soakMs: 0, retryAfter: { jitterSeconds: 0 } });
      const seen: unknown[] = [];
      @Catch()
      class EverythingFilter extends BaseExceptionFilter {
        override catch(exception: unknown, host: ArgumentsHost) {
          seen.push(exception);
          super.catch(exception, host);
        }
      }
      @Module({
        imports: [QuiesceModule.forRoot({ engine, globalGuard: true })],
        controllers: [ThingsController],
      })
      class AppModule {}
      const running = await startNestApp(AppModule, platform, (app) => {
        const { httpAdapter } = app.get(HttpAdapterHost);
        app.useGlobalFilters(new EverythingFilter(httpAdapter));
      });
      try {
        await engine.begin({
          reason: 'r',
          message: 'Behind your filter',
          endsAt: new Date(Date.now() + 60_000).toISOString(),
        });
        const res = await fetch(`${running.url}/things/touch`);
        expect(res.status).toBe(503);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(res.headers.get('cache-control')).toBe('no-store');
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(55);
        expect(await res.json()).toMatchObject({
          code: 'READ_ONLY_MODE',
          status: 503,
          detail: 'Behind your filter',
        });
        // The app's filter (not the module's) answered: the guard had set the headers already.
        expect(seen).toHaveLength(1);
        await engine.end();
      } finally {
        await running.close();
        await engine.close();
      }
    },
  );

  it("on Nest's Express platform, @quiesce/express's router serves the status URL of a queued write", async () => {
    const engine = createQuiesce({ soakMs: 0 });
    @Module({
      imports: [QuiesceModule.forRoot({ engine, globalGuard: true })],
      controllers: [ThingsController],
    })
    class AppModule {}
    const running = await startNestApp(AppModule, 'express', (app) => {
      app.use('/quiesce', quiesceRouter(app.get(QUIESCE), { admin: false }));
    });
    try {
      await engine.begin({ reason: 'r', message: 'Imports wait' });
      const state = (await (await fetch(`${running.url}/quiesce/state`)).json()) as { mode: string };
      expect(state).toMatchObject({ mode: 'read-only', message: 'Imports wait' });
      const queued = await fetch(`${running.url}/things/import`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"rows":3}',
      });
      expect(queued.status).toBe(202);
      const { statusUrl, intentId } = (await queued.json()) as { statusUrl: string; intentId: string };
      const status = await fetch(`${running.url}${statusUrl}`);
      expect(status.status).toBe(200);
      expect(await status.json()).toMatchObject({ id: intentId, status: 'queued' });
      await engine.end();
    } finally {
      await running.close();
      await engine.close();
    }
  });

  it('bad options fail with an error naming the field', () => {
    expect(() => QuiesceModule.forRoot({ engine: {} as QuiesceEngine })).toThrow(/options\.engine/);
    expect(() => QuiesceModule.forRoot({ principal: 'user' as never })).toThrow(/options\.principal/);
    expect(() => QuiesceModule.forRoot({ engine: createQuiesce(), soakMs: 5 } as never)).toThrow(
      /options\.soakMs is an engine option/,
    );
    expect(() => QuiesceModule.forRoot({ refusalStatus: 500 as never })).toThrow(/refusalStatus/);
    expect(() => QuiesceModule.forRoot({ mountPath: 'nest' })).toThrow(/options\.mountPath must be a path/);
    expect(() => QuiesceModule.forRoot({ mountPath: 5 as never })).toThrow(/options\.mountPath/);
    expect(() => QuiesceModule.forRootAsync({} as never)).toThrow(/useFactory/);
    expect(() => QueueDuringReadOnly({ idempotencyKey: 'cookie' as never })).toThrow(
      /options\.idempotencyKey/,
    );
    expect(() => QueueDuringReadOnly({ name: '' })).toThrow(/options\.name/);
  });
});
