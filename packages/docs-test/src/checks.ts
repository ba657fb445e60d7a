import { expect } from 'vitest';

/**
 * Claims of README examples that serve, checked over HTTP against the running example. Keyed
 * `<readme>#<heading>` (see DOCS-CONVENTION.md). Each check asserts what the example's comments and
 * the prose around it promise.
 */
export interface CheckContext {
  url: string;
  token: string;
  /** Resolves when the example's process exits by itself. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}
export type Check = (ctx: CheckContext) => Promise<void>;

const json = { 'content-type': 'application/json' };

async function call(url: string, init: RequestInit = {}) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body };
}

/** Begins a window through the example's own admin router, as the README's curl line does. */
async function beginWindow({ url, token }: CheckContext, base = '/quiesce') {
  const r = await call(`${url}${base}/admin/windows`, {
    method: 'POST',
    headers: { ...json, authorization: `Bearer ${token}` },
    body: JSON.stringify({
      reason: 'docs test',
      message: 'Orders are read-only for about ten minutes.',
      durationMinutes: 10,
    }),
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

async function endWindow({ url, token }: CheckContext, base = '/quiesce') {
  const r = await call(`${url}${base}/admin/windows/current/end`, {
    method: 'POST',
    headers: { ...json, authorization: `Bearer ${token}` },
    body: '{}',
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

/** 503, a positive whole-second Retry-After, the READ_ONLY_MODE problem body. */
function expectRefusal(r: Awaited<ReturnType<typeof call>>) {
  expect(r.status, JSON.stringify(r.body)).toBe(503);
  expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(r.body.code).toBe('READ_ONLY_MODE');
}

const post = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { ...json, ...headers },
  body: JSON.stringify(body),
});

/** Reads 200 and writes 201 outside a window; during it reads 200 and writes 503 + Retry-After. */
async function readsAndRefusedWrites(ctx: CheckContext, cors: boolean) {
  expect((await call(`${ctx.url}/orders`)).status).toBe(200);
  expect((await call(`${ctx.url}/orders`, post({ item: 'tea' }))).status).toBe(201);
  await beginWindow(ctx);
  const refused = await call(
    `${ctx.url}/orders`,
    post({ item: 'coffee' }, { origin: 'https://app.example' }),
  );
  expectRefusal(refused);
  expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  if (cors) expect(refused.headers.get('access-control-allow-origin')).toBe('*');
  const read = await call(`${ctx.url}/orders`);
  expect(read.status).toBe(200);
  expect(read.body).toEqual([{ item: 'tea' }]);
  await endWindow(ctx);
  expect((await call(`${ctx.url}/orders`, post({ item: 'coffee' }))).status).toBe(201);
}

/**
 * allow / drop / writes / queue during a window, then the queued write replayed after it ends:
 * the route helpers (Express) and the decorators (Nest) promise the same.
 */
async function policiesAndReplay(ctx: CheckContext) {
  await beginWindow(ctx);
  const login = await call(`${ctx.url}/login`, post({ user: 'ada' }));
  expect(login.status, JSON.stringify(login.body)).toBeGreaterThanOrEqual(200);
  expect(login.status).toBeLessThan(300);
  expect(login.body).toEqual({ session: 'ok' });
  const dropped = await call(`${ctx.url}/events`, post({ page: '/' }));
  expect(dropped.status).toBe(202);
  expect(dropped.body.code).toBe('WRITE_DROPPED');
  expectRefusal(await call(`${ctx.url}/unsubscribe`));
  const queued = await call(`${ctx.url}/orders`, post({ item: 'tea' }, { 'idempotency-key': 'order-1' }));
  expect(queued.status, JSON.stringify(queued.body)).toBe(202);
  expect(queued.body).toMatchObject({ status: 'queued', code: 'WRITE_QUEUED', idempotencyKey: 'order-1' });
  expect(queued.headers.get('location')).toBe(queued.body.statusUrl);
  // Same key, same body: the same intent.
  const again = await call(`${ctx.url}/orders`, post({ item: 'tea' }, { 'idempotency-key': 'order-1' }));
  expect(again.body).toMatchObject({ intentId: queued.body.intentId, created: false });
  expect((await call(`${ctx.url}/orders`)).body).toEqual([]);
  await endWindow(ctx);
  // Replayed after the soak: the status route says applied, and the order is there.
  await expect
    .poll(async () => (await call(`${ctx.url}${queued.body.statusUrl}`)).body.status, {
      timeout: 60_000,
      interval: 250,
    })
    .toBe('applied');
  expect((await call(`${ctx.url}/orders`)).body).toEqual([{ item: 'tea' }]);
}

/**
 * For an example that starts its own server and a client against it (a client library's README):
 * it listens, then must finish by itself with exit 0 — its asserts are the claims.
 */
async function finishesOnItsOwn({ exited }: CheckContext) {
  const { code, signal } = await exited;
  expect(signal, 'the example was killed').toBeNull();
  expect(code, 'the example exited with an error').toBe(0);
}

/** One MCP `tools/call` over stateless Streamable HTTP with JSON responses (what the example serves). */
async function mcpToolCall(url: string, name: string, id: number) {
  const r = await call(`${url}/mcp`, {
    method: 'POST',
    headers: { ...json, accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } }),
  });
  // The endpoint itself is never refused by the HTTP middleware: the decision is per tool call.
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.id).toBe(id);
  expect(r.body.error, JSON.stringify(r.body.error)).toBeUndefined();
  return r.body.result as {
    isError?: boolean;
    content: Array<{ type: string; text: string }>;
    structuredContent?: Record<string, any>;
  };
}

/** Read tools run during a window; a write tool is refused with READ_ONLY_MODE and runs again after. */
async function mcpOverHttp(ctx: CheckContext) {
  const first = await mcpToolCall(ctx.url, 'list_notes', 1);
  expect(first.isError).not.toBe(true);
  expect(first.content[0]!.text).toBe('(no notes)');
  await beginWindow(ctx);
  const read = await mcpToolCall(ctx.url, 'list_notes', 2);
  expect(read.isError, JSON.stringify(read)).not.toBe(true);
  const refused = await mcpToolCall(ctx.url, 'clear_notes', 3);
  expect(refused.isError, JSON.stringify(refused)).toBe(true);
  expect(refused.structuredContent).toMatchObject({
    code: 'READ_ONLY_MODE',
    outcome: 'refused',
    message: 'Orders are read-only for about ten minutes.',
  });
  expect(refused.structuredContent!.windowId).toEqual(expect.any(String));
  expect(Date.parse(refused.structuredContent!.windowEndsAt)).toBeGreaterThan(Date.now());
  expect(refused.structuredContent!.retryAfterSeconds).toBeGreaterThan(0);
  expect(refused.content[0]!.text).toMatch(/clear_notes/);
  await endWindow(ctx);
  const cleared = await mcpToolCall(ctx.url, 'clear_notes', 4);
  expect(cleared.isError, JSON.stringify(cleared)).not.toBe(true);
  expect(cleared.content[0]!.text).toBe('Cleared.');
}

export const checks: Record<string, Check> = {
  'packages/client/README.md#fetch': finishesOnItsOwn,
  'packages/client/README.md#Apollo Client': finishesOnItsOwn,
  'packages/client/README.md#urql': finishesOnItsOwn,
  'packages/client/README.md#ky': finishesOnItsOwn,

  'packages/mcp/README.md#Over Streamable HTTP behind @quiesce/express': (ctx) => mcpOverHttp(ctx),

  'packages/express/README.md#Two-line setup': (ctx) => readsAndRefusedWrites(ctx, true),
  'packages/nestjs/README.md#Two-line setup': (ctx) => readsAndRefusedWrites(ctx, false),

  // #18: the signal a handler attaches reaches the read-health watcher (reported when the response closes).
  'packages/nestjs/README.md#Read-quality signals': async ({ url, token }) => {
    for (let i = 0; i < 2; i++) expect((await call(`${url}/search?q=tea`)).status).toBe(200);
    const deltaS = async () =>
      (await call(`${url}/quiesce/admin/status`, { headers: { authorization: `Bearer ${token}` } })).body
        .readHealth.signals.deltaS;
    await expect.poll(async () => (await deltaS())?.baseline.count, { timeout: 20_000 }).toBe(2);
    expect((await deltaS()).baseline.mean).toBe(0.31);
  },

  'packages/express/README.md#Route helpers': (ctx) => policiesAndReplay(ctx),
  'packages/nestjs/README.md#Decorators': (ctx) => policiesAndReplay(ctx),

  'packages/graphql-yoga/README.md#Smallest working example': async ({ url }) => {
    const gql = (query: string, headers: Record<string, string> = {}) =>
      call(`${url}/graphql`, post({ query }, { accept: 'application/graphql-response+json', ...headers }));
    // The example begins its window right after listen(): wait until mutations are refused.
    await expect
      .poll(async () => (await gql('mutation { deleteOrder(id: "1") }')).status, { timeout: 20_000 })
      .toBe(503);
    const refused = await gql('mutation { deleteOrder(id: "1") }');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.body.errors[0].extensions.code).toBe('READ_ONLY_MODE');
    expect(refused.body.data).toBeUndefined();
    const read = await gql('{ orders }');
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual({ orders: [] });
    const signIn = await gql('mutation { signIn(user: "ada", password: "x") }');
    expect(signIn.status).toBe(200);
    expect(signIn.body.data.signIn).toBeTruthy();
    const queued = await gql('mutation { createOrder(input: { requestId: "req-42", item: "tea" }) }');
    expect(queued.status, JSON.stringify(queued.body)).toBe(202);
    const ext = queued.body.errors[0].extensions;
    expect(ext).toMatchObject({ code: 'WRITE_QUEUED', idempotencyKey: 'req-42' });
    // The statusUrl exists in this app.
    const status = await call(`${url}${ext.statusUrl}`, { headers: { accept: 'application/json' } });
    expect(status.status, JSON.stringify(status.body)).toBe(200);
    expect(status.body.data.intent).toBe('queued');
  },
};
