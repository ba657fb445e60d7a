import { describe, expect, it } from 'vitest';
import { createQuiesce } from '../src/engine.js';
import { QuiesceError } from '../src/errors.js';
import {
  bypassTokenFrom,
  idempotencyKeyFrom,
  operationFromHttp,
  renderDecision,
  renderError,
  renderQueued,
  resolveIdempotencyKey,
  sendNodeResponse,
  wantsHtml,
} from '../src/http.js';

describe('@quiesce/core/http', () => {
  it('operationFromHttp takes method, path without query, key, bypass token, ip', () => {
    const op = operationFromHttp({
      method: 'post',
      path: '/orders?x=1',
      headers: { 'idempotency-key': ' "abc" ', cookie: 'a=1; quiesce_bypass=tok%2E1', 'x-other': 'y' },
      ip: '::1',
    });
    expect(op).toEqual({
      surface: 'http',
      name: 'POST /orders',
      method: 'POST',
      path: '/orders',
      idempotencyKey: 'abc',
      bypassToken: 'tok.1',
      ip: '::1',
    });
    expect(
      operationFromHttp({ method: 'GET', path: '/', headers: { 'x-quiesce-bypass': 'h' } }).bypassToken,
    ).toBe('h');
    expect(idempotencyKeyFrom({ 'idempotency-key': '  ' })).toBeUndefined();
    expect(
      operationFromHttp({ method: 'POST', path: '/', headers: { cookie: 'quiesce_bypass=%E0%A4%A' } })
        .bypassToken,
    ).toBe('%E0%A4%A');
  });

  it('renders a refusal as problem+json with Retry-After and no-store, or HTML for browsers', async () => {
    const engine = createQuiesce();
    await engine.begin({
      reason: 'r',
      message: 'Back <soon>',
      endsAt: new Date(Date.now() + 60_000).toISOString(),
    });
    const d = engine.decide({ surface: 'http', name: 'POST /x', method: 'POST', path: '/x' });
    if (d.outcome !== 'refuse') throw new Error('expected a refusal');
    const json = renderDecision(d, { accept: 'application/json' });
    expect(json.status).toBe(503);
    expect(json.headers).toMatchObject({
      'content-type': 'application/problem+json',
      'cache-control': 'no-store',
      'retry-after': String(d.retryAfter),
    });
    expect(JSON.parse(json.body)).toMatchObject({
      code: 'READ_ONLY_MODE',
      detail: 'Back <soon>',
      status: 503,
      windowId: d.windowId,
    });
    const html = renderDecision(d, { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' });
    expect(html.headers['content-type']).toMatch(/text\/html/);
    expect(html.body).toContain('Back &#60;soon&#62;');
    expect(html.headers['retry-after']).toBe(String(d.retryAfter));
    await engine.close();
  });

  it('bypassTokenFrom reads fetch Headers and node bags alike', () => {
    expect(bypassTokenFrom(new Headers({ cookie: 'quiesce_bypass=t1' }))).toBe('t1');
    expect(bypassTokenFrom(new Headers({ 'x-ops': 't2' }), { header: 'x-ops' })).toBe('t2');
    expect(bypassTokenFrom({ 'x-quiesce-bypass': 't3' })).toBe('t3');
    expect(bypassTokenFrom(new Headers())).toBeUndefined();
  });

  it('wantsHtml only for clients that prefer HTML', () => {
    expect(wantsHtml(undefined)).toBe(false);
    expect(wantsHtml('*/*')).toBe(false);
    expect(wantsHtml('application/json, text/html')).toBe(false);
    expect(wantsHtml('text/html, application/json')).toBe(true);
  });

  it('renders queued and errors; CORS headers set before survive sendNodeResponse', () => {
    const intent = { id: 'int_1', idempotencyKey: 'k', windowId: 'w' } as never;
    const q = renderQueued({ intent, statusUrl: '/quiesce/intents/int_1', created: true });
    expect(q.status).toBe(202);
    expect(q.headers.location).toBe('/quiesce/intents/int_1');
    expect(JSON.parse(q.body)).toMatchObject({
      status: 'queued',
      code: 'WRITE_QUEUED',
      intentId: 'int_1',
      idempotencyKey: 'k',
    });
    const e = renderError(new QuiesceError('INVALID_INPUT', 'begin: endsAt: bad', { field: 'endsAt' }));
    expect(e.status).toBe(400);
    expect(JSON.parse(e.body)).toMatchObject({ code: 'INVALID_INPUT', field: 'endsAt', status: 400 });
    expect(renderError(new Error('secret detail')).body).not.toContain('secret');
    const headers: Record<string, string> = { 'access-control-allow-origin': 'https://app.example' };
    const res = {
      statusCode: 200,
      headersSent: false,
      body: '',
      setHeader: (k: string, v: string) => {
        headers[k] = v;
      },
      end: (b?: string) => {
        res.body = b ?? '';
      },
    };
    sendNodeResponse(res, e);
    expect(res.statusCode).toBe(400);
    expect(headers['access-control-allow-origin']).toBe('https://app.example');
    expect(headers['content-length']).toBe(String(Buffer.byteLength(e.body)));
  });

  it('resolveIdempotencyKey: header when present, required with "header", ignored with "content", custom wins', () => {
    expect(resolveIdempotencyKey(undefined, 'k', 'POST /x')).toBe('k');
    expect(resolveIdempotencyKey('header-or-content', undefined, 'POST /x')).toBeUndefined();
    expect(resolveIdempotencyKey('content', 'k', 'POST /x')).toBeUndefined();
    expect(() => resolveIdempotencyKey('header', undefined, 'POST /x')).toThrow(
      expect.objectContaining({ code: 'IDEMPOTENCY_KEY_REQUIRED', field: 'Idempotency-Key' }),
    );
    expect(resolveIdempotencyKey('header', 'k', 'POST /x', { value: 'mine' })).toBe('mine');
    expect(resolveIdempotencyKey(undefined, 'k', 'POST /x', { value: undefined })).toBeUndefined();
    expect(() => resolveIdempotencyKey(undefined, undefined, 'POST /x', { value: 42 })).toThrow(
      /returned number/,
    );
    expect(() => resolveIdempotencyKey(undefined, 'x'.repeat(256), 'POST /x')).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT', field: 'Idempotency-Key' }),
    );
  });
});
