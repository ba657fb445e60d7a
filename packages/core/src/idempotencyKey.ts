import { QuiesceError } from './errors.js';

/** Longest idempotency key accepted (characters). */
const MAX_KEY_LENGTH = 255;

const EXAMPLE = 'Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"';

const invalid = (why: string) =>
  new QuiesceError('INVALID_INPUT', `Idempotency-Key: ${why}; send a quoted string, e.g. ${EXAMPLE}`, {
    field: 'Idempotency-Key',
  });

// RFC 8941 §3.1.2 parameters after an Item: `;key` or `;key=value` (values are not used here).
const PARAMETERS = /^(?:[ ]*;[ ]*[a-z*][a-z0-9_.*-]*(?:=(?:"(?:[^"\\]|\\["\\])*"|[^;"]*))?)*$/;

/**
 * The value of an `Idempotency-Key` header as the IETF httpapi draft "The Idempotency-Key HTTP
 * Header Field" defines it: a Structured Field String (RFC 8941), `"8e03…"`, with `\"` and `\\` as
 * its only escapes and printable ASCII only. A bare value (`8e03…`, no quotes) is accepted for
 * compatibility with clients written before the draft, if it is printable ASCII without spaces.
 *
 * Returns `undefined` when the header is absent or blank; throws `INVALID_INPUT` (400, field
 * `Idempotency-Key`) for a malformed value, an empty string or one longer than 255 characters.
 */
export function parseIdempotencyKey(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const v = raw.trim();
  if (v === '') return undefined;
  let key: string;
  if (v.startsWith('"')) {
    let out = '';
    let i = 1;
    for (;;) {
      if (i >= v.length) throw invalid('the quoted string is not closed');
      const c = v[i]!;
      if (c === '\\') {
        const next = v[i + 1];
        if (next !== '"' && next !== '\\') throw invalid('only \\" and \\\\ may be escaped in the string');
        out += next;
        i += 2;
        continue;
      }
      if (c === '"') break;
      const code = c.charCodeAt(0);
      if (code < 0x20 || code > 0x7e) throw invalid('only printable ASCII characters are allowed');
      out += c;
      i++;
    }
    if (!PARAMETERS.test(v.slice(i + 1))) throw invalid('unexpected characters after the quoted string');
    key = out;
  } else {
    if (!/^[\x21-\x7e]+$/.test(v))
      throw invalid('only printable ASCII characters without spaces are allowed');
    key = v;
  }
  if (key === '') throw invalid('must not be empty');
  if (key.length > MAX_KEY_LENGTH) throw invalid(`at most ${MAX_KEY_LENGTH} characters`);
  return key;
}

/** Render a key as the header value the draft asks for (a Structured Field String). */
export function formatIdempotencyKey(key: string): string {
  return `"${key.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * Keys whose first request is still being processed: a second request with the same key meanwhile
 * is answered `409 IDEMPOTENCY_IN_PROGRESS` (the draft's "concurrent request"), not stored twice.
 */
export interface InProgressKeys {
  /** Mark `scope` (intent name + key) as in progress; the returned function clears it. */
  begin(scope: string, key: string): () => void;
}

export function createInProgressKeys(): InProgressKeys {
  const active = new Set<string>();
  return {
    begin(scope, key) {
      const id = `${scope}\u0000${key}`;
      if (active.has(id)) {
        throw new QuiesceError(
          'IDEMPOTENCY_IN_PROGRESS',
          `Idempotency-Key: a request with key "${key}" is still being processed; retry once it has finished`,
          { field: 'Idempotency-Key' },
        );
      }
      active.add(id);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        active.delete(id);
      };
    },
  };
}
