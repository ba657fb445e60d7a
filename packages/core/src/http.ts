/**
 * `@quiesce/core/http`: the one translation every HTTP-ish adapter shares, from request facts to an
 * operation and from a decision to status, headers and body (RFC 9457).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { headersForError, isQuiesceError, QuiesceError, statusForCode, titleForCode } from './errors.js';
import { parseIdempotencyKey } from './idempotencyKey.js';
import type { WriteIntent } from './intentQueue.js';
import type {
  Annotation,
  Decision,
  DiscardDecision,
  EnqueueDecision,
  Operation,
  Problem,
  RefuseDecision,
} from './operation.js';

export type HeaderBag = IncomingHttpHeaders | Record<string, string | string[] | undefined>;

export interface HttpRequestFacts {
  method: string;
  /** Path without the query string is best; a query string is ignored by classification. */
  path: string;
  headers: HeaderBag;
  ip?: string;
  principal?: string;
}

export interface OperationFromHttpOptions {
  /** Header carrying a bypass token. @default 'x-quiesce-bypass' */
  bypassHeader?: string;
  /** Cookie carrying a bypass token. @default 'quiesce_bypass' */
  bypassCookie?: string;
  annotation?: Annotation;
  /** @default `${METHOD} ${path}` */
  name?: string;
  idempotencyKey?: string;
}

export interface RenderedResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Fetch API `Headers` (Yoga, Hono) or a node header bag. */
export type AnyHeaders = HeaderBag | { get(name: string): string | null };

function get(headers: AnyHeaders, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  return header(headers as HeaderBag, name);
}

/** The bypass token a request carries (header first, then cookie), from node or fetch headers. */
export function bypassTokenFrom(
  headers: AnyHeaders,
  names: { header?: string; cookie?: string } = {},
): string | undefined {
  return (
    get(headers, names.header ?? 'x-quiesce-bypass') ??
    cookieFrom(get(headers, 'cookie'), names.cookie ?? 'quiesce_bypass')
  );
}

function cookie(headers: HeaderBag, name: string): string | undefined {
  return cookieFrom(header(headers, 'cookie'), name);
}

function cookieFrom(raw: string | undefined, name: string): string | undefined {
  if (!raw) return undefined;
  for (const part of raw.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) {
      const raw = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(raw);
      } catch {
        // A malformed percent-encoding is not a token we issued; it simply fails verification.
        return raw;
      }
    }
  }
  return undefined;
}

/** The client's `Idempotency-Key` header (IETF httpapi draft), trimmed; undefined when absent or empty. */
export function idempotencyKeyFrom(headers: HeaderBag): string | undefined {
  const v = header(headers, 'idempotency-key')?.trim();
  return v ? v.replace(/^"(.*)"$/, '$1') : undefined;
}

export function operationFromHttp(
  facts: HttpRequestFacts,
  options: OperationFromHttpOptions = {},
): Operation {
  const method = facts.method.toUpperCase();
  const q = facts.path.indexOf('?');
  const path = q === -1 ? facts.path : facts.path.slice(0, q);
  const op: Operation = { surface: 'http', name: options.name ?? `${method} ${path}`, method, path };
  const key = options.idempotencyKey ?? idempotencyKeyFrom(facts.headers);
  if (key) op.idempotencyKey = key;
  const token =
    header(facts.headers, options.bypassHeader ?? 'x-quiesce-bypass') ??
    cookie(facts.headers, options.bypassCookie ?? 'quiesce_bypass');
  if (token) op.bypassToken = token;
  if (facts.ip) op.ip = facts.ip;
  if (facts.principal !== undefined) op.principal = facts.principal;
  if (options.annotation) op.annotation = options.annotation;
  return op;
}

/** True when the client prefers an HTML page (a browser navigation) over JSON. */
export function wantsHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const html = accept.indexOf('text/html');
  if (html === -1) return false;
  const json = accept.search(/application\/(problem\+)?json/);
  return json === -1 || html < json;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function refusalHtml(p: Problem): string {
  const until = p.endsAt
    ? `<p>Expected back by <time datetime="${escapeHtml(p.endsAt)}">${escapeHtml(p.endsAt)}</time>.</p>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(p.title)}</title></head><body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a"><main role="main"><h1>${escapeHtml(p.title)}</h1><p>${escapeHtml(p.detail)}</p>${until}<p><small>Code ${escapeHtml(p.code)} · window ${escapeHtml(String(p.windowId ?? ''))}</small></p></main></body></html>`;
}

/** Render a refusal (503/423 + Retry-After + problem) or a discard (202). */
export function renderDecision(
  decision: RefuseDecision | DiscardDecision,
  options: { accept?: string } = {},
): RenderedResponse {
  if (decision.outcome === 'discard') {
    return {
      status: 202,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
      body: JSON.stringify({
        status: 'dropped',
        code: 'WRITE_DROPPED',
        windowId: decision.windowId,
        endsAt: decision.endsAt,
      }),
    };
  }
  const html = wantsHtml(options.accept);
  return {
    status: decision.status,
    headers: {
      'content-type': html ? 'text/html; charset=utf-8' : PROBLEM_CONTENT_TYPE,
      'retry-after': String(decision.retryAfter),
      'cache-control': 'no-store',
    },
    body: html ? refusalHtml(decision.problem) : JSON.stringify(decision.problem),
  };
}

