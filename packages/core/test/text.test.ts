import { describe, expect, it } from 'vitest';
import { QuiesceError } from '../src/errors.js';
import { assertStorableText, findUnstorableText, isStorableText } from '../src/text.js';

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

describe('text/* bodies decoded by their charset', () => {
  it('latin-1, UTF-16 (with BOM and LE/BE labels) and UTF-8 decode to the same text', async () => {
    const { decodeTextBody } = await import('../src/text.js');
    const s = 'café à Nîmes';
    expect(decodeTextBody(Buffer.from(s, 'latin1'), 'text/plain; charset=ISO-8859-1')).toBe(s);
    expect(decodeTextBody(Buffer.from(s, 'latin1'), 'text/plain;charset="latin1"')).toBe(s);
    expect(decodeTextBody(Buffer.from(s, 'utf16le'), 'text/plain; charset=utf-16le')).toBe(s);
    const be = Buffer.from(s, 'utf16le').swap16();
    expect(decodeTextBody(be, 'text/plain; charset=UTF-16BE')).toBe(s);
    expect(
      decodeTextBody(
        Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(s, 'utf16le')]),
        'text/plain; charset=utf-16',
      ),
    ).toBe(s);
    const beBom = Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(s, 'utf16le').swap16()]);
    expect(decodeTextBody(beBom, 'text/plain; charset=utf-16')).toBe(s);
    expect(decodeTextBody(Buffer.from(s), 'text/plain')).toBe(s);
  });
  it('bytes that do not decode, an unknown charset or a NUL are kept as bytes, not replaced', async () => {
    const { decodeTextBody } = await import('../src/text.js');
    const latin1 = Buffer.from('café', 'latin1');
    expect(decodeTextBody(latin1, 'text/plain')).toEqual({
      encoding: 'base64',
      contentType: 'text/plain',
      data: latin1.toString('base64'),
    });
    expect(decodeTextBody(latin1, 'text/plain; charset=x-klingon')).toMatchObject({ encoding: 'base64' });
    expect(decodeTextBody(Buffer.from('a\u0000b'), 'text/plain')).toMatchObject({ encoding: 'base64' });
  });
});
