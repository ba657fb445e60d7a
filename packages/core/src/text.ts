import { QuiesceError } from './errors.js';

/** Why a string cannot be kept by every store (PostgreSQL `text`/`jsonb` being the strictest). */
export type UnstorableReason = 'U+0000' | 'a lone surrogate';

export const UNSTORABLE_TEXT_MESSAGE = 'must not contain U+0000 (NUL) or a lone surrogate (invalid UTF-16)';

/** Why `s` cannot be stored as text everywhere, or null when it can. */
export function unstorableReason(s: string): UnstorableReason | null {
  if (s.includes('\u0000')) return 'U+0000';
  // String.prototype.isWellFormed (ES2024, Node ≥ 20): false for a lone surrogate.
  if (!(s as unknown as { isWellFormed(): boolean }).isWellFormed()) return 'a lone surrogate';
  return null;
}

/** True when every store (PostgreSQL included) can hold `s` as it is. */
export function isStorableText(s: string): boolean {
  return unstorableReason(s) === null;
}

const segment = (key: string) => (/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);

/**
 * The first string (value or object key) in `value` that a store cannot hold, with its dotted path
 * under `field` (`payload.body.name`), or null. Walks iteratively: a deeply nested body cannot
 * overflow the stack.
 */
export function findUnstorableText(
  value: unknown,
  field: string,
): { field: string; reason: UnstorableReason } | null {
  const stack: Array<[unknown, string]> = [[value, field]];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const reason = unstorableReason(v);
      if (reason) return { field: path, reason };
    } else if (v !== null && typeof v === 'object') {
      if (seen.has(v)) continue;
      seen.add(v);
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`]);
      } else if (!(v instanceof Date) && !ArrayBuffer.isView(v)) {
        const keys = Object.keys(v);
        for (let i = keys.length - 1; i >= 0; i--) {
          const k = keys[i]!;
          const reason = unstorableReason(k);
          if (reason) return { field: `${path} (a key)`, reason };
          stack.push([(v as Record<string, unknown>)[k], `${path}${segment(k)}`]);
        }
      }
    }
  }
  return null;
}

/**
 * Throw `INVALID_INPUT` (400) naming the field when a string in `value` cannot be stored by every
 * store: the same answer on the memory, file, PostgreSQL and Redis stores and on every queue.
 */
export function assertStorableText(value: unknown, field: string, what: string): void {
  const bad = findUnstorableText(value, field);
  if (bad) {
    throw new QuiesceError(
      'INVALID_INPUT',
      `${what}: ${bad.field}: contains ${bad.reason}, which cannot be stored; ${UNSTORABLE_TEXT_MESSAGE}`,
      { field: bad.field },
    );
  }
}
