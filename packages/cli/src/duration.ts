import { parseDateTime } from '@quiesce/core';
import { CliError, EXIT } from './cliError.js';

const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/;

/**
 * `90s`, `30m`, `1h30m`, `2h`, `1d` → milliseconds. A bare number is refused: minutes or seconds
 * would be a guess, and a wrong guess freezes writes for the wrong length of time.
 */
export function parseDuration(value: string, flag: string): number {
  const v = value.trim().toLowerCase();
  const m = DURATION.exec(v);
  if (!v || !m || m.slice(1).every((g) => g === undefined)) {
    const hint = /^\d+(\.\d+)?$/.test(v)
      ? ` (a bare number has no unit; write ${v}m or ${v}s)`
      : /^-/.test(v)
        ? ' (durations cannot be negative)'
        : /^\d+\.\d+[a-z]+$/.test(v)
          ? ' (no fractions: write 1h30m rather than 1.5h)'
          : /^\d+\s+[a-z]+$/.test(v)
            ? ` (no space, short units: write e.g. ${v.replace(/\s+([a-z]).*$/, '$1')})`
            : '';
    throw new CliError(
      EXIT.usage,
      `${flag}: "${value}" is not a duration${hint}; use e.g. 90s, 30m, 1h30m, 2h`,
      { field: flag },
    );
  }
  const [, d, h, min, s, ms] = m;
  const total =
    Number(d ?? 0) * UNIT_MS.d! +
    Number(h ?? 0) * UNIT_MS.h! +
    Number(min ?? 0) * UNIT_MS.m! +
    Number(s ?? 0) * UNIT_MS.s! +
    Number(ms ?? 0);
  if (total <= 0)
    throw new CliError(EXIT.usage, `${flag}: must be longer than zero, got "${value}"`, { field: flag });
  if (total > 7 * UNIT_MS.d!)
    throw new CliError(EXIT.usage, `${flag}: must be at most 7d, got "${value}"`, { field: flag });
  return total;
}

/**
 * An RFC 3339 date-time with an explicit offset (`2035-01-01T09:30:00Z`, `…+01:00`), the same rule
 * as the admin API and the engine. A time without an offset is refused: read-only mode starting an
 * hour off is worse than an error.
 */
export function parseTime(value: string, flag: string, now = Date.now()): string {
  const v = value.trim();
  const ms = parseDateTime(v);
  if (ms === null) {
    const hint = /^\d{4}-\d{2}-\d{2}T[\d:.]+$/i.test(v)
      ? ' (add an offset: Z or +01:00)'
      : /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$/i.test(v)
        ? ' (add the seconds: hh:mm:ss)'
        : /[+-]\d{4}$/.test(v)
          ? ' (write the offset as ±hh:mm)'
          : '';
    throw new CliError(
      EXIT.usage,
      `${flag}: "${value}" is not an RFC 3339 date-time with an offset${hint}; use e.g. 2035-01-01T09:30:00Z`,
      { field: flag },
    );
  }
  if (ms <= now) {
    throw new CliError(EXIT.usage, `${flag}: ${new Date(ms).toISOString()} is in the past`, { field: flag });
  }
  return new Date(ms).toISOString();
}

/** `1h 5m`, `42s`, `350ms`: for people. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  let s = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.slice(0, 2).join(' ');
}
