import { describe, expect, it } from 'vitest';
import { type BannerState, bannerView, formatTime, relativeTime, sentence } from '../src/bannerView.js';
import { defineQuiesceBanner, QuiesceBannerElement } from '../src/index.js';

const NOW = Date.parse('2026-05-04T12:00:00Z');
const none: BannerState = {
  mode: 'read-write',
  phase: null,
  version: 0,
  windowId: null,
  message: null,
  reason: null,
  startsAt: null,
  endsAt: null,
  endedAt: null,
  contact: null,
  serverTime: '2026-05-04T12:00:00Z',
};
const w = (over: Partial<BannerState>): BannerState => ({
  ...none,
  version: 3,
  windowId: 'win_1',
  message: 'Saving is paused.',
  reason: 'Upgrade',
  startsAt: '2026-05-04T13:00:00Z',
  endsAt: '2026-05-04T14:00:00Z',
  ...over,
});
const opts = { now: NOW, lingerMs: 60_000, locale: 'en-GB', timeZone: 'Europe/Berlin' };

const text = (v: { parts: Array<string | { text: string }> }) =>
  v.parts.map((p) => (typeof p === 'string' ? p : p.text)).join('');

describe('bannerView', () => {
  it('shows nothing without a window', () => {
    expect(bannerView(null, opts)).toBeNull();
    expect(bannerView(none, opts)).toBeNull();
  });

  it('announces a scheduled window politely: start and end with date, reader zone and UTC, and how soon', () => {
    const v = bannerView(w({ phase: 'scheduled' }), opts)!;
    expect(v).toMatchObject({
      kind: 'scheduled',
      role: 'status',
      headline: 'Scheduled maintenance: Upgrade',
    });
    expect(v.parts).toContainEqual({
      time: '2026-05-04T13:00:00Z',
      text: 'Mon 4 May, 15:00 CEST (13:00 UTC)',
    });
    expect(v.parts).toContainEqual({
      time: '2026-05-04T14:00:00Z',
      text: 'Mon 4 May, 16:00 CEST (14:00 UTC)',
    });
    expect(text(v)).toBe(
      'From Mon 4 May, 15:00 CEST (13:00 UTC) (in 60 minutes) until Mon 4 May, 16:00 CEST (14:00 UTC). Saving is paused.',
    );
  });

  it('while read-only: the message as a sentence, since when, and the end from the window (never from the message)', () => {
    const v = bannerView(
      w({
        phase: 'frozen',
        mode: 'read-only',
        message: 'Back by 14:55 UTC',
        startsAt: '2026-05-04T11:48:00Z',
        endsAt: '2026-05-04T12:12:00Z',
      }),
      opts,
    )!;
    expect(text(v)).toBe(
      'Back by 14:55 UTC. Read-only since Mon 4 May, 13:48 CEST (11:48 UTC). Expected back by Mon 4 May, 14:12 CEST (12:12 UTC) (in 12 minutes).',
    );
    const late = bannerView(w({ phase: 'frozen', mode: 'read-only', endsAt: '2026-05-04T11:45:00Z' }), opts)!;
    expect(text(late)).toContain('(15 minutes ago): taking longer than planned.');
  });

  it('alerts while writes are refused (freezing, frozen, or a read-only fallback)', () => {
    for (const state of [
      w({ phase: 'freezing', mode: 'read-only' }),
      w({ phase: 'frozen', mode: 'read-only' }),
      { ...none, mode: 'read-only' as const },
    ]) {
      expect(bannerView(state, opts)).toMatchObject({
        kind: 'active',
        role: 'alert',
        headline: 'Read-only mode',
      });
    }
    expect(bannerView(w({ phase: 'frozen', endsAt: null }), opts)!.parts.join('')).toContain(
      'No end time announced yet.',
    );
  });

  it('says "complete" through thaw and backfill, and for the linger after endedAt once closed', () => {
    const endedAt = '2026-05-04T11:59:30Z';
    expect(bannerView(w({ phase: 'thawing', endedAt }), opts)!.kind).toBe('ended');
    expect(bannerView(w({ phase: 'backfilling', endedAt }), opts)!.kind).toBe('ended');
    expect(bannerView(w({ phase: 'closed', endedAt }), opts)!.kind).toBe('ended');
    expect(bannerView(w({ phase: 'closed', endedAt }), { ...opts, lingerMs: 10_000 })).toBeNull();
  });

  it('always shows the date, the reader zone and UTC (the UTC date too when it differs)', () => {
    expect(formatTime('2026-05-06T13:00:00Z', NOW, 'en-GB', 'Europe/Berlin')).toBe(
      'Wed 6 May, 15:00 CEST (13:00 UTC)',
    );
    // Just before midnight UTC is already tomorrow in Tokyo.
    expect(formatTime('2026-05-04T23:30:00Z', NOW, 'en-GB', 'Asia/Tokyo')).toBe(
      'Tue 5 May, 08:30 GMT+9 (4 May, 23:30 UTC)',
    );
    // A reader on UTC gets it once.
    expect(formatTime('2026-05-04T13:00:00Z', NOW, 'en-GB', 'UTC')).toBe('Mon 4 May, 13:00 UTC');
  });

  it('says how soon in words, in the reader language', () => {
    expect(relativeTime('2026-05-04T12:12:00Z', NOW, 'en')).toBe('in 12 minutes');
    expect(relativeTime('2026-05-04T11:57:00Z', NOW, 'en')).toBe('3 minutes ago');
    expect(relativeTime('2026-05-04T15:00:00Z', NOW, 'en')).toBe('in 3 hours');
    expect(relativeTime('2026-05-07T12:00:00Z', NOW, 'en')).toBe('in 3 days');
    expect(relativeTime('2026-05-04T12:12:00Z', NOW, 'de')).toBe('in 12 Minuten');
  });

  it('ends a message without closing punctuation with a period, and leaves others alone', () => {
    expect(sentence('Saving is paused')).toBe('Saving is paused.');
    expect(sentence('Back soon!')).toBe('Back soon!');
    expect(sentence('Read "the notice."')).toBe('Read "the notice."');
    expect(sentence('  ')).toBe('');
  });

  it('loads in Node (SSR) without a DOM, and defining is a no-op there', () => {
    expect(typeof QuiesceBannerElement).toBe('function');
    expect(() => defineQuiesceBanner()).not.toThrow();
  });
});
