import type { Classification, Operation, Policy, Surface } from './operation.js';

/** A classification rule; the first rule whose every given field matches wins. */
export interface ClassificationRule {
  surface?: Surface | Surface[];
  /** Exact name or a RegExp over `operation.name`. */
  name?: string | RegExp;
  method?: string | string[];
  /**
   * A path pattern: `*` matches one segment, `**` any number, `:param` one segment; or a RegExp.
   * Query strings are ignored.
   */
  path?: string | RegExp;
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

/** Compile a path pattern (`/admin/**`, `/orders/:id`) to a RegExp. */
export function compilePathPattern(pattern: string): RegExp {
  if (!pattern.startsWith('/')) throw new TypeError(`path pattern must start with "/": ${pattern}`);
  let source = '';
  for (const segment of pattern.split('/').slice(1)) {
    if (segment === '**') source += '(?:/.*)?';
    else if (segment === '*' || segment.startsWith(':')) source += '/[^/]+';
    else source += `/${segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
  }
  return new RegExp(`^${source || '/'}/?$`);
}

interface CompiledRule {
  surfaces: ReadonlySet<Surface> | null;
  name: string | RegExp | null;
  methods: ReadonlySet<string> | null;
  path: RegExp | null;
  queue: string | RegExp | null;
  result: ClassifyResult;
}

function matches(value: string | undefined, m: string | RegExp): boolean {
  if (value === undefined) return false;
  return typeof m === 'string' ? value === m : m.test(value);
}

function stripQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
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
      methods: rule.method
        ? new Set((Array.isArray(rule.method) ? rule.method : [rule.method]).map((m) => m.toUpperCase()))
        : null,
      path:
        rule.path === undefined
          ? null
          : typeof rule.path === 'string'
            ? compilePathPattern(rule.path)
            : rule.path,
      queue: rule.queue ?? null,
      result: classification === 'read' ? ANNOTATED_READ : ANNOTATED_WRITE[rule.policy ?? 'block'],
    };
  });

  return (op) => {
    const a = op.annotation;
    if (a !== undefined && (a.classification !== undefined || a.policy !== undefined)) {
      if (a.classification === 'read') return ANNOTATED_READ;
      return ANNOTATED_WRITE[a.policy ?? 'block'];
    }
    for (let i = 0; i < compiled.length; i++) {
      const r = compiled[i]!;
      if (r.surfaces !== null && !r.surfaces.has(op.surface)) continue;
      if (r.name !== null && !matches(op.name, r.name)) continue;
      if (r.methods !== null && (op.method === undefined || !r.methods.has(op.method.toUpperCase())))
        continue;
      if (r.path !== null && (op.path === undefined || !r.path.test(stripQuery(op.path)))) continue;
      if (r.queue !== null && !matches(op.queue, r.queue)) continue;
      return r.result;
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
