/**
 * Node-http glue shared by every adapter on node's `http` (Express, Nest on Express or Fastify's
 * `reply.raw`): hold a proceeding request's in-flight handle and read timer until its response is
 * over, read a body for a queued write, and write quiesce's answer. Part of `@quiesce/core/http`.
 */
import type { IncomingMessage } from 'node:http';
import { QuiesceError } from './errors.js';
import { type NodeResponseLike, sendNodeResponse } from './http.js';
import type { HttpEnforcer, HttpProceed, HttpRespond } from './httpEnforcer.js';
import { readSignalsOf } from './readSignals.js';
import { decodeTextBody } from './text.js';

/** The few members of a node `ServerResponse` the proceed path needs. */
export interface NodeResponseEvents {
  statusCode: number;
  writableFinished: boolean;
  on(event: 'close', listener: () => void): unknown;
}

const kProceed = Symbol('quiesce.proceed');
const NOTHING_HELD: HttpProceed = Object.freeze({ respond: null, inFlight: null, readStart: -1 });
const kEnforcer = Symbol('quiesce.enforcer');
type Watched = NodeResponseEvents & { [kProceed]?: HttpProceed; [kEnforcer]?: HttpEnforcer };

// One shared listener (no closure per request); `this` is the response, which emits `close` once.
function onClose(this: Watched): void {
  const p = this[kProceed];
  if (p === undefined) return;
  this[kProceed] = undefined;
  p.inFlight?.done();
  if (p.readStart >= 0)
    this[kEnforcer]!.readDone(
      p.readStart,
      this.statusCode >= 500 || !this.writableFinished,
      readSignalsOf(this),
    );
}

/**
 * Node-http glue shared by Express and Nest (either platform: Fastify's `reply.raw`): hold a
 * proceeding request's in-flight handle or read timer until its response is over. A second call for
 * the same response (a route helper re-deciding) releases what the first one held.
 */
export function watchNodeResponse(
  enforcer: HttpEnforcer,
  res: NodeResponseEvents,
  verdict: HttpProceed,
): void {
  const r = res as Watched;
  const previous = r[kProceed];
  if (previous !== undefined) {
    previous.inFlight?.done();
    r[kProceed] = verdict;
    return;
  }
  // Nothing to hold (an untracked proceed): no listener.
  if (verdict.inFlight === null && verdict.readStart < 0) return;
  r[kEnforcer] = enforcer;
  r[kProceed] = verdict;
  r.on('close', onClose);
}

/** Release what a response holds (its request was answered by quiesce after all). */
export function releaseNodeResponse(res: NodeResponseEvents): void {
  const r = res as Watched;
  const p = r[kProceed];
  if (p === undefined) return;
  r[kProceed] = NOTHING_HELD;
  p.inFlight?.done();
}

/**
 * Read a node request's body as bytes, up to `limit` (`413 PAYLOAD_TOO_LARGE` past it, by the
 * declared length or as it arrives). `what` names the limit in the message.
 */
export async function readNodeBytes(
  req: IncomingMessage,
  limit: number,
  what = 'queued writes',
): Promise<Buffer> {
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

/** Read a node request's body up to `limit` bytes and parse it by media type (JSON, form, text, else base64). */
export async function readNodeBody(
  req: IncomingMessage & { body?: unknown },
  limit: number,
): Promise<unknown> {
  if (req.body !== undefined) return req.body;
  if (req.readableEnded) return null;
  const raw = await readNodeBytes(req, limit);
  if (raw.length === 0) return null;
  const ct = req.headers['content-type'];
  const type = ct ? ct.split(';', 1)[0]!.trim().toLowerCase() : '';
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
  if (type.startsWith('text/')) return decodeTextBody(raw, ct);
  return { encoding: 'base64', contentType: type || null, data: raw.toString('base64') };
}

/** Past this (or chunked), the unread body of an answered request is not drained: the connection closes. */
const DRAIN_LIMIT = 64 * 1024;

/** True when a request still has a large or streaming body the server would otherwise drain. */
export function hasLargeUnreadBody(req: IncomingMessage): boolean {
  if (req.readableEnded || req.complete) return false;
  const length = req.headers['content-length'];
  if (length !== undefined) return Number(length) > DRAIN_LIMIT;
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * Write quiesce's answer on a node response: release what the response held, keep headers set
 * before (CORS), and close the connection rather than drain a large upload that was never read.
 */
export function sendNodeVerdict(
  req: IncomingMessage,
  res: NodeResponseLike & NodeResponseEvents,
  verdict: HttpRespond,
): void {
  releaseNodeResponse(res);
  if (verdict.unreadBody && !res.headersSent && hasLargeUnreadBody(req)) res.setHeader('connection', 'close');
  sendNodeResponse(res, verdict.respond);
}
