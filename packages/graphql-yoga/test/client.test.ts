import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClientError, GraphQLClient } from 'graphql-request';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, harness } from './fixtures.js';

let h: Harness | undefined;
let server: Server | undefined;
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  await h?.engine.close();
  server = undefined;
  h = undefined;
});

async function listen(of: Harness): Promise<string> {
  server = createServer(of.yoga);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}

describe('over loopback HTTP with graphql-request', () => {
  it('sees queries answered and a refused mutation as a 503 ClientError carrying READ_ONLY_MODE', async () => {
    h = await harness();
    const client = new GraphQLClient(await listen(h));
    await h.begin();
    expect(await client.request<{ hello: string }>('{ hello }')).toEqual({ hello: 'world' });

    const error = await client.request('mutation { deleteOrder(id: 1) }').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    const { response } = error as ClientError;
    expect(response.status).toBe(503);
    expect((response.headers as Headers).get('retry-after')).toMatch(/^\d+$/);
    expect(response.errors?.[0]?.extensions).toMatchObject({
      code: 'READ_ONLY_MODE',
      fields: ['Mutation.deleteOrder'],
    });
    expect(h.rec.calls).toEqual([]);
  });

  it('reads a queued mutation with errorPolicy "all": data null, WRITE_QUEUED with the intent', async () => {
    h = await harness();
    const client = new GraphQLClient(await listen(h), { errorPolicy: 'all' });
    await h.begin();
    const res = await client.rawRequest<{ createOrder: null }>(
      'mutation ($input: OrderInput!) { createOrder(input: $input) { id } }',
      { input: { requestId: 'abc', item: 'tea' } },
    );
    expect(res.status).toBe(202);
    expect(res.data).toEqual({ createOrder: null });
    const ext = res.errors?.[0]?.extensions as Record<string, unknown>;
    expect(ext).toMatchObject({ code: 'WRITE_QUEUED', idempotencyKey: 'abc' });
    expect((await h.engine.getIntent(ext.intentId as string))?.payload).toEqual({
      input: { requestId: 'abc', item: 'tea' },
    });
  });

  it('takes the client address from the node request for the CIDR bypass', async () => {
    h = await harness({ engine: { bypass: { allow: ['127.0.0.0/8'] } } });
    const client = new GraphQLClient(await listen(h));
    await h.begin();
    expect(await client.request('mutation { deleteOrder(id: 1) }')).toEqual({ deleteOrder: true });
    expect((await h.engine.status()).counters.bypassed.graphql).toBe(1);
  });
});
