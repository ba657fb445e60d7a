/**
 * Reading what a quiesce server answered: a refusal (`READ_ONLY_MODE`, RFC 9457 problem or GraphQL
 * error extension) or a queued write (`WRITE_QUEUED`, a 202 body or GraphQL error extension).
 * Structural only, so the client needs nothing from `@quiesce/core` at run time.
 */

/** A write quiesce refused before any handler ran: retrying it cannot apply it twice. */
export interface Refusal {
  code: 'READ_ONLY_MODE';
  /** The window's message (the problem's `detail`, the GraphQL error's `message`). */
  message: string;
  windowId: string | null;
  /** The window's expected end (ISO 8601), `null` when the operator gave none. */
  endsAt: string | null;
  /** Seconds the server asked to wait (from the body; the header wins when both exist). */
  retryAfter: number | null;
  /** GraphQL: the refused fields (`Mutation.createNote`). */
  fields?: string[];
}

/** A write kept as a durable intent during the window: it will be applied after it. Never re-sent. */
export interface QueuedIntent {
  code: 'WRITE_QUEUED';
  intentId: string;
  idempotencyKey: string | null;
  statusUrl: string | null;
  windowId: string | null;
  endsAt: string | null;
}

type Bag = Record<string, unknown>;

const isBag = (v: unknown): v is Bag => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null);

/** The members that say what quiesce did: a problem body, or the first GraphQL error's extensions. */
function answers(body: unknown): { bag: Bag; message: string | null }[] {
  if (!isBag(body)) return [];
  if (typeof body.code === 'string') return [{ bag: body, message: str(body.detail) }];
  const errors = body.errors;
  if (!Array.isArray(errors)) return [];
  const out: { bag: Bag; message: string | null }[] = [];
  for (const e of errors) {
    if (isBag(e) && isBag(e.extensions) && typeof e.extensions.code === 'string') {
      out.push({ bag: e.extensions, message: str(e.message) });
    }
  }
  return out;
}

/**
 * The refusal a response body carries, or `undefined`. A GraphQL response counts as refused only
 * when it has no data: quiesce refuses a mutation whole, so data next to the error means something
 * else ran.
 */
export function readRefusal(body: unknown): Refusal | undefined {
  if (isBag(body) && body.data !== undefined && body.data !== null) return undefined;
  for (const { bag, message } of answers(body)) {
    if (bag.code !== 'READ_ONLY_MODE') continue;
    const refusal: Refusal = {
      code: 'READ_ONLY_MODE',
      message: message ?? 'Writes are paused for maintenance.',
      windowId: str(bag.windowId),
      endsAt: str(bag.endsAt),
      retryAfter: num(bag.retryAfter),
    };
    if (Array.isArray(bag.fields))
      refusal.fields = bag.fields.filter((f): f is string => typeof f === 'string');
    return refusal;
  }
  return undefined;
}

/** The queued write a response body acknowledges, or `undefined`. */
export function readQueued(body: unknown): QueuedIntent | undefined {
  for (const { bag } of answers(body)) {
    if (bag.code !== 'WRITE_QUEUED' || typeof bag.intentId !== 'string') continue;
    return {
      code: 'WRITE_QUEUED',
      intentId: bag.intentId,
      idempotencyKey: str(bag.idempotencyKey),
      statusUrl: str(bag.statusUrl),
      windowId: str(bag.windowId),
      endsAt: str(bag.endsAt),
    };
  }
  return undefined;
}
