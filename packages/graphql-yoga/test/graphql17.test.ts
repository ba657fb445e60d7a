// Must stay the first import: from here on this worker resolves every `graphql` to graphql 17.
import './graphql17.hooks.js';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import type { Harness } from './fixtures.js';

const require = createRequire(import.meta.url);
// Loaded after the hooks so they resolve to graphql 17 too.
const { harness, sdlSchema, codeFirstSchema } = await import('./fixtures.js');

let h: Harness | undefined;
afterEach(async () => {
  await h?.engine.close();
  h = undefined;
});

describe('graphql 17', () => {
  it('is what Yoga, graphql-tools and the test schemas run on in this file', async () => {
    const graphql = require('graphql');
    expect(graphql.versionInfo.major).toBe(17);
    expect((await import('graphql')).versionInfo.major).toBe(17);
    // Yoga's own copy: the version its introspection reports through the same module.
    const yogaGraphql = createRequire(require.resolve('graphql-yoga'))('graphql');
    expect(yogaGraphql.versionInfo.major).toBe(17);
    expect(yogaGraphql).toBe(graphql);
  });

  describe.each([
    ['SDL-first', sdlSchema],
    ['code-first', codeFirstSchema],
  ])('%s schema', (_, schema) => {
    it('refuses, queues, drops and allows like on graphql 16', async () => {
      h = await harness({ schema });
      expect(await h.gql('mutation { deleteOrder(id: 1) }')).toMatchObject({
        status: 200,
        body: { data: { deleteOrder: true } },
      });
      await h.begin();
      expect(await h.gql('{ hello }')).toMatchObject({ status: 200, body: { data: { hello: 'world' } } });

      const refused = await h.gql('mutation { signIn(user: "a") deleteOrder(id: 1) }');
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(refused.body).toEqual({
        errors: [
          {
            message: 'Orders are read-only during the database migration.',
            extensions: expect.objectContaining({ code: 'READ_ONLY_MODE', fields: ['Mutation.deleteOrder'] }),
          },
        ],
      });
      expect(refused.body.errors[0].extensions.http).toBeUndefined();

      const queued = await h.gql('mutation ($i: OrderInput!) { createOrder(input: $i) { id } }', {
        i: { requestId: 'g17', item: 'tea' },
      });
      expect(queued.status).toBe(202);
      expect(queued.body.data).toEqual({ createOrder: null });
      expect(queued.body.errors[0]).toMatchObject({
        path: ['createOrder'],
        extensions: { code: 'WRITE_QUEUED', idempotencyKey: 'g17' },
      });
      expect((await h.engine.getIntent(queued.body.errors[0].extensions.intentId))?.payload).toEqual({
        input: { requestId: 'g17', item: 'tea' },
      });

      const dropped = await h.gql('mutation { trackView(page: "/") }');
      expect(dropped.body.errors[0].extensions.code).toBe('WRITE_DROPPED');
      expect(await h.gql('mutation { signIn(user: "b") }')).toMatchObject({
        status: 200,
        body: { data: { signIn: 'token-for-b' } },
      });
      expect(h.rec.calls).toEqual(['deleteOrder', 'signIn']);
    });
  });
});
