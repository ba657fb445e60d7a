import type { NotifierEvent, NotifierEventKind } from '../notifier.js';
import type { MaintenanceWindow } from '../window.js';

/**
 * Exact time for people, in UTC: `2026-01-01 10:00 UTC` (seconds shown only when not zero).
 * Machine-readable payloads keep ISO 8601; this is for prose.
 */
export function formatUtc(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const s = d.toISOString();
  const seconds = s.slice(17, 19);
  return `${s.slice(0, 10)} ${s.slice(11, 16)}${seconds === '00' ? '' : `:${seconds}`} UTC`;
}

const HEADLINES: Record<NotifierEventKind, string> = {
  scheduled: 'Scheduled maintenance',
  started: 'Maintenance in progress',
  extended: 'Maintenance extended',
  ended: 'Maintenance completed',
  closed: 'Maintenance closed',
};

export interface Announcement {
  /** `Maintenance in progress: <reason>` */
  title: string;
  /** The window's message, its times, the contact and (for internal audiences) the rollback plan. */
  lines: string[];
}

/** The copy of one event, taken from the window: title, message, exact times, contact, rollback plan. */
export function announce(event: NotifierEvent, options: { rollbackPlan?: boolean } = {}): Announcement {
  const w = event.window;
  const lines = [w.message];
  lines.push(timesLine(event.kind, w));
  if (w.contact) lines.push(`Contact: ${w.contact}`);
  if (options.rollbackPlan && w.rollbackPlan) lines.push(`Rollback plan: ${w.rollbackPlan}`);
  return { title: `${HEADLINES[event.kind]}: ${w.reason}`, lines };
}

function timesLine(kind: NotifierEventKind, w: MaintenanceWindow): string {
  const until = w.endsAt ? formatUtc(w.endsAt) : 'further notice';
  switch (kind) {
    case 'scheduled':
      return `Read-only from ${formatUtc(w.startsAt)} until ${until}.`;
    case 'started':
      return `Read-only since ${formatUtc(w.startsAt)}, expected until ${until}.`;
    case 'extended':
      return `Now expected to last until ${until}.`;
    case 'ended':
      return `Writes are back on since ${formatUtc(w.endedAt ?? w.startsAt)}.`;
    case 'closed':
      return `Closed at ${formatUtc(w.closedAt ?? w.endedAt ?? w.startsAt)}; queued writes have been replayed.`;
  }
}
