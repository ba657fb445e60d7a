import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Notifier, NotifierEvent, NotifierEventKind } from '../notifier.js';
import { parseOrThrow } from '../window.js';
import { announce } from './announcement.js';
import { Delivery, type NotifierRuntimeOptions, type RetryOptions, runtimeShape } from './delivery.js';

/** Header with the signing time, Unix seconds. */
export const WEBHOOK_TIMESTAMP_HEADER = 'X-Quiesce-Timestamp';
/** Header with `sha256=<hex HMAC-SHA256(secret, `${timestamp}.${body}`)>`. */
export const WEBHOOK_SIGNATURE_HEADER = 'X-Quiesce-Signature';
/** Same id on every retry of one delivery: receivers deduplicate on it. */
export const WEBHOOK_DELIVERY_HEADER = 'X-Quiesce-Delivery';
export const WEBHOOK_EVENT_HEADER = 'X-Quiesce-Event';

const EVENT_KINDS = ['scheduled', 'started', 'extended', 'ended', 'closed'] as const;

interface WebhookCommon extends NotifierRuntimeOptions {
  /** Where to POST. A Slack incoming-webhook URL is a secret: it never appears in errors or logs. */
  url: string;
  /** The notice's key in `window.notices`. @default 'webhook' */
  name?: string;
  /**
   * HMAC-SHA256 key. When set, each attempt carries `X-Quiesce-Timestamp` (Unix seconds) and
   * `X-Quiesce-Signature: sha256=<hex>` computed over `${timestamp}.${body}`.
   */
  secret?: string;
  /** Extra request headers (an auth token of the receiver). */
  headers?: Record<string, string>;
  /** Which events to send. @default every event */
  events?: NotifierEventKind[];
  /** Put the window's rollback plan in the copy (chat and webhooks are usually internal). @default true */
  rollbackPlan?: boolean;
  retry?: RetryOptions;
}

export type WebhookNotifierOptions =
  | (WebhookCommon & {
      /** The quiesce JSON event (see the README). @default 'json' */
      format?: 'json';
    })
  | (WebhookCommon & {
      /** A Slack incoming-webhook message (`text` + `blocks`, times shown in each reader's time zone). */
      format: 'slack';
    });

const optionsSchema = z
  .object({
    url: z.url({ message: 'must be an absolute http(s) URL', protocol: /^https?$/ }),
    name: z.string().trim().min(1).optional(),
    secret: z.string().min(16, 'must be at least 16 characters').optional(),
    headers: z.record(z.string(), z.string()).optional(),
    events: z.array(z.enum(EVENT_KINDS)).min(1).optional(),
    rollbackPlan: z.boolean().optional(),
    format: z.enum(['json', 'slack']).optional(),
    ...runtimeShape,
  })
  .strict();

/** The JSON a `format: 'json'` webhook receives. Times are ISO 8601 UTC. */
export interface WebhookPayload {
  type: `quiesce.window.${NotifierEventKind}`;
  kind: NotifierEventKind;
  deliveryId: string;
  at: string;
  phase: string;
  title: string;
  text: string;
  window: {
    id: string;
    reason: string;
    message: string;
    startsAt: string;
    endsAt: string | null;
    endedAt: string | null;
    closedAt: string | null;
    contact: string | null;
    rollbackPlan: string | null;
    scope: string[] | null;
    openedBy: string | null;
  };
  /** Only on `closed`: the window's closing record (backfill report, write audit). */
  report?: Record<string, unknown>;
}

