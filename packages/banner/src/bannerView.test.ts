import { describe, expect, it } from 'vitest';
import { type BannerState, bannerView, formatTime } from './bannerView.js';
import { defineQuiesceBanner, QuiesceBannerElement } from './index.js';

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

describe('bannerView', () => {
  it('shows nothing without a window', () => {
    expect(bannerView(null, opts)).toBeNull();
    expect(bannerView(none, opts)).toBeNull();
  });

  it('announces a scheduled window politely with both times in the reader zone', () => {
    const v = bannerView(w({ phase: 'scheduled' }), opts)!;
    expect(v).toMatchObject({
      kind: 'scheduled',
      role: 'status',
      headline: 'Scheduled maintenance: Upgrade',
    });
    expect(v.parts).toContainEqual({ time: '2026-05-04T13:00:00Z', text: '15:00 CEST' });
    expect(v.parts).toContainEqual({ time: '2026-05-04T14:00:00Z', text: '16:00 CEST' });
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

  it('shows the date only when it is not today for the reader', () => {
    expect(formatTime('2026-05-04T13:00:00Z', NOW, 'en-GB', 'Europe/Berlin')).toBe('15:00 CEST');
    expect(formatTime('2026-05-06T13:00:00Z', NOW, 'en-GB', 'Europe/Berlin')).toBe('Wed 6 May, 15:00 CEST');
    // Just before midnight UTC is already tomorrow in Tokyo.
    expect(formatTime('2026-05-04T23:30:00Z', NOW, 'en-GB', 'Asia/Tokyo')).toMatch(/^Tue 5 May/);
  });

  it('loads in Node (SSR) without a DOM, and defining is a no-op there', () => {
    expect(typeof QuiesceBannerElement).toBe('function');
    expect(() => defineQuiesceBanner()).not.toThrow();
  });
});
