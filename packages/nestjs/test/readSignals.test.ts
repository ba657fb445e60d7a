import { Controller, Get, Module, Query, Req, Res } from '@nestjs/common';
import { attachReadSignals, createQuiesce, type ReadHealthReport, type SignalReport } from '@quiesce/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuiesceModule } from '../src/quiesceModule.js';
import { ReadOnlyGuard } from '../src/readOnlyGuard.js';
import { PLATFORMS, type RunningApp, startNestApp } from './testApp.js';

describe.each(PLATFORMS)('read-quality signals on Nest %s (#18)', (platform) => {
  const engine = createQuiesce({ soakMs: 0 });
  let running: RunningApp;

  @ReadOnlyGuard()
  @Controller('search')
  class SearchController {
    // The request, as most handlers have it.
    @Get()
    search(@Req() req: object, @Query('d') d: string) {
      attachReadSignals(req, { deltaS: Number(d), lambda: 0.9 });
      return { hits: [] };
    }
    // The response (Express's `res`, Fastify's reply) in passthrough mode, as Express handlers do.
    @Get('similar')
    similar(@Res({ passthrough: true }) res: object, @Query('d') d: string) {
      attachReadSignals(res, { deltaS: Number(d) });
      return { hits: [] };
    }
    // Both: later calls add to earlier ones.
    @Get('both')
    both(@Req() req: object, @Res({ passthrough: true }) res: object) {
      attachReadSignals(req, { lambda: 0.5 });
      attachReadSignals(res, { deltaS: 0.7 });
      return { hits: [] };
    }
  }

  @Module({ imports: [QuiesceModule.forRoot({ engine })], controllers: [SearchController] })
  class AppModule {}

  beforeAll(async () => {
    running = await startNestApp(AppModule, platform);
  });
  afterAll(async () => {
    await running.close();
    await engine.close();
  });

  const signal = async (name: string): Promise<SignalReport | undefined> =>
    (await engine.status()).readHealth.signals[name];

  it('signals attached to the request or the response ride on the timed read to the watcher, before and during a window; the closing record carries them', async () => {
    for (const d of [0.1, 0.2, 0.3]) expect((await fetch(`${running.url}/search?d=${d}`)).status).toBe(200);
    await expect.poll(async () => (await signal('deltaS'))?.baseline.count).toBe(3);
    const before = (await signal('deltaS'))!.baseline;
    expect(before).toMatchObject({ min: 0.1, max: 0.3 });
    expect(before.mean).toBeCloseTo(0.2, 10);
    expect((await signal('lambda'))!.baseline).toMatchObject({ count: 3, mean: 0.9 });

    await engine.begin({ reason: 'reindex', message: 'Search is read-only while we reindex.' });
    for (const d of [0.6, 0.8])
      expect((await fetch(`${running.url}/search/similar?d=${d}`)).status).toBe(200);
    expect((await fetch(`${running.url}/search/both`)).status).toBe(200);
    await expect.poll(async () => (await signal('deltaS'))?.window.count).toBe(3);
    expect((await signal('deltaS'))!.window).toMatchObject({ min: 0.6, max: 0.8 });
    expect((await signal('lambda'))!.window).toMatchObject({ count: 1, mean: 0.5 });

    await engine.end();
    const closed = await engine.waitForPhase('closed', { timeoutMs: 4000 });
    const recorded = (closed.report.readHealth as ReadHealthReport).signals;
    expect(recorded.deltaS!.window).toMatchObject({ count: 3, min: 0.6, max: 0.8 });
    expect(recorded.deltaS!.baseline).toMatchObject({ count: 3, min: 0.1, max: 0.3 });
  });
});
