import { createQuiesce } from '@quiesce/core';
import { contractRequest } from '@quiesce/testkit';
import express from 'express';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allow, drop, queue, quiesce, writes } from '../src/index.js';
import { findRoute, listRoutes } from '../src/routeTable.js';
import { listen } from './expressApp.js';

const METHODS = ['GET', 'POST', 'PUT', 'DELETE'] as const;
const MOUNTS = ['', '/api', '/api/v1'] as const;
const SEGMENTS = ['orders', 'items', ':id', 'x'] as const;
const HELPERS = { none: null, allow, drop, writes, queue: () => queue() } as const;

const routeArb = fc.record({
  mount: fc.constantFrom(...MOUNTS),
  method: fc.constantFrom(...METHODS),
  segments: fc.array(fc.constantFrom(...SEGMENTS), { minLength: 0, maxLength: 3 }),
  helper: fc.constantFrom(...(Object.keys(HELPERS) as Array<keyof typeof HELPERS>)),
});
const requestArb = fc.record({
  method: fc.constantFrom(...METHODS),
  path: fc
    .tuple(
      fc.constantFrom(...MOUNTS),
      fc.array(fc.constantFrom('orders', 'items', '7', 'x', 'v1', 'api'), { maxLength: 4 }),
    )
    .map(([m, s]) => `${m}/${s.join('/')}`),
});

describe('findRoute', () => {
  it('picks the route real Express dispatches, with its full pattern and helper', async () => {
    const engine = createQuiesce();
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(routeArb, { minLength: 1, maxLength: 8 }),
          fc.array(requestArb, { minLength: 1, maxLength: 6 }),
          async (routes, requests) => {
            const app = express();
            app.use(quiesce(engine, { inventory: false }));
            const routers = new Map<string, express.Router>();
            for (const m of MOUNTS.slice(1)) routers.set(m, express.Router());
            // Mount order: routers first (in MOUNTS order), then app-level routes; the same order both ways.
            const expected: string[] = [];
            routes.forEach((r, i) => {
              const path = `/${r.segments.map((s, j) => (s === ':id' ? `:p${i}_${j}` : s)).join('/')}`;
              const target = r.mount ? routers.get(r.mount)! : app;
              const helper = HELPERS[r.helper];
              const handlers = [
                ...(helper ? [helper()] : []),
                (_req: express.Request, res: express.Response) => {
                  res.json({ i });
                },
              ];
              target[r.method.toLowerCase() as 'get'](path, ...handlers);
              expected[i] = `${r.mount}${path === '/' && r.mount ? '' : path}` || '/';
            });
            app.use('/api', routers.get('/api')!);
            routers.get('/api')!.use('/v1', routers.get('/api/v1')!);
            const server = await listen(app);
            try {
              for (const q of requests) {
                const found = findRoute(app, q.method, q.path);
                const res = await contractRequest(server.url, q.method, q.path);
                if (res.status === 404) {
                  expect(found, `${q.method} ${q.path}`).toBeNull();
                  continue;
                }
                expect(res.status).toBe(200);
                const i = res.json().i as number;
                expect(found?.pattern, `${q.method} ${q.path} → route ${i}`).toBe(expected[i]);
                expect(found?.policy?.kind ?? 'none', `${q.method} ${q.path}`).toBe(routes[i]!.helper);
              }
            } finally {
              await server.close();
            }
          },
        ),
        { numRuns: 60 },
      );
    } finally {
      await engine.close();
    }
  }, 30_000);

  it('lists routes of arrays of paths and RegExps', () => {
    const app = express();
    app.post(['/a', '/b/:id'], drop(), (_req, res) => {
      res.end();
    });
    app.put(/^\/re\/\d+$/, (_req, res) => {
      res.end();
    });
    expect(listRoutes(app).map((r) => `${r.method} ${r.path} ${r.policy?.kind ?? '-'}`)).toEqual([
      'POST /a drop',
      'POST /b/:id drop',
      'PUT /^\\/re\\/\\d+$/ -',
    ]);
    expect(findRoute(app, 'POST', '/b/3')).toMatchObject({ pattern: '/b/:id', params: { id: '3' } });
    expect(findRoute(app, 'PUT', '/re/42')).toMatchObject({ policy: null });
    expect(findRoute({}, 'PUT', '/re/42')).toBeNull();
  });
});