/** Signature of a body at a timestamp: `sha256=<hex>` of HMAC-SHA256 over `${timestamp}.${body}`. */
export function signWebhook(secret: string, timestamp: number | string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * For receivers: true when the signature matches the raw body and the timestamp is within
 * `toleranceSeconds` of now (replays of old deliveries are refused).
 */
export function verifyWebhookSignature(input: {
  secret: string;
  body: string;
  timestamp: string | null | undefined;
  signature: string | null | undefined;
  toleranceSeconds?: number;
  now?: number;
}): boolean {
  const { secret, body, timestamp, signature } = input;
  if (!timestamp || !signature || !/^\d+$/.test(timestamp)) return false;
  const age = Math.abs((input.now ?? Date.now()) / 1000 - Number(timestamp));
  if (age > (input.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/**
 * POSTs each event to a URL, as quiesce JSON or as a Slack message, signed when a secret is
 * given, retried with backoff within a budget; a delivery keeps its id across retries.
 */
export function webhookNotifier(options: WebhookNotifierOptions): Notifier {
  const o = parseOrThrow(optionsSchema, options, 'webhookNotifier options');
  const name = o.name ?? 'webhook';
  const format = o.format ?? 'json';
  const events = new Set<NotifierEventKind>(o.events ?? EVENT_KINDS);
  const clock = o.clock;
  const now = () => (clock ? clock.now() : Date.now());
  const url = new URL(o.url);
  const label = `POST ${url.origin}${format === 'slack' ? '/…' : url.pathname}`;
  // The validated options carry the runtime hooks (fetch, clock, sleep, random) and retry settings.
  const delivery = new Delivery(name, o);

  return {
    name,
    async notify(event, ctx) {
      if (!events.has(event.kind)) return ctx.record?.data;
      const deliveryId = randomUUID();
      const body = JSON.stringify(
        format === 'slack'
          ? slackMessage(event, o.rollbackPlan ?? true)
          : jsonPayload(event, deliveryId, o.rollbackPlan ?? true),
      );
      const headers = () => {
        const h: Record<string, string> = {
          ...o.headers,
          'Content-Type': 'application/json',
          'User-Agent': 'quiesce-webhook/1',
          [WEBHOOK_EVENT_HEADER]: event.kind,
          [WEBHOOK_DELIVERY_HEADER]: deliveryId,
        };
        if (o.secret) {
          // Signed per attempt: a retry carries a fresh timestamp, so receivers can keep a tight
          // replay tolerance.
          const timestamp = Math.floor(now() / 1000);
          h[WEBHOOK_TIMESTAMP_HEADER] = String(timestamp);
          h[WEBHOOK_SIGNATURE_HEADER] = signWebhook(o.secret, timestamp, body);
        }
        return h;
      };
      const result = await delivery.send(
        { method: 'POST', url: o.url, headers, body, label },
        ctx.signal,
        ctx.log,
      );
      return { lastEvent: event.kind, deliveryId, status: result.status, attempts: result.attempts };
    },
  };
}

function jsonPayload(event: NotifierEvent, deliveryId: string, rollbackPlan: boolean): WebhookPayload {
  const w = event.window;
  const copy = announce(event, { rollbackPlan });
  return {
    type: `quiesce.window.${event.kind}`,
    kind: event.kind,
    deliveryId,
    at: new Date(event.at).toISOString(),
    phase: event.phase,
    title: copy.title,
    text: copy.lines.join('\n'),
    window: {
      id: w.id,
      reason: w.reason,
      message: w.message,
      startsAt: w.startsAt,
      endsAt: w.endsAt,
      endedAt: w.endedAt,
      closedAt: w.closedAt,
      contact: w.contact ?? null,
      rollbackPlan: w.rollbackPlan ?? null,
      scope: w.scope ?? null,
      openedBy: w.openedBy ?? null,
    },
    ...(event.kind === 'closed' ? { report: w.report } : {}),
  };
}

/** Slack mrkdwn needs only these three escaped. */
function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A time Slack shows in each reader's own time zone, with an exact UTC fallback. */
function slackTime(iso: string): string {
  const d = new Date(iso);
  const fallback = `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return `<!date^${Math.floor(d.getTime() / 1000)}^{date_short_pretty} {time}|${fallback}>`;
}

function slackMessage(event: NotifierEvent, rollbackPlan: boolean) {
  const w = event.window;
  const copy = announce(event, { rollbackPlan });
  const fields = [
    { type: 'mrkdwn', text: `*Read-only from*\n${slackTime(w.startsAt)}` },
    { type: 'mrkdwn', text: `*Expected until*\n${w.endsAt ? slackTime(w.endsAt) : 'further notice'}` },
  ];
  if (w.endedAt) fields.push({ type: 'mrkdwn', text: `*Writes back on*\n${slackTime(w.endedAt)}` });
  const context = [`window \`${esc(w.id)}\``, `phase \`${event.phase}\``];
  if (w.contact) context.push(`contact: ${esc(w.contact)}`);
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(copy.title, 150), emoji: false } },
    { type: 'section', text: { type: 'mrkdwn', text: esc(w.message) } },
    { type: 'section', fields },
  ];
  if (rollbackPlan && w.rollbackPlan) {
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: `*Rollback plan*\n${esc(w.rollbackPlan)}` },
    });
  }
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: context.join(' · ') }] });
  // `text` is the notification and screen-reader fallback when blocks are present.
  return { text: esc(`${copy.title}\n${copy.lines.join('\n')}`), blocks };
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