export interface QueuedResult {
  intent: WriteIntent;
  statusUrl: string;
  created: boolean;
}

/** 202 for a write kept as a durable intent. */
export function renderQueued(result: QueuedResult, decision?: EnqueueDecision | Decision): RenderedResponse {
  const d = decision && decision.outcome === 'enqueue' ? decision : undefined;
  return {
    status: 202,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      location: result.statusUrl,
    },
    body: JSON.stringify({
      status: 'queued',
      code: 'WRITE_QUEUED',
      intentId: result.intent.id,
      idempotencyKey: result.intent.idempotencyKey,
      statusUrl: result.statusUrl,
      created: result.created,
      windowId: d?.windowId ?? result.intent.windowId,
      endsAt: d?.endsAt ?? null,
    }),
  };
}

/** Any error as a problem response; a `QuiesceError` keeps its status (table in core), others are 500. */
export function renderError(error: unknown): RenderedResponse {
  if (isQuiesceError(error)) {
    const status = statusForCode(error.code);
    const problem: Problem = {
      type: `https://quiesce.dev/problems/${error.code.toLowerCase().replaceAll('_', '-')}`,
      title: titleForCode(error.code),
      status,
      detail: error.message,
      code: error.code,
      ...(error.field ? { field: error.field } : {}),
      ...error.details,
    };
    return {
      status,
      headers: {
        'content-type': PROBLEM_CONTENT_TYPE,
        'cache-control': 'no-store',
        ...headersForError(error),
      },
      body: JSON.stringify(problem),
    };
  }
  return {
    status: 500,
    headers: { 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store' },
    body: JSON.stringify({
      type: 'about:blank',
      title: 'Internal error',
      status: 500,
      detail: 'Internal error',
      code: 'INTERNAL',
    }),
  };
}

/** The few members of `http.ServerResponse` needed (Express's `res`, Fastify's `reply.raw`). */
export interface NodeResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
  headersSent?: boolean;
}

/** Write a rendered response header by header, so headers set before (CORS) survive. */
export function sendNodeResponse(res: NodeResponseLike, rendered: RenderedResponse): void {
  if (res.headersSent) return;
  res.statusCode = rendered.status;
  for (const [k, v] of Object.entries(rendered.headers)) res.setHeader(k, v);
  res.setHeader('content-length', String(Buffer.byteLength(rendered.body)));
  res.end(rendered.body);
}

/** What a queued HTTP write keeps: enough to replay it, and no credentials (headers are not kept). */
export interface HttpIntentPayload {
  method: string;
  /** The path without the query string. */
  path: string;
  /** Route parameters, when the route is known before it runs. */
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
}

/**
 * Where a queued write's idempotency key comes from: the client's `Idempotency-Key` header when
 * present (`header-or-content`, the default), the header only (`header`: a write without it is
 * refused with 400), or always the content (`content`).
 */
export type IdempotencyKeyRule = 'header-or-content' | 'header' | 'content';

export const IDEMPOTENCY_KEY_RULES: readonly IdempotencyKeyRule[] = [
  'header-or-content',
  'header',
  'content',
];

/** Longest idempotency key accepted, as for the `Idempotency-Key` header. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/**
 * The key a queued write is kept under, or `undefined` for the engine to derive one from the
 * content. `custom` is the result of an app's own key function, when the route has one (it wins).
 */
export function resolveIdempotencyKey(
  rule: IdempotencyKeyRule | undefined,
  headerKey: string | undefined,
  name: string,
  custom?: { value: unknown },
): string | undefined {
  let key: string | undefined;
  if (custom) {
    if (custom.value !== undefined && custom.value !== '' && typeof custom.value !== 'string') {
      throw new QuiesceError(
        'INTERNAL',
        `${name}: the idempotency key function returned ${typeof custom.value}, not a string`,
      );
    }
    key = (custom.value as string | undefined) || undefined;
  } else if (rule !== 'content') {
    // The IETF draft's Structured Field string (quoted), or bare for older clients; 400 when malformed.
    key = parseIdempotencyKey(headerKey);
    if (rule === 'header' && key === undefined) {
      throw new QuiesceError(
        'IDEMPOTENCY_KEY_REQUIRED',
        `Idempotency-Key: this write (${name}) is queued during the window and needs the client's Idempotency-Key header`,
        { field: 'Idempotency-Key' },
      );
    }
  }
  if (key !== undefined && key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new QuiesceError(
      'INVALID_INPUT',
      `Idempotency-Key: at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`,
      {
        field: 'Idempotency-Key',
      },
    );
  }
  return key;
}

export * from './httpEnforcer.js';
export * from './nodeHttp.js';
export { type NormalizedPath, normalizeRequestPath } from './requestPath.js';
