import { createQuiesce, type MaintenanceWindow, type QuiesceEngine } from '@quiesce/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

/*
 * The GraphQL contract every GraphQL integration keeps (DESIGN.md, "GraphQL"). An adapter's test
 * runs it with a builder that serves this schema, with these policies, through the adapter:
 *
 *   type Query    { hello: String! }
 *   type Mutation {
 *     createOrder(sku: String!): String!   # no policy: refused during a window
 *     login(user: String!): String!        # allow
 *     trackView(page: String!): Boolean    # drop
 *     placeOrder(item: String!): String    # queue, intent name "placeOrder"
 *   }
 *
 * Each resolver calls `ran(fieldName)` and returns a string (trackView: true).
 */
export const GRAPHQL_CONTRACT_TYPEDEFS = /* GraphQL */ `
  type Query { hello: String! }
  type Mutation {
    createOrder(sku: String!): String!
    login(user: String!): String!
    trackView(page: String!): Boolean
    placeOrder(item: String!): String
  }
`;

export interface GraphqlContractInput {
  engine: QuiesceEngine;
  ran(field: string): void;
  /** The adapter's principal option: who is calling. */
  principal: () => string | undefined;
}

export interface GraphqlContractOptions {
  /** Names the suite (`graphql-yoga`, `nestjs apollo (express)`). */
  name: string;
  /** Serve the contract schema through the adapter on 127.0.0.1:0; the endpoint is `${url}/graphql`. */
  build(input: GraphqlContractInput): Promise<{ url: string; close(): Promise<void> }>;
  /**
   * The HTTP status the server answers a refused operation with. Some servers reset execution
   * errors to 200 unless configured (the refusal is still in the body and Retry-After). @default 503
   */
  refusalStatus?: number;
}

interface Result {
  status: number;
  headers: Headers;
  body: {
    data?: Record<string, unknown> | null;
    errors?: Array<{ message: string; path?: (string | number)[]; extensions?: Record<string, any> }>;
  };
}

export function runGraphqlContract(options: GraphqlContractOptions): void {
  describe(`${options.name}: GraphQL contract`, () => {
    const engine = createQuiesce({ soakMs: 0, heartbeatMs: 20, retryAfter: { jitterSeconds: 0 } });
    const ran: string[] = [];
    let principal: () => string | undefined = () => undefined;
    let app: { url: string; close(): Promise<void> };
    let window: MaintenanceWindow;
    const refusalStatus = options.refusalStatus ?? 503;

    const gql = async (query: string, variables?: Record<string, unknown>): Promise<Result> => {
      const res = await fetch(`${app.url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
        },
        body: JSON.stringify({ query, ...(variables ? { variables } : {}) }),
      });
      return { status: res.status, headers: res.headers, body: (await res.json()) as Result['body'] };
    };
    const expectRefused = (r: Result) => {
      expect(r.status).toBe(refusalStatus);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(r.body.data ?? null).toBeNull();
      expect(r.body.errors?.length).toBeGreaterThan(0);
      for (const e of r.body.errors!) {
        expect(e.extensions).toMatchObject({ code: 'READ_ONLY_MODE', windowId: window.id });
      }
    };

    beforeAll(async () => {
      await engine.start();
      app = await options.build({ engine, ran: (f) => ran.push(f), principal: () => principal() });
      window = await engine.begin({
        reason: 'contract',
        message: 'Paused for the GraphQL contract',
        endsAt: new Date(Date.now() + 600_000).toISOString(),
      });
      await engine.waitForPhase('frozen');
    });
    afterAll(async () => {
      await app?.close();
      await engine.close();
    });
    beforeEach(() => {
      ran.length = 0;
      principal = () => undefined;
    });

    it('queries run during a window', async () => {
      const r = await gql('{ hello }');
      expect(r.status).toBe(200);
      expect(r.body.data).toEqual({ hello: 'hello' });
      expect(ran).toEqual(['hello']);
    });

    it('a mutation without a policy is refused with READ_ONLY_MODE and Retry-After; its resolver never runs', async () => {
      expectRefused(await gql('mutation { createOrder(sku: "A") }'));
      expect(ran).toEqual([]);
    });

    it('an allowed mutation runs', async () => {
      const r = await gql('mutation { login(user: "ann") }');
      expect(r.status).toBe(200);
      expect(r.body.data).toEqual({ login: 'login' });
      expect(ran).toEqual(['login']);
    });

    it('the strictest field wins: an allowed field selected with a refused one does not run', async () => {
      expectRefused(await gql('mutation { login(user: "ann") createOrder(sku: "A") }'));
      expect(ran).toEqual([]);
    });

    it('fragments and aliases do not hide a refused field', async () => {
      expectRefused(
        await gql(
          'mutation { login(user: "a") ...F } fragment F on Mutation { renamed: createOrder(sku: "A") }',
        ),
      );
      expectRefused(await gql('mutation { ... on Mutation { other: createOrder(sku: "B") } }'));
      expect(ran).toEqual([]);
    });

    it('@skip and @include are honoured: a skipped refused field does not refuse the operation', async () => {
      const skipped = await gql(
        'mutation ($s: Boolean!) { createOrder(sku: "A") @skip(if: $s) login(user: "a") }',
        { s: true },
      );
      expect(skipped.status).toBe(200);
      expect(skipped.body.data).toEqual({ login: 'login' });
      const excluded = await gql('mutation { createOrder(sku: "A") @include(if: false) login(user: "b") }');
      expect(excluded.body.data).toEqual({ login: 'login' });
      expect(ran).toEqual(['login', 'login']);
      expectRefused(
        await gql('mutation ($s: Boolean!) { createOrder(sku: "A") @skip(if: $s) login(user: "c") }', {
          s: false,
        }),
      );
      expect(ran).toEqual(['login', 'login']);
    });

    it('a dropped mutation answers WRITE_DROPPED without running', async () => {
      const r = await gql('mutation { trackView(page: "/home") }');
      expect(r.body.errors?.[0]?.extensions).toMatchObject({ code: 'WRITE_DROPPED', windowId: window.id });
      expect(ran).toEqual([]);
    });

    it('a queued mutation answers WRITE_QUEUED with the intent it created, without running', async () => {
      const r = await gql('mutation { placeOrder(item: "tea") }');
      const ext = r.body.errors?.[0]?.extensions;
      expect(ext).toMatchObject({ code: 'WRITE_QUEUED', windowId: window.id, intentId: expect.any(String) });
      const intent = await engine.getIntent(ext!.intentId);
      expect(intent).toMatchObject({ name: 'placeOrder', payload: { item: 'tea' } });
      expect(ran).toEqual([]);
    });

    it('fails closed: a throwing principal function refuses the mutation (never a 500, never runs)', async () => {
      principal = () => {
        throw new Error('session store down');
      };
      expectRefused(await gql('mutation { createOrder(sku: "A") }'));
      // A read needs no principal: it still runs.
      expect((await gql('{ hello }')).body.data).toEqual({ hello: 'hello' });
      expect(ran).toEqual(['hello']);
    });
  });
}
