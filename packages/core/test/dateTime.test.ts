import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDateTime, toIsoDateTime } from '../src/dateTime.js';

describe('RFC 3339 date-times with an explicit offset', () => {
  it('refuses what Date.parse would read loosely (issue #15)', () => {
    for (const s of [
      '2030',
      '12/25/2030',
      'Mon, 01 Jan 2035 00:00:00 GMT',
      'March 7, 2035',
      '2035-01-01T00:00:00',
      '2035-01-01',
      '2035-01-01 00:00:00Z',
      '2035-01-01T00:00Z',
      '2035-02-30T00:00:00Z',
      '2035-13-01T00:00:00Z',
      '2035-01-01T24:00:00Z',
      '2035-01-01T00:00:60Z',
      '2035-01-01T00:00:00+24:00',
      '2035-01-01T00:00:00+0100',
      ' 2035-01-01T00:00:00Z',
      '+002035-01-01T00:00:00Z',
    ]) {
      expect(parseDateTime(s), s).toBeNull();
    }
  });

  it('reads Z, ±hh:mm, lower-case t/z and fractions', () => {
    expect(toIsoDateTime('2035-01-01T09:30:00Z')).toBe('2035-01-01T09:30:00.000Z');
    expect(toIsoDateTime('2035-01-01T10:30:00+01:00')).toBe('2035-01-01T09:30:00.000Z');
    expect(toIsoDateTime('2035-01-01t04:00:00.25-05:30')).toBe('2035-01-01T09:30:00.250Z');
    expect(toIsoDateTime('2036-02-29T00:00:00.123456789z')).toBe('2036-02-29T00:00:00.123Z');
    expect(toIsoDateTime(new Date(Date.UTC(2035, 0, 1)))).toBe('2035-01-01T00:00:00.000Z');
    expect(toIsoDateTime(new Date(Number.NaN))).toBeNull();
    expect(toIsoDateTime(2035)).toBeNull();
  });

  it('property: every Date round-trips through its ISO string and any offset spelling', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('1970-01-01T00:00:00Z'),
          max: new Date('9000-01-01T00:00:00Z'),
          noInvalidDate: true,
        }),
        fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 }),
        (d, offsetMin) => {
          expect(parseDateTime(d.toISOString())).toBe(d.getTime());
          const local = new Date(d.getTime() + offsetMin * 60_000).toISOString().slice(0, -1);
          const sign = offsetMin < 0 ? '-' : '+';
          const abs = Math.abs(offsetMin);
          const off = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
          expect(parseDateTime(`${local}${off}`)).toBe(d.getTime());
        },
      ),
    );
  });
});
