/** What `GET <src>/state` and each `state` event of `<src>/events` carry (nulls when no window). */
export interface BannerState {
  mode: 'read-write' | 'read-only';
  phase: 'scheduled' | 'freezing' | 'frozen' | 'thawing' | 'backfilling' | 'closed' | null;
  version: number;
  windowId: string | null;
  message: string | null;
  reason: string | null;
  startsAt: string | null;
  endsAt: string | null;
  endedAt: string | null;
  contact: string | null;
  /** The server's clock: the banner corrects its own with it. */
  serverTime: string;
}

export type BannerKind = 'scheduled' | 'active' | 'ended';

/** One piece of the banner's text: plain text, or a time shown in the reader's locale and zone. */
export type BannerPart = string | { time: string; text: string };

export interface BannerView {
  kind: BannerKind;
  /** `alert` while writes are refused (assertive), `status` otherwise (polite). */
  role: 'alert' | 'status';
  headline: string;
  parts: BannerPart[];
  contact: string | null;
}

export interface ViewOptions {
  /** Reader's "now", corrected to the server's clock. */
  now: number;
  /** How long "maintenance complete" stays after `endedAt`, in ms. */
  lingerMs: number;
  locale?: string | undefined;
  timeZone?: string | undefined;
}

/** A time for a reader: date left out when it is today, zone name always shown. */
export function formatTime(iso: string, now: number, locale?: string, timeZone?: string): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const base: Intl.DateTimeFormatOptions = { hour: 'numeric', minute: '2-digit', timeZoneName: 'short' };
  if (timeZone) base.timeZone = timeZone;
  const day = (d: Date) =>
    new Intl.DateTimeFormat(locale, { dateStyle: 'short', ...(timeZone ? { timeZone } : {}) }).format(d);
  const options =
    day(at) === day(new Date(now))
      ? base
      : ({ ...base, weekday: 'short', month: 'short', day: 'numeric' } as const);
  return new Intl.DateTimeFormat(locale, options).format(at);
}

/** What the banner shows for a state, or null when it shows nothing. Pure, for tests and SSR. */
export function bannerView(state: BannerState | null, options: ViewOptions): BannerView | null {
  if (!state) return null;
  const t = (iso: string) => ({
    time: iso,
    text: formatTime(iso, options.now, options.locale, options.timeZone),
  });
  const phase = state.phase;
  const message = state.message ?? '';
  const contact = state.contact;
  if (state.mode === 'read-only' || phase === 'freezing' || phase === 'frozen') {
    const parts: BannerPart[] = [message || 'Changes cannot be saved right now.'];
    parts.push(
      ...(state.endsAt ? [' Expected back by ', t(state.endsAt), '.'] : [' No end time announced yet.']),
    );
    return { kind: 'active', role: 'alert', headline: 'Read-only mode', parts, contact };
  }
  if (phase === 'scheduled' && state.startsAt) {
    const parts: BannerPart[] = ['From ', t(state.startsAt)];
    parts.push(...(state.endsAt ? [' until ', t(state.endsAt), '. '] : ['. ']));
    parts.push(message);
    const headline = state.reason ? `Scheduled maintenance: ${state.reason}` : 'Scheduled maintenance';
    return { kind: 'scheduled', role: 'status', headline, parts, contact };
  }
  const ended = state.endedAt ? Date.parse(state.endedAt) : Number.NaN;
  const recent =
    phase === 'thawing' ||
    phase === 'backfilling' ||
    (phase === 'closed' && options.now - ended < options.lingerMs);
  if (recent && state.windowId) {
    const parts: BannerPart[] = state.endedAt
      ? ['Changes can be saved again since ', t(state.endedAt), '.']
      : ['Changes can be saved again.'];
    return { kind: 'ended', role: 'status', headline: 'Maintenance complete', parts, contact: null };
  }
  return null;
}
