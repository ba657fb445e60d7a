import { QuiesceError } from './errors.js';

/** Why a string cannot be kept by every store (PostgreSQL `text`/`jsonb` being the strictest). */
export type UnstorableReason = 'U+0000' | 'a lone surrogate';

export const UNSTORABLE_TEXT_MESSAGE = 'must not contain U+0000 (NUL) or a lone surrogate (invalid UTF-16)';

/** Why `s` cannot be stored as text everywhere, or null when it can. */
export function unstorableReason(s: string): UnstorableReason | null {
  if (s.includes('\u0000')) return 'U+0000';
  // String.prototype.isWellFormed (ES2024, Node ≥ 20): false for a lone surrogate.
  if (!(s as unknown as { isWellFormed(): boolean }).isWellFormed()) return 'a lone surrogate';
  return null;
}

/** True when every store (PostgreSQL included) can hold `s` as it is. */
export function isStorableText(s: string): boolean {
  return unstorableReason(s) === null;
}

const segment = (key: string) => (/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);

/**
 * The first string (value or object key) in `value` that a store cannot hold, with its dotted path
 * under `field` (`payload.body.name`), or null. Walks iteratively: a deeply nested body cannot
 * overflow the stack.
 */
export function findUnstorableText(
  value: unknown,
  field: string,
): { field: string; reason: UnstorableReason } | null {
  const stack: Array<[unknown, string]> = [[value, field]];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const reason = unstorableReason(v);
      if (reason) return { field: path, reason };
    } else if (v !== null && typeof v === 'object') {
      if (seen.has(v)) continue;
      seen.add(v);
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`]);
      } else if (!(v instanceof Date) && !ArrayBuffer.isView(v)) {
        const keys = Object.keys(v);
        for (let i = keys.length - 1; i >= 0; i--) {
          const k = keys[i]!;
          const reason = unstorableReason(k);
          if (reason) return { field: `${path} (a key)`, reason };
          stack.push([(v as Record<string, unknown>)[k], `${path}${segment(k)}`]);
        }
      }
    }
  }
  return null;
}

/**
 * Throw `INVALID_INPUT` (400) naming the field when a string in `value` cannot be stored by every
 * store: the same answer on the memory, file, PostgreSQL and Redis stores and on every queue.
 */
export function assertStorableText(value: unknown, field: string, what: string): void {
  const bad = findUnstorableText(value, field);
  if (bad) {
    throw new QuiesceError(
      'INVALID_INPUT',
      `${what}: ${bad.field}: contains ${bad.reason}, which cannot be stored; ${UNSTORABLE_TEXT_MESSAGE}`,
      { field: bad.field },
    );
  }
}

/** A body kept as its bytes, when it cannot be turned into text faithfully. */
export interface Base64Body {
  encoding: 'base64';
  contentType: string | null;
  data: string;
}

/** The `charset` parameter of a Content-Type, lower-cased, or undefined. */
export function charsetOf(contentType: string | undefined): string | undefined {
  const m = contentType ? /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType) : null;
  const v = m ? (m[1] ?? m[2] ?? '').trim().toLowerCase() : '';
  return v || undefined;
}

/**
 * A `text/*` body as a string, decoded by its declared charset (UTF-8 when none is given), so a
 * latin-1 "café" stays "café" through a queue. Bytes that do not decode in that charset, an unknown
 * charset, or text no store can hold (NUL) are kept as bytes (base64, with the full Content-Type)
 * instead of being replaced with U+FFFD: nothing acknowledged is changed.
 */
export function decodeTextBody(bytes: Uint8Array, contentType: string | undefined): string | Base64Body {
  const keep = (): Base64Body => ({
    encoding: 'base64',
    contentType: contentType?.trim() || null,
    data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
  });
  // A byte order mark wins over the label (as in the WHATWG decode algorithm): `charset=utf-16`
  // with FE FF is big-endian.
  const bom =
    bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf
      ? 'utf-8'
      : bytes[0] === 0xfe && bytes[1] === 0xff
        ? 'utf-16be'
        : bytes[0] === 0xff && bytes[1] === 0xfe
          ? 'utf-16le'
          : undefined;
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(bom ?? charsetOf(contentType) ?? 'utf-8', { fatal: true });
  } catch {
    return keep(); // a charset this runtime does not know
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return keep();
  }
  return isStorableText(text) ? text : keep();
}
