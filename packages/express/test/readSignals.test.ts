import { attachReadSignals, createQuiesce } from '@quiesce/core';
import { contractRequest } from '@quiesce/testkit';
import express from 'express';
import { expect, it } from 'vitest';
import { quiesce } from '../src/index.js';
import { listen } from './expressApp.js';

it('a route attaches read-quality signals to its response; the timed read reports them (#18)', async () => {
  const engine = createQuiesce({ soakMs: 0 });
  await engine.start();
  const app = express();
  app.use(quiesce(engine));
  app.get('/answer', (req, res) => {
    attachReadSignals(res, { deltaS: Number(req.query.d), lambda: 0.9 });
    res.json({ answer: 42 });
  });
  const server = await listen(app);
  try {
    for (const d of [0.1, 0.2, 0.3]) await contractRequest(server.url, 'GET', `/answer?d=${d}`);
    await expect.poll(async () => (await engine.status()).readHealth.signals.deltaS?.baseline.count).toBe(3);
    const { signals } = (await engine.status()).readHealth;
    expect(signals.deltaS!.baseline).toMatchObject({ min: 0.1, max: 0.3 });
    expect(signals.deltaS!.baseline.mean).toBeCloseTo(0.2, 10);
    expect(signals.lambda!.baseline).toMatchObject({ count: 3, mean: 0.9 });
  } finally {
    await server.close();
    await engine.close();
  }
});
