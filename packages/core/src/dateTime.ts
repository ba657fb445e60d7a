import { z } from 'zod';

/** What every time boundary of quiesce accepts, shown in its errors. */
export const DATE_TIME_EXAMPLE = '2035-01-01T09:30:00Z';

/** The error text for a time that is not an RFC 3339 date-time with an offset. */
export const DATE_TIME_MESSAGE = `must be an RFC 3339 date-time with an offset (Z or ±hh:mm), e.g. ${DATE_TIME_EXAMPLE}`;

// RFC 3339 §5.6 `date-time`: full-date "T" full-time, the offset required. Leap seconds (`:60`) are
// refused: JavaScript dates cannot hold them.
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

const daysIn = (year: number, month: number) =>
  month === 2
    ? year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
      ? 29
      : 28
    : [4, 6, 9, 11].includes(month)
      ? 30
      : 31;

/**
 * Milliseconds since the epoch of an RFC 3339 date-time with an explicit offset
 * (`2035-01-01T09:30:00Z`, `2035-01-01T10:30:00.5+01:00`), or `null` for anything else: a bare year,
 * `12/25/2030`, RFC 1123 dates, prose, or a time without an offset (which would be read in the
 * server's zone).
 */
export function parseDateTime(value: string): number | null {
  const m = RFC3339.exec(value);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || s > 59) return null;
  let offsetMin = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const ms = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0;
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d);
  t.setUTCHours(h, mi, s, ms);
  const at = t.getTime() - offsetMin * 60_000;
  return Number.isFinite(at) && Math.abs(at) <= 8.64e15 ? at : null;
}

/** An RFC 3339 string with an offset, or a valid `Date`, as a UTC ISO string; `null` otherwise. */
export function toIsoDateTime(value: unknown): string | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (typeof value !== 'string') return null;
  const ms = parseDateTime(value);
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * The schema of every time quiesce accepts: an RFC 3339 date-time with an offset, or a `Date`
 * (JavaScript callers); the output is the UTC ISO string.
 */
export const dateTimeSchema = z
  .custom<string | Date>((v) => typeof v === 'string' || v instanceof Date, { message: DATE_TIME_MESSAGE })
  .transform((v, ctx) => {
    const iso = toIsoDateTime(v);
    if (iso === null) {
      ctx.addIssue({ code: 'custom', message: DATE_TIME_MESSAGE, input: v });
      return z.NEVER;
    }
    return iso;
  });
