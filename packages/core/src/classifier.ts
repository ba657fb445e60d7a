import type { Classification, Operation, Policy, Surface } from './operation.js';
import { normalizeRequestPath } from './requestPath.js';

/** A classification rule; the first rule whose every given field matches wins. */
export interface ClassificationRule {
  surface?: Surface | Surface[];
  /** Exact name or a RegExp over `operation.name`. */
  name?: string | RegExp;
  /** A `GET` rule also matches `HEAD` (frameworks send `HEAD` to `GET` handlers). */
  method?: string | string[];
  /**
   * A path pattern (see the README's pattern language: `*` one segment, `**` any number, `:param`
   * one segment with Express's literal suffixes, `*splat`, `{optional}`) or a RegExp. It is matched
   * against the normalised path (no query, no dot segments, no doubled slashes, unreserved
   * characters decoded), relative to the operation's `mount` unless `pathFrom` is `'root'`.
   */
  path?: string | RegExp;
  /** Match `path` with letter case (a case-sensitive router). @default false */
  caseSensitive?: boolean;
  /**
   * What `path` is relative to: the mount point of the app that installed the middleware
   * (`req.baseUrl`, Nest's `mountPath`), or the server's root. @default 'mount'
   */
  pathFrom?: 'mount' | 'root';
  queue?: string | RegExp;
  classification?: Classification;
  policy?: Policy;
}

export interface ClassifyResult {
  readonly classification: Classification;
  readonly policy: Policy;
  /** True when an annotation or a rule decided, false for a surface default. */
  readonly explicit: boolean;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** HTTP methods that do not write by definition (RFC 9110 safe methods). */
export function isSafeMethod(method: string | undefined): boolean {
  if (method === undefined) return false;
  // Upper-case methods (nearly all) are checked without allocating a new string.
  return SAFE_METHODS.has(method) || SAFE_METHODS.has(method.toUpperCase());
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const PARAM_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*/;

/** Pattern text (a whole pattern or a `{…}` group) as regexp source. */
function patternSource(text: string, pattern: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '/') {
      // `*` and `**` standing alone as a segment.
      const next = text.indexOf('/', i + 1);
      const segment = text.slice(i + 1, next === -1 ? text.length : next);
      if (segment === '**' || segment === '*') {
        out += segment === '**' ? '(?:/.*)?' : '/[^/]+';
        i += 1 + segment.length;
        continue;
      }
      out += '/';
      i++;
    } else if (c === ':' || c === '*') {
      const name = PARAM_NAME.exec(text.slice(i + 1));
      if (!name) throw new TypeError(`path pattern ${pattern}: "${c}" must be followed by a parameter name`);
      // `:name` is one segment's worth (lazy, so a literal suffix like `.json` stays literal);
      // `*name` is Express 5's splat: one or more segments.
      out += c === ':' ? '[^/]+?' : '[^/]+(?:/[^/]+)*?';
      i += 1 + name[0].length;
    } else if (c === '{') {
      const close = text.indexOf('}', i);
      if (close === -1) throw new TypeError(`path pattern ${pattern}: "{" without "}"`);
      out += `(?:${patternSource(text.slice(i + 1, close), pattern)})?`;
      i = close + 1;
    } else {
      out += escapeRegExp(c);
      i++;
    }
  }
  return out;
}

/**
 * Compile a path pattern to a RegExp. The language (documented in the README):
 * - `*` alone is one segment, `**` alone any number of segments (none included);
 * - `:name` is one segment's worth of characters, with what follows it in the segment literal, as
 *   in Express: `/:repo.git/info` needs a segment ending in `.git`;
 * - `*name` is Express 5's splat (one or more segments); `{…}` an optional part (`/users{/:id}`);
 * - everything else is literal; a trailing slash on the request is ignored.
 * Matching is case-insensitive unless `caseSensitive` is true.
 */
export function compilePathPattern(pattern: string, options: { caseSensitive?: boolean } = {}): RegExp {
  if (!pattern.startsWith('/')) throw new TypeError(`path pattern must start with "/": ${pattern}`);
  const source = pattern === '/' ? '' : patternSource(pattern.replace(/\/+$/, ''), pattern);
  return new RegExp(`^${source || '/'}/?$`, options.caseSensitive ? '' : 'i');
}

interface CompiledRule {
  surfaces: ReadonlySet<Surface> | null;
  name: string | RegExp | null;
  methods: ReadonlySet<string> | null;
  path: RegExp | null;
  fromRoot: boolean;
  queue: string | RegExp | null;
  result: ClassifyResult;
}

function matches(value: string | undefined, m: string | RegExp): boolean {
  if (value === undefined) return false;
  return typeof m === 'string' ? value === m : m.test(value);
}

/** The path relative to a mount point, or null when the path is not under it. */
function underMount(path: string, mount: string): string | null {
  if (mount === '' || mount === '/') return path;
  const m = mount.endsWith('/') ? mount.slice(0, -1) : mount;
  if (path.length < m.length || path.slice(0, m.length).toLowerCase() !== m.toLowerCase()) return null;
  if (path.length === m.length) return '/';
  return path[m.length] === '/' ? path.slice(m.length) : null;
}

