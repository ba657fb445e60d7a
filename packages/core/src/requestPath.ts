/**
 * What a request target means as a path, before any rule sees it. Routers, gateways and proxies
 * disagree about `..`, `%2e`, `%2F` and `//`; a rule must match what the request means, not how it
 * was spelled, and a spelling that could mean a different path somewhere else is never allowed.
 */

export interface NormalizedPath {
  /**
   * The path: absolute-form reduced to its path, query and fragment removed, percent-encoded
   * unreserved characters decoded (other escapes upper-cased), dot segments removed (RFC 3986
   * §5.2.4), duplicate slashes folded.
   */
  readonly path: string;
  /**
   * True when the target holds a `..` segment in any spelling (`..`, `%2e%2e`, or next to an
   * encoded slash `..%2f` / a backslash): a gateway may resolve it upward to another path. Such a
   * path is never matched by an allow rule.
   */
  readonly unsafe: boolean;
}

const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\//i;
/** Characters that make a path worth normalising; a plain path skips all the work. */
const NEEDS_WORK = /%|\\|\/\.|\/\//;

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const HEX = '0123456789ABCDEF';

function decodeUnreserved(path: string): string {
  if (!path.includes('%')) return path;
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === '%' && i + 2 < path.length && isHex(path[i + 1]) && isHex(path[i + 2])) {
      const hex = `${path[i + 1]}${path[i + 2]}`.toUpperCase();
      const ch = String.fromCharCode(Number.parseInt(hex, 16));
      out += UNRESERVED.test(ch) ? ch : `%${hex}`;
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && HEX.includes(c.toUpperCase());
}

/** RFC 3986 §5.2.4 on an absolute path (segments joined by `/`). */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '..') {
      out.pop();
      if (last) out.push('');
    } else if (s === '.') {
      if (last) out.push('');
    } else {
      out.push(s);
    }
  }
  return `/${out.join('/')}`;
}

/**
 * Reduce a request target (origin-form `/a/b?x`, absolute-form `http://host/a/b`, or a path) to the
 * path a rule is matched against, and say whether its spelling could resolve upward elsewhere.
 */
export function normalizeRequestPath(target: string): NormalizedPath {
  if (target.charCodeAt(0) === 47 /* / */) {
    // Origin-form, the common case: a plain path (after the query) needs no work.
    const q = target.indexOf('?');
    const h = target.indexOf('#');
    const end = q === -1 ? h : h === -1 ? q : Math.min(q, h);
    const plain = end === -1 ? target : target.slice(0, end);
    if (!NEEDS_WORK.test(plain)) return { path: plain, unsafe: false };
  }
  let path = target;
  if (ABSOLUTE_FORM.test(path)) {
    const afterScheme = path.indexOf('//') + 2;
    const slash = path.slice(afterScheme).search(/[/?#]/);
    path = slash === -1 ? '/' : path.slice(afterScheme + slash);
  }
  const end = path.search(/[?#]/);
  if (end !== -1) path = path.slice(0, end);
  if (!path.startsWith('/')) path = `/${path}`;
  path = decodeUnreserved(path);
  // A `..` that a gateway could see: across `/`, `\` and encoded slashes or backslashes.
  const unsafe = path.split(/\/|\\|%2F|%5C/i).some((segment) => segment === '..');
  path = removeDotSegments(path.replace(/\/{2,}/g, '/'));
  return { path: path.replace(/\/{2,}/g, '/'), unsafe };
}
