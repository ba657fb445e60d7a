import type { IncomingMessage } from 'node:http';
import { decodeTextBody, QuiesceError } from '@quiesce/core';
import type { HttpIntentPayload } from '@quiesce/core/http';

type RequestWithBody = IncomingMessage & { body?: unknown; query?: unknown; originalUrl?: string };

function mediaType(req: IncomingMessage): string {
  const ct = req.headers['content-type'];
  return ct ? ct.split(';', 1)[0]!.trim().toLowerCase() : '';
}

/** True when a request still has a body to send that the server would otherwise drain. */
export function hasLargeOrStreamingBody(req: IncomingMessage, threshold: number): boolean {
  if (req.readableEnded || req.complete) return false;
  const length = req.headers['content-length'];
  if (length !== undefined) return Number(length) > threshold;
  return req.headers['transfer-encoding'] !== undefined;
}

/** Read a request body up to `limit` bytes (`413 PAYLOAD_TOO_LARGE` past it). */
export async function readRaw(req: IncomingMessage, limit: number, what = 'queued writes'): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    throw new QuiesceError(
      'PAYLOAD_TOO_LARGE',
      `body: ${declared} bytes is over the ${limit}-byte limit for ${what}`,
      {
        field: 'body',
      },
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      throw new QuiesceError('PAYLOAD_TOO_LARGE', `body: over the ${limit}-byte limit for ${what}`, {
        field: 'body',
      });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseBody(req: IncomingMessage, raw: Buffer): unknown {
  if (raw.length === 0) return null;
  const type = mediaType(req);
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new QuiesceError('INVALID_INPUT', `body: not valid JSON (${(err as Error).message})`, {
        field: 'body',
        cause: err,
      });
    }
  }
  if (type === 'application/x-www-form-urlencoded')
    return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  // By its charset (latin-1, UTF-16…), or kept as bytes when it does not decode: never U+FFFD.
  if (type.startsWith('text/')) return decodeTextBody(raw, req.headers['content-type']);
  return { encoding: 'base64', contentType: type || null, data: raw.toString('base64') };
}

/**
 * The payload of a queued HTTP write. A body parsed earlier (`express.json()` before the middleware)
 * is used as is; otherwise the body is read here, up to `limit` bytes, and parsed by its media type
 * (JSON, form, text; anything else is kept as base64).
 */
export async function readIntentPayload(
  req: IncomingMessage,
  path: string,
  params: Record<string, string>,
  limit: number,
): Promise<HttpIntentPayload> {
  const r = req as RequestWithBody;
  let body: unknown;
  if (r.body !== undefined) body = r.body;
  else if (r.readableEnded) body = null;
  else body = parseBody(req, await readRaw(req, limit));
  let query: Record<string, unknown>;
  if (r.query && typeof r.query === 'object') query = { ...(r.query as Record<string, unknown>) };
  else {
    const url = r.originalUrl ?? r.url ?? '';
    const q = url.indexOf('?');
    query = q === -1 ? {} : Object.fromEntries(new URLSearchParams(url.slice(q + 1)));
  }
  return { method: (req.method ?? 'GET').toUpperCase(), path, params: { ...params }, query, body };
}