/** A method set where `GET` also stands for `HEAD`. */
function methodSet(method: string | string[]): ReadonlySet<string> {
  const set = new Set((Array.isArray(method) ? method : [method]).map((m) => m.toUpperCase()));
  if (set.has('GET')) set.add('HEAD');
  return set;
}

/** Results are preallocated so classification allocates nothing on the hot path. */
const R = {
  read: { classification: 'read', policy: 'allow', explicit: false },
  write: { classification: 'write', policy: 'block', explicit: false },
} as const satisfies Record<string, ClassifyResult>;
const annotated = new Map<string, ClassifyResult>();
for (const c of ['read', 'write'] as const) {
  for (const p of ['block', 'queue', 'drop', 'allow'] as const) {
    annotated.set(`${c}:${p}`, Object.freeze({ classification: c, policy: p, explicit: true }));
  }
}
function explicitResult(classification: Classification, policy: Policy): ClassifyResult {
  return annotated.get(`${classification}:${policy}`)!;
}
const ANNOTATED_READ = explicitResult('read', 'allow');
const ANNOTATED_WRITE: Record<Policy, ClassifyResult> = {
  block: explicitResult('write', 'block'),
  queue: explicitResult('write', 'queue'),
  drop: explicitResult('write', 'drop'),
  allow: explicitResult('write', 'allow'),
};

export type Classifier = (operation: Operation) => ClassifyResult;

/**
 * Defaults by surface: HTTP safe methods read, others write; GraphQL mutations write; jobs, cron,
 * tools and custom operations write unless declared read-only. An operation's annotation wins,
 * then the first matching rule, then the default.
 */
export function createClassifier(rules: readonly ClassificationRule[] = []): Classifier {
  const compiled: CompiledRule[] = rules.map((rule, i) => {
    if (rule.classification === undefined && rule.policy === undefined) {
      throw new TypeError(`rules[${i}]: give classification or policy`);
    }
    // A rule that only gives a policy describes writes.
    const classification: Classification = rule.classification ?? 'write';
    return {
      surfaces: rule.surface ? new Set(Array.isArray(rule.surface) ? rule.surface : [rule.surface]) : null,
      name: rule.name ?? null,
      methods: rule.method ? methodSet(rule.method) : null,
      path:
        rule.path === undefined
          ? null
          : typeof rule.path === 'string'
            ? compilePathPattern(rule.path, { caseSensitive: rule.caseSensitive === true })
            : rule.path,
      fromRoot: rule.pathFrom === 'root',
      queue: rule.queue ?? null,
      result: classification === 'read' ? ANNOTATED_READ : ANNOTATED_WRITE[rule.policy ?? 'block'],
    };
  });

  const byRules = (op: Operation): ClassifyResult | null => {
    let path: string | undefined;
    let relative: string | null | undefined;
    for (let i = 0; i < compiled.length; i++) {
      const r = compiled[i]!;
      if (r.surfaces !== null && !r.surfaces.has(op.surface)) continue;
      if (r.name !== null && !matches(op.name, r.name)) continue;
      if (r.methods !== null && (op.method === undefined || !r.methods.has(op.method.toUpperCase())))
        continue;
      if (r.path !== null) {
        if (op.path === undefined) continue;
        path ??= normalizeRequestPath(op.path).path;
        if (r.fromRoot) {
          if (!r.path.test(path)) continue;
        } else {
          if (relative === undefined) relative = op.mount ? underMount(path, op.mount) : path;
          if (relative === null || !r.path.test(relative)) continue;
        }
      }
      if (r.queue !== null && !matches(op.queue, r.queue)) continue;
      return r.result;
    }
    return null;
  };

  return (op) => {
    const a = op.annotation;
    let result: ClassifyResult | null = null;
    if (a !== undefined && (a.classification !== undefined || a.policy !== undefined)) {
      result = a.classification === 'read' ? ANNOTATED_READ : ANNOTATED_WRITE[a.policy ?? 'block'];
    } else if (compiled.length > 0) {
      result = byRules(op);
    }
    if (result !== null) {
      // A spelling a gateway could resolve upward (`/hooks/../orders`) is never let through as an
      // allowed write or as a read of an unsafe method; an explicit queue/drop/block still applies.
      const letsThrough =
        result.classification === 'write'
          ? result.policy === 'allow'
          : op.surface === 'http' && !isSafeMethod(op.method);
      if (letsThrough && op.path !== undefined && op.surface === 'http') {
        if (normalizeRequestPath(op.path).unsafe) return ANNOTATED_WRITE.block;
      }
      return result;
    }
    switch (op.surface) {
      case 'http':
        return isSafeMethod(op.method) ? R.read : R.write;
      case 'graphql':
        return op.operationType === 'mutation' ? R.write : R.read;
      default:
        return R.write;
    }
  };
}
