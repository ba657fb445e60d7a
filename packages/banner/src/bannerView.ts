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

/**
 * A time for a reader, to the minute, with its date, in the reader's zone (named) and — unless that
 * zone is UTC — in UTC too: `Mon 4 May, 15:00 CEST (13:00 UTC)`. People on a call or in a ticket
 * compare times across zones; the zone name alone leaves them guessing.
 */
export function formatTime(iso: string, _now: number, locale?: string, timeZone?: string): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const zone = timeZone ?? new Intl.DateTimeFormat().resolvedOptions().timeZone;
  const local = new Intl.DateTimeFormat(locale, {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: 'numeric',
    minute: '2-digit',
    timeZoneName: 'short',
    timeZone: zone,
  }).format(at);
  if (isUtc(zone)) return local;
  const utc = new Intl.DateTimeFormat(locale, {
    hour: 'numeric',
    minute: '2-digit',
    timeZone: 'UTC',
    ...(sameDay(at, zone) ? {} : { day: 'numeric', month: 'short' }),
  }).format(at);
  return `${local} (${utc} UTC)`;
}

function isUtc(zone: string): boolean {
  return /^(Etc\/)?(UTC|GMT|Universal|Zulu|UCT)(\+0|-0|0)?$/i.test(zone);
}

/** Is the UTC date of `at` the same as its date in `zone`? (Else the UTC time names its date too.) */
function sameDay(at: Date, zone: string): boolean {
  const day = (tz: string) => new Intl.DateTimeFormat('en', { dateStyle: 'short', timeZone: tz }).format(at);
  return day(zone) === day('UTC');
}

/** "in 12 minutes", "3 minutes ago", "in 2 hours", "in 3 days" — in the reader's language. */
export function relativeTime(iso: string, now: number, locale?: string): string {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return '';
  const diffMinutes = Math.round((at - now) / 60_000);
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
  const abs = Math.abs(diffMinutes);
  if (abs < 90) return rtf.format(diffMinutes, 'minute');
  if (abs < 48 * 60) return rtf.format(Math.round(diffMinutes / 60), 'hour');
  return rtf.format(Math.round(diffMinutes / 1440), 'day');
}

/** A message as a sentence: a final period when it has no closing punctuation of its own. */
export function sentence(message: string): string {
  const text = message.trim();
  if (!text) return '';
  return /[.!?…。！？]["'”’)\]]*$/.test(text) ? text : `${text}.`;
}

/** What the banner shows for a state, or null when it shows nothing. Pure, for tests and SSR. */
export function bannerView(state: BannerState | null, options: ViewOptions): BannerView | null {
  if (!state) return null;
  const t = (iso: string) => ({
    time: iso,
    text: formatTime(iso, options.now, options.locale, options.timeZone),
  });
  const rel = (iso: string) => relativeTime(iso, options.now, options.locale);
  const phase = state.phase;
  const message = sentence(state.message ?? '');
  const contact = state.contact;
  if (state.mode === 'read-only' || phase === 'freezing' || phase === 'frozen') {
    // Every time shown comes from the window's data, never from the message.
    const parts: BannerPart[] = [message || 'Changes cannot be saved right now.'];
    if (state.startsAt) parts.push(' Read-only since ', t(state.startsAt), '.');
    if (state.endsAt) {
      const ends = Date.parse(state.endsAt);
      parts.push(' Expected back by ', t(state.endsAt), ` (${rel(state.endsAt)})`);
      parts.push(ends < options.now ? ': taking longer than planned.' : '.');
    } else {
      parts.push(' No end time announced yet.');
    }
    return { kind: 'active', role: 'alert', headline: 'Read-only mode', parts, contact };
  }
  if (phase === 'scheduled' && state.startsAt) {
    const parts: BannerPart[] = ['From ', t(state.startsAt), ` (${rel(state.startsAt)})`];
    parts.push(...(state.endsAt ? [' until ', t(state.endsAt), '.'] : ['.']));
    if (message) parts.push(' ', message);
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
