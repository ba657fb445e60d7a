import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EXIT, parseDuration, parseTime } from '../src/index.js';
import { cli } from './helpers.js';

const URL_ARGS = ['--url', 'http://127.0.0.1:1/quiesce', '--token', 'x'.repeat(20)];
const BEGIN = ['begin', ...URL_ARGS, '--reason', 'r', '--message', 'm'];

describe('bad input is refused before anything is sent, naming the flag (exit 2)', () => {
  it.each([
    [
      [...BEGIN, '--for', '30'],
      /--for: "30" is not a duration \(a bare number has no unit; write 30m or 30s\)/,
    ],
    [[...BEGIN, '--for', 'half an hour'], /--for: "half an hour" is not a duration; use e.g. 90s, 30m/],
    [[...BEGIN, '--for', '0m'], /--for: must be longer than zero/],
    [[...BEGIN, '--for', '8d'], /--for: must be at most 7d/],
    [[...BEGIN, '--until', '2030-01-01T10:00:00'], /--until: .* \(add an offset: Z or \+01:00\)/],
    [[...BEGIN, '--until', 'tomorrow'], /--until: "tomorrow" is not an RFC 3339 date-time with an offset/],
    [[...BEGIN, '--until', '2020-01-01T10:00:00Z'], /--until: 2020-01-01T10:00:00.000Z is in the past/],
    [[...BEGIN, '--until', '2030-02-30T10:00:00Z', '--for', '1h'], /give only one of --for, --until/],
    [[...BEGIN], /give --for 30m, --until <time> or --open-ended/],
    [['begin', ...URL_ARGS, '--message', 'm', '--for', '1h'], /--reason is required/],
    [
      ['begin', ...URL_ARGS, '--reason', 'r', '--message', '  ', '--for', '1h'],
      /--message: must not be empty/,
    ],
    [
      [...BEGIN, '--for', '1h', '--at', '2030-01-01T10:00:00Z', '--until', '2029-01-01T10:00:00Z'],
      /give only one/,
    ],
    [
      [...BEGIN, '--until', '2030-01-01T10:00:00Z', '--at', '2030-01-02T10:00:00Z'],
      /--until: .* must be after --at/,
    ],
    [['extend', ...URL_ARGS], /extend: give --by 15m, --until <time> or --message/],
    [
      ['extend', ...URL_ARGS, '--by', '15m', '--until', '2030-01-01T10:00:00Z'],
      /give --by or --until, not both/,
    ],
    [['status', '--url', 'localhost:3000'], /--url: must be an http:\/\/ or https:\/\/ URL/],
    [['status', '--url', 'not a url'], /--url: "not a url" is not a URL/],
    [['status', '--url', 'postgres://db/x'], /\(a store\? use --store\)/],
    [['status', '--url', 'http://admin:secret@host/quiesce'], /put the admin token in --token/],
    [['status', '--store', 'mysql://db/x'], /--store: unsupported scheme mysql:/],
    [['status', '--store', 'http://host/quiesce'], /\(an app\? use --url\)/],
    [['status', '--store', 'file:'], /file: needs a path/],
    [['status'], /say where the state is: --url .* or --store/],
    [['status', ...URL_ARGS, '--store', 'file:./x.json'], /either --url .* or --store .*not both/],
    [['status', ...URL_ARGS, '--schema', 'x'], /--schema only applies with --store/],
    [
      ['status', '--store', 'redis://127.0.0.1:1', '--schema', 'x'],
      /--schema only applies to a postgres:\/\/ store/,
    ],
    [['status', ...URL_ARGS, '--interval', 'soon'], /--interval: "soon" is not a duration/],
    [['status', ...URL_ARGS, '--bogus'], /status: Unknown option '--bogus'/],
    [['audit', ...URL_ARGS, '--limit', '0'], /--limit: must be an integer from 1 to 1000/],
    [['intents', ...URL_ARGS, 'a', 'b'], /unexpected argument "b"/],
    [['freeze'], /unknown command "freeze"; commands: begin, extend, end/],
    [
      [...BEGIN, '--for', '1h', '--drain-deadline', '5s'],
      /--drain-deadline only applies with --store \(the app's engine/,
    ],
    [['end', ...URL_ARGS, '--soak', '1s'], /--soak only applies with --store/],
    [
      [...BEGIN, '--for', '1h', '--actor', 'me'],
      /--actor only applies with --store \(the admin token names the actor/,
    ],
    [[...BEGIN, '--open-ended', '--auto-end'], /--auto-end needs an end/],
    [
      [
        'begin',
        '--store',
        'file:/tmp/x.json',
        '--reason',
        'r',
        '--message',
        'm',
        '--for',
        '1h',
        '--drain-deadline',
        'later',
      ],
      /--drain-deadline: "later" is not a duration/,
    ],
  ])('%j', async (args, message) => {
    const r = await cli(args as string[]);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(EXIT.usage);
  });

  it('--no-wait is refused with --store (this process confirms the freeze)', async () => {
    const r = await cli([
      'begin',
      '--store',
      'file:/tmp/quiesce-cli-nowait.json',
      '--create',
      '--reason',
      'r',
      '--message',
      'm',
      '--for',
      '1m',
      '--no-wait',
    ]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(/--no-wait: with --store this process confirms the freeze/);
  });

  it('--json reports errors as JSON on stdout too', async () => {
    const r = await cli([...BEGIN, '--for', 'x', '--json']);
    expect(r.json).toEqual({
      error: { message: expect.stringMatching(/--for/), exitCode: 2, field: '--for' },
    });
  });

  it('no command prints the usage with the exit codes (exit 2); --help exits 0', async () => {
    const none = await cli([]);
    expect(none.code).toBe(EXIT.usage);
    expect(none.stdout).toMatch(/Exit codes: 0 ok/);
    expect((await cli(['--help'])).code).toBe(EXIT.ok);
    expect((await cli(['begin', '--help'])).stdout).toMatch(/^usage: quiesce begin --reason/);
  });
});

describe('durations and times', () => {
  it('parses compound durations', () => {
    expect(parseDuration('90s', '--for')).toBe(90_000);
    expect(parseDuration('1h30m', '--for')).toBe(5_400_000);
    expect(parseDuration('1d', '--for')).toBe(86_400_000);
    expect(parseDuration('250ms', '--for')).toBe(250);
    expect(parseDuration(' 2H ', '--for')).toBe(7_200_000);
  });

  it('every h/m/s combination round-trips', () => {
    fc.assert(
      fc.property(fc.nat(47), fc.nat(59), fc.nat(59), (h, m, s) => {
        fc.pre(h + m + s > 0);
        const text = `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
        expect(parseDuration(text, '--for')).toBe(((h * 60 + m) * 60 + s) * 1000);
      }),
    );
  });

  it('anything else is refused with the flag named', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        fc.pre(!/^\s*(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?\s*$/i.test(text));
        expect(() => parseDuration(text, '--by')).toThrow(/^--by: /);
      }),
    );
  });

  it('times need a zone and the future; offsets are normalised to UTC', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(parseTime('2030-01-01T10:00:00+01:00', '--until', now)).toBe('2030-01-01T09:00:00.000Z');
    expect(() => parseTime('2030-01-01T10:00+01:00', '--until', now)).toThrow(/add the seconds/);
    expect(() => parseTime('2030-01-01T10:00:00+0100', '--until', now)).toThrow(/offset as ±hh:mm/);
    expect(() => parseTime('2029-12-31T23:00:00Z', '--until', now)).toThrow(/in the past/);
  });
});
