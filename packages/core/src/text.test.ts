import { describe, expect, it } from 'vitest';
import { QuiesceError } from './errors.js';
import { assertStorableText, findUnstorableText, isStorableText } from './text.js';

describe('text every store can hold', () => {
  it('refuses NUL and lone surrogates, keeps paired surrogates (emoji)', () => {
    expect(isStorableText('café 😀')).toBe(true);
    expect(isStorableText('a\u0000b')).toBe(false);
    expect(isStorableText('\ud800')).toBe(false);
    expect(isStorableText('x\udc00')).toBe(false);
    expect(isStorableText('\udc00\ud800')).toBe(false);
  });

  it('names the path of the first bad string, keys included', () => {
    expect(findUnstorableText({ a: [1, { b: 'ok' }, { c: 'x\ud800' }] }, 'payload')).toEqual({
      field: 'payload.a[2].c',
      reason: 'a lone surrogate',
    });
    expect(findUnstorableText({ 'we\u0000ird': 1 }, 'payload')).toEqual({
      field: 'payload (a key)',
      reason: 'U+0000',
    });
    expect(findUnstorableText({ 'x-y': 'a\u0000' }, 'payload')?.field).toBe('payload["x-y"]');
  });

  it('walks very deep values without overflowing the stack', () => {
    let deep: unknown = 'bad\u0000';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(findUnstorableText(deep, 'payload')?.reason).toBe('U+0000');
  });

  it('throws INVALID_INPUT (400) naming the field', () => {
    let error: unknown;
    try {
      assertStorableText({ body: 'x\ud800' }, 'payload', 'intent');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(QuiesceError);
    expect(error).toMatchObject({ code: 'INVALID_INPUT', status: 400, field: 'payload.body' });
  });
});
