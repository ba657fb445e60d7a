import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cidrContains,
  createBypassCheck,
  createBypassToken,
  parseCidr,
  verifyBypassToken,
} from '../src/bypass.js';

describe('bypass tokens', () => {
  const now = Date.UTC(2026, 0, 1);
  const token = createBypassToken('s3cret', { sub: 'alice', expiresInMs: 60_000 }, now);
  it('valid', () => {
    expect(verifyBypassToken('s3cret', token, now + 1000)).toEqual({
      ok: true,
      claims: { sub: 'alice', exp: now + 60_000 },
    });
  });
  it('expired', () => {
    expect(verifyBypassToken('s3cret', token, now + 60_000)).toEqual({ ok: false, reason: 'expired' });
  });
  it('tampered claims or signature', () => {
    const [body, sig] = token.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify({ sub: 'alice', exp: now + 9e9 })).toString('base64url');
    expect(verifyBypassToken('s3cret', `${forged}.${sig}`, now)).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    const flipped = `${body}.${sig.slice(0, -2)}${sig.endsWith('A') ? 'B' : 'A'}${sig.slice(-1)}`;
    expect(verifyBypassToken('s3cret', flipped, now).ok).toBe(false);
  });
  it('wrong key', () => {
    expect(verifyBypassToken('other', token, now)).toEqual({ ok: false, reason: 'bad-signature' });
  });
  it('malformed', () => {
    for (const t of ['', 'abc', '.x', 'x.'])
      expect(verifyBypassToken('s3cret', t, now)).toEqual({ ok: false, reason: 'malformed' });
  });
  it('property: any change to a token invalidates it', () => {
    fc.assert(
      fc.property(fc.nat({ max: token.length - 1 }), fc.constantFrom(...'ABCxyz019-_'), (i, ch) => {
        if (token[i] === ch || token[i] === '.') return true;
        const t = token.slice(0, i) + ch + token.slice(i + 1);
        // Strict parsing: even a change in the spare bits of the last character (same bytes) fails.
        return !verifyBypassToken('s3cret', t, now).ok;
      }),
    );
  });
});

describe('bypass tokens are parsed strictly (issue #15)', () => {
  const now = Date.UTC(2026, 0, 1);
  const token = createBypassToken('s3cret', { sub: 'alice', expiresInMs: 60_000 }, now);
  const [body, sig] = token.split('.') as [string, string];
  it('an extra separator, padding, whitespace or a non-canonical spelling is malformed', () => {
    const sameBytes = `${sig.slice(0, -1)}${String.fromCharCode(sig.charCodeAt(sig.length - 1) + 1)}`;
    expect(Buffer.from(sameBytes, 'base64url').equals(Buffer.from(sig, 'base64url'))).toBe(true);
    for (const t of [
      `${body}..${sig}`,
      `${body}.${sig}.`,
      `.${body}.${sig}`,
      `${body}.${sig}=`,
      `${body}=.${sig}`,
      ` ${token}`,
      `${token}\n`,
      `${body}.${sig.replaceAll('-', '+').replaceAll('_', '/')}`,
      `${body}.${sameBytes}`,
      `${body}.${sig}AAAA`,
    ]) {
      if (t === token) continue;
      expect(verifyBypassToken('s3cret', t, now), JSON.stringify(t)).toEqual({
        ok: false,
        reason: 'malformed',
      });
    }
    expect(verifyBypassToken('s3cret', token, now).ok).toBe(true);
  });
});

describe('CIDR matching', () => {
  it('IPv4', () => {
    const c = parseCidr('10.1.0.0/16');
    expect(cidrContains(c, '10.1.255.3')).toBe(true);
    expect(cidrContains(c, '10.2.0.1')).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0'), '8.8.8.8')).toBe(true);
    expect(cidrContains(parseCidr('192.168.1.7'), '192.168.1.7')).toBe(true);
    expect(cidrContains(parseCidr('192.168.1.7'), '192.168.1.8')).toBe(false);
  });
  it('IPv6, with zone ids and compressed forms', () => {
    const c = parseCidr('2001:db8::/32');
    expect(cidrContains(c, '2001:db8:ffff::1')).toBe(true);
    expect(cidrContains(c, '2001:db9::1')).toBe(false);
    expect(cidrContains(parseCidr('::1/128'), '::1')).toBe(true);
    expect(cidrContains(parseCidr('fe80::/10'), 'fe80::1%eth0')).toBe(true);
  });
  it('IPv4-mapped IPv6 addresses match IPv4 ranges (Node reports ::ffff:a.b.c.d)', () => {
    expect(cidrContains(parseCidr('127.0.0.0/8'), '::ffff:127.0.0.1')).toBe(true);
    expect(cidrContains(parseCidr('::ffff:10.0.0.0/104'), '10.9.9.9')).toBe(true);
    expect(cidrContains(parseCidr('127.0.0.0/8'), '::1')).toBe(false);
  });
  it('bad CIDRs name the input', () => {
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/10\.0\.0\.0\/33/);
    expect(() => parseCidr('nonsense/8')).toThrow(/nonsense/);
    expect(() => parseCidr('10.0.0.0/x')).toThrow(/prefix/);
  });
  it('property: a v4 address is in its own /n network for every n', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), (ip, n) =>
        cidrContains(parseCidr(`${ip}/${n}`), ip),
      ),
    );
  });
  it('property: a v6 address is in its own /n network for every n', () => {
    fc.assert(
      fc.property(fc.ipV6(), fc.integer({ min: 0, max: 128 }), (ip, n) =>
        cidrContains(parseCidr(`${ip}/${n}`), ip),
      ),
    );
  });
});

describe('bypass check', () => {
  it('token, CIDR and principal each bypass; nothing else does', () => {
    const check = createBypassCheck({ secret: 'k', allow: ['10.0.0.0/8'], principal: (p) => p === 'ops' })!;
    const now = Date.now();
    const t = createBypassToken('k', { sub: 'op', expiresInMs: 1000 }, now);
    const op = { surface: 'http' as const, name: 'POST /x' };
    expect(check({ ...op, bypassToken: t }, now)).toBe('token:op');
    expect(check({ ...op, ip: '::ffff:10.3.3.3' }, now)).toBe('cidr:10.0.0.0/8');
    expect(check({ ...op, principal: 'ops' }, now)).toBe('principal:ops');
    expect(check({ ...op, principal: 'eve', ip: '11.0.0.1', bypassToken: 'x.y' }, now)).toBeNull();
    expect(createBypassCheck({})).toBeNull();
  });
});
