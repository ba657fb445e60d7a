import type { IncomingHttpHeaders } from 'node:http';
import type { NodeResponseLike, RenderedResponse } from '@quiesce/core/http';
import { sendNodeResponse } from '@quiesce/core/http';

/**
 * The few members of a Nest HTTP request the guard reads; Express's `req` and Fastify's request
 * both have them (structural, so neither platform is a dependency).
 */
export interface PlatformRequest {
  method: string;
  /** The URL as Nest routes it: an outer Express app mounting Nest's instance stripped its mount path. */
  url: string;
  /** Express: the path an outer app mounted Nest's instance under (`/nest`), or `''`. */
  baseUrl?: string;
  headers: IncomingHttpHeaders;
  ip?: string;
  body?: unknown;
  params?: unknown;
  query?: unknown;
}

/** Node's `ServerResponse` as far as in-flight tracking needs it. */
interface RawResponse extends NodeResponseLike {
  on(event: 'close', listener: () => void): unknown;
  /** False at `close` when the connection went away before the response was sent. */
  writableFinished: boolean;
}

/** Fastify's reply: the raw response sits under `raw`, headers go through `header()`. */
interface FastifyReplyLike {
  raw: RawResponse;
  code(status: number): unknown;
  header(name: string, value: string): unknown;
  send(body: Buffer): unknown;
  sent?: boolean;
}

export type PlatformResponse = RawResponse | FastifyReplyLike;

function isFastifyReply(res: PlatformResponse): res is FastifyReplyLike {
  return (res as FastifyReplyLike).raw !== undefined && typeof (res as FastifyReplyLike).code === 'function';
}

/** The underlying `http.ServerResponse`. */
export function rawResponse(res: PlatformResponse): RawResponse {
  return isFastifyReply(res) ? res.raw : res;
}

/**
 * Request path as the client calls it (query string included; core strips it): the module's
 * `mountPath` + the URL Nest routes on. Matches the route patterns, which carry the same prefix.
 */
export function requestPath(req: PlatformRequest, mountPath: string): string {
  return mountPath === '' ? req.url : mountPath + req.url;
}

/**
 * Set headers through the platform, so that whichever exception filter ends up writing the
 * response (ours, Nest's default or the app's own) sends them.
 */
export function setHeaders(res: PlatformResponse, headers: Record<string, string>): void {
  if (isFastifyReply(res)) {
    for (const name in headers) res.header(name, headers[name]!);
  } else if (!res.headersSent) {
    for (const name in headers) res.setHeader(name, headers[name]!);
  }
}

/** Write a rendered response through the platform; headers set earlier (CORS) survive. */
export function sendRendered(res: PlatformResponse, rendered: RenderedResponse): void {
  if (isFastifyReply(res)) {
    if (res.sent) return;
    res.code(rendered.status);
    for (const name in rendered.headers) res.header(name, rendered.headers[name]!);
    // A Buffer goes out as is; a string would get `; charset=utf-8` appended to the content type.
    res.send(Buffer.from(rendered.body));
    return;
  }
  sendNodeResponse(res, rendered);
}
