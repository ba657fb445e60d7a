import fc from 'fast-check';
import { expect } from 'vitest';
import { rawRequest } from './httpContract.js';

/*
 * The invariant behind every window (issue #11): during a window, however a request is spelled
 * (letter case, trailing slash, dot segments, percent-encoding, doubled slashes, HEAD for GET,
 * absolute-form, method-override headers), a handler whose route is not allowed never runs, and a
 * request the framework routes to an allowed handler is never answered by quiesce (unless its
 * spelling could resolve upward elsewhere: such a path is refused by design). Which spellings a
 * framework routes like the plain path (Express: any letter case, a trailing slash, absolute-form)
 * the app says; for the others only the first half is checked.
 */

/** How many generated requests per app. CI runs 10,000 (`QUIESCE_INVARIANT_RUNS=10000`). */
export function invariantRuns(fallback = 1000): number {
  const raw = process.env.QUIESCE_INVARIANT_RUNS;
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new RangeError(`QUIESCE_INVARIANT_RUNS must be a positive integer, got ${raw}`);
  return n;
}

export interface InvariantRoute {
  /** What the handler records in `hits` when it runs. */
  id: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Concrete request paths the framework routes to this handler (mount and global prefix included). */
  paths: string[];
  /** Runs during a window (allow policy, or a plain read). */
  allowed: boolean;
}

interface Variant {
  route: InvariantRoute;
  method: string;
  target: string;
  headers: Record<string, string>;
  /** Spelled so that a gateway could resolve it upward: never allowed. */
  upward: boolean;
  /** How the spelling differs from the routed path. */
  spelling: Spelling;
  caseChanged: boolean;
  trailing: boolean;
}

/** Spellings of a path; the app says which of them its framework routes like the plain path. */
export type Spelling = 'plain' | 'dot' | 'dotdot' | 'encdot' | 'encslash' | 'double' | 'encoded' | 'absolute';

const QUIESCE_CODES = new Set(['READ_ONLY_MODE', 'WRITE_QUEUED', 'WRITE_DROPPED']);

function quiesceAnswered(status: number, text: string): boolean {
  if (status !== 503 && status !== 423 && status !== 202) return false;
  try {
    return QUIESCE_CODES.has((JSON.parse(text) as { code?: string }).code ?? '');
  } catch {
    return false;
  }
}

function variantArb(routes: InvariantRoute[], origin: string): fc.Arbitrary<Variant> {
  return fc
    .record({
      route: fc.constantFrom(...routes),
      pick: fc.nat(),
      head: fc.boolean(),
      caseMask: fc.array(fc.boolean(), { maxLength: 24 }),
      trailing: fc.boolean(),
      spelling: fc.constantFrom(
        'plain',
        'dot',
        'dotdot',
        'encdot',
        'encslash',
        'double',
        'encoded',
        'absolute',
      ),
      at: fc.nat(),
      override: fc.constantFrom(undefined, 'GET', 'POST', 'DELETE'),
    })
    .map(({ route, pick, head, caseMask, trailing, spelling, at, override }) => {
      const path = route.paths[pick % route.paths.length]!;
      const segments = path.split('/').slice(1);
      const i = 1 + (at % segments.length);
      const before = `/${segments.slice(0, i - 1).join('/')}`;
      const after = segments.slice(i - 1).join('/');
      let target: string;
      let upward = false;
      switch (spelling) {
        case 'dot':
          target = `${before === '/' ? '' : before}/./${after}`;
          break;
        case 'dotdot':
          target = `${before === '/' ? '' : before}/zz/../${after}`;
          upward = true;
          break;
        case 'encdot':
          target = `${before === '/' ? '' : before}/zz/%2e%2E/${after}`;
          upward = true;
          break;
        case 'encslash':
          target = `${before === '/' ? '' : before}/zz/..%2f${after}`;
          upward = true;
          break;
        case 'double':
          target = `${before === '/' ? '' : before}//${after}`;
          break;
        case 'encoded': {
          const c = path.search(/[a-z]/i);
          target =
            c === -1
              ? path
              : `${path.slice(0, c)}%${path.charCodeAt(c).toString(16).toUpperCase()}${path.slice(c + 1)}`;
          break;
        }
        case 'absolute':
          target = `${origin}${path}`;
          break;
        default:
          target = path;
      }
      // Letter case, on the path only (not the scheme and host of absolute-form).
      const start = spelling === 'absolute' ? origin.length : 0;
      const uncased = target;
      target =
        target.slice(0, start) +
        [...target.slice(start)]
          .map((ch, k) => (caseMask[k % Math.max(caseMask.length, 1)] ? ch.toUpperCase() : ch))
          .join('');
      const caseChanged = target !== uncased;
      if (trailing && !target.endsWith('/')) target += '/';
      const method = head && route.method === 'GET' ? 'HEAD' : route.method;
      const headers: Record<string, string> = override
        ? { 'x-http-method-override': override, 'x-method-override': override }
        : {};
      return {
        route,
        method,
        target,
        headers,
        upward,
        spelling: spelling as Spelling,
        caseChanged,
        trailing: target.endsWith('/') && !path.endsWith('/'),
      };
    });
}

/**
 * Generate requests against a running app during a window and check the invariant. `hits` is the
 * list the app's handlers push their route id to; it is cleared before each request.
 */
export async function checkEnforcementInvariant(options: {
  url: string;
  routes: InvariantRoute[];
  hits: string[];
  /** What the framework routes like the plain path: letter case, a trailing slash, other spellings. */
  routedLikePlain: { case: boolean; trailingSlash: boolean; spellings: Spelling[] };
  runs?: number;
  seed?: number;
}): Promise<void> {
  const like = options.routedLikePlain;
  const byId = new Map(options.routes.map((r) => [r.id, r]));
  await fc.assert(
    fc.asyncProperty(variantArb(options.routes, options.url), async (v) => {
      options.hits.length = 0;
      // No body on GET, HEAD and DELETE: with a chunked DELETE body answered (202 drop) before it
      // was read, Nest on Fastify sometimes writes a second response (400) on the connection; seen
      // here, not yet explained, and outside what this invariant checks.
      const body = v.method === 'GET' || v.method === 'HEAD' || v.method === 'DELETE' ? undefined : '{}';
      // A server may reset the connection on a spelling it rejects (Fastify on some encodings): no
      // handler ran, which is what the hits below check.
      const res = await rawRequest(options.url, v.method, v.target, {
        headers: v.headers,
        ...(body !== undefined ? { body } : {}),
      }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ECONNRESET') throw error;
        return { status: 0, headers: {}, text: `(connection reset)` };
      });
      for (const id of options.hits) {
        const ran = byId.get(id);
        // A handler that is not allowed never runs during a window, whatever route the spelling reached.
        expect(ran?.allowed, `${v.method} ${v.target} ran ${id} (status ${res.status})`).toBe(true);
      }
      if (v.route.allowed && !v.upward) {
        const routed =
          (v.spelling === 'plain' || like.spellings.includes(v.spelling)) &&
          (!v.caseChanged || like.case) &&
          (!v.trailing || like.trailingSlash);
        // An allowed handler the framework routes the request to always runs: quiesce never answers it.
        if (routed) {
          expect(
            quiesceAnswered(res.status, res.text),
            `${v.method} ${v.target}: ${res.status} ${res.text}`,
          ).toBe(false);
          expect(options.hits, `${v.method} ${v.target}: ${res.status}`).toContain(v.route.id);
        }
      }
    }),
    {
      numRuns: options.runs ?? invariantRuns(),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
    },
  );
}
