import { describe, expect, it } from 'vitest';
import { createInProgressKeys, formatIdempotencyKey, parseIdempotencyKey } from '../src/idempotencyKey.js';

const rejects = (raw: string) => {
  try {
    parseIdempotencyKey(raw);
  } catch (err) {
    return err as { code: string; status: number; field: string; message: string };
  }
  throw new Error(`accepted ${JSON.stringify(raw)}`);
};

describe('Idempotency-Key per the IETF httpapi draft', () => {
  it('reads a Structured Field string, and a bare value for compatibility', () => {
    expect(parseIdempotencyKey('"8e03978e-40d5-43e8-bc93-6894a57f9324"')).toBe(
      '8e03978e-40d5-43e8-bc93-6894a57f9324',
    );
    expect(parseIdempotencyKey('8e03978e')).toBe('8e03978e');
    expect(parseIdempotencyKey('"a \\"b\\" \\\\c"')).toBe('a "b" \\c');
    expect(parseIdempotencyKey('"k";v=1')).toBe('k');
    expect(parseIdempotencyKey(undefined)).toBeUndefined();
    expect(parseIdempotencyKey('  ')).toBeUndefined();
  });

  it('refuses malformed values with 400 naming the header and showing an example', () => {
    for (const raw of ['"open', '"a\\nb"', '"x" y', '""', 'two words', 'caf\u00e9', `"${'k'.repeat(256)}"`]) {
      const e = rejects(raw);
      expect(e, raw).toMatchObject({ code: 'INVALID_INPUT', status: 400, field: 'Idempotency-Key' });
      expect(e.message).toContain('Idempotency-Key: "');
    }
  });

  it('formats a key back to a Structured Field string', () => {
    for (const k of ['plain', 'a"b', 'c\\d']) expect(parseIdempotencyKey(formatIdempotencyKey(k))).toBe(k);
  });

  it('a key in progress is refused (409) until its first request finishes', () => {
    const keys = createInProgressKeys();
    const done = keys.begin('orders.create', 'k1');
    let error: unknown;
    try {
      keys.begin('orders.create', 'k1');
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'IDEMPOTENCY_IN_PROGRESS', status: 409 });
    keys.begin('orders.other', 'k1')();
    done();
    keys.begin('orders.create', 'k1')();
  });
});
