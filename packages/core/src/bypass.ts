import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Operation } from './operation.js';

export interface BypassOptions {
  /** Secret for HMAC-signed operator tokens. Tokens are off without it. */
  secret?: string;
  /** Header carrying a bypass token. @default 'x-quiesce-bypass' */
  header?: string;
  /** Cookie carrying a bypass token. @default 'quiesce_bypass' */
  cookie?: string;
  /** IPv4/IPv6 CIDRs (`10.0.0.0/8`, `2001:db8::/32`) whose clients bypass. */
  allow?: string[];
  /** A principal predicate: operators, service accounts. */
  principal?: (principal: string, operation: Operation) => boolean;
}

export interface BypassTokenClaims {
  /** Who the token was issued to (goes to logs). */
  sub: string;
  /** Expiry, ms since epoch. */
  exp: number;
}

const b64u = (buf: Buffer | string) => Buffer.from(buf).toString('base64url');

/** Issue an operator token: `base64url(claims).base64url(hmac-sha256(secret, claims))`. */
export function createBypassToken(
  secret: string,
  claims: { sub: string; expiresInMs: number },
  now = Date.now(),
): string {
  if (!secret) throw new TypeError('createBypassToken: secret is required');
  if (!(claims.expiresInMs > 0)) throw new TypeError('createBypassToken: expiresInMs must be positive');
  const body = b64u(JSON.stringify({ sub: claims.sub, exp: now + claims.expiresInMs }));
  return `${body}.${b64u(createHmac('sha256', secret).update(body).digest())}`;
}

export type BypassTokenResult =
  | { ok: true; claims: BypassTokenClaims }
  | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired' };

/** base64url without padding, in its one canonical spelling (no stray bits in the last character). */
function canonicalBase64url(s: string): Buffer | null {
  if (!/^[A-Za-z0-9_-]+$/.test(s) || s.length % 4 === 1) return null;
  const bytes = Buffer.from(s, 'base64url');
  return bytes.toString('base64url') === s ? bytes : null;
}

/** HMAC-SHA256 is 32 bytes: 43 base64url characters. */
const SIGNATURE_LENGTH = 43;

/**
 * Verify a token strictly: exactly one `.`, both halves canonical unpadded base64url (a token
 * with an extra dot, padding, whitespace or another spelling of the same bytes is `malformed`).
 */
export function verifyBypassToken(secret: string, token: string, now = Date.now()): BypassTokenResult {
  if (typeof token !== 'string') return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 2) return { ok: false, reason: 'malformed' };
  const [body, signature] = parts as [string, string];
  if (signature.length !== SIGNATURE_LENGTH || !canonicalBase64url(body))
    return { ok: false, reason: 'malformed' };
  const given = canonicalBase64url(signature);
  if (!given) return { ok: false, reason: 'malformed' };
  const expected = createHmac('sha256', secret).update(body).digest();
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: 'bad-signature' };
  let claims: BypassTokenClaims;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (typeof claims?.exp !== 'number' || typeof claims.sub !== 'string')
    return { ok: false, reason: 'malformed' };
  if (claims.exp <= now) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}

/** What stands for a bypass token wherever an operation is shown (events, logs). */
export const REDACTED = '[redacted]';

/** The operation without its bypass token (the same object when it carries none). */
export function redactOperation<T extends { bypassToken?: string | undefined }>(op: T): T {
  return op.bypassToken === undefined ? op : { ...op, bypassToken: REDACTED };
}

/** An address as a 128-bit bigint; IPv4 and IPv4-mapped IPv6 map to `::ffff:a.b.c.d`. */
function toBigInt(address: string): bigint | null {
  let a = address.trim();
  const zone = a.indexOf('%');
  if (zone !== -1) a = a.slice(0, zone);
  const kind = isIP(a);
  if (kind === 4) {
    const parts = a.split('.').map(Number);
    return (
      (0xffffn << 32n) |
      (BigInt((parts[0]! << 24) >>> 0) + BigInt(parts[1]! << 16) + BigInt(parts[2]! << 8) + BigInt(parts[3]!))
    );
  }
  if (kind !== 6) return null;
  // An embedded dotted IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = a.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const p = v4[1]!.split('.').map(Number);
    a = `${a.slice(0, -v4[1]!.length)}${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = a.includes('::') ? 8 - h.length - t.length : 0;
  const groups = [...h, ...Array(fill).fill('0'), ...t];
  if (groups.length !== 8) return null;
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(Number.parseInt(g || '0', 16));
  return n;
}

export interface Cidr {
  base: bigint;
  mask: bigint;
  source: string;
}

/** Parse `a.b.c.d/n` or `v6::/n` (a bare address is a /32 or /128). Throws naming the bad CIDR. */
export function parseCidr(cidr: string): Cidr {
  const [addr, bits] = cidr.split('/') as [string, string | undefined];
  const base = toBigInt(addr);
  if (base === null) throw new TypeError(`invalid CIDR "${cidr}": bad address`);
  const v4 = isIP(addr.trim()) === 4;
  const max = v4 ? 32 : 128;
  const len = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(len) || len < 0 || len > max || (bits !== undefined && !/^\d+$/.test(bits))) {
    throw new TypeError(`invalid CIDR "${cidr}": prefix length must be 0-${max}`);
  }
  const prefix = v4 ? 96 + len : len;
  const mask = prefix === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - prefix)) - 1n);
  return { base: base & mask, mask, source: cidr };
}

export function cidrContains(cidr: Cidr, address: string): boolean {
  const n = toBigInt(address);
  return n !== null && (n & cidr.mask) === cidr.base;
}

/** Why the operation bypasses, or null. */
export type BypassCheck = (operation: Operation, now: number) => string | null;

export function createBypassCheck(options: BypassOptions = {}): BypassCheck | null {
  const cidrs = (options.allow ?? []).map(parseCidr);
  const { secret, principal } = options;
  if (!secret && cidrs.length === 0 && !principal) return null;
  return (op, now) => {
    if (secret && op.bypassToken) {
      const r = verifyBypassToken(secret, op.bypassToken, now);
      if (r.ok) return `token:${r.claims.sub}`;
    }
    if (op.ip && cidrs.length > 0) {
      for (const c of cidrs) if (cidrContains(c, op.ip)) return `cidr:${c.source}`;
    }
    if (principal && op.principal !== undefined && principal(op.principal, op))
      return `principal:${op.principal}`;
    return null;
  };
}
