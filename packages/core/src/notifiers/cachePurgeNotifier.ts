import { z } from 'zod';
import type { Notifier, NotifierEventKind } from '../notifier.js';
import { parseOrThrow } from '../window.js';
import {
  Delivery,
  NotifierError,
  type NotifierRuntimeOptions,
  type RetryOptions,
  runtimeShape,
} from './delivery.js';

export interface PurgeRequest {
  /** The purge endpoint of a CDN or cache (Cloudflare, Fastly, Varnish `PURGE`, …). */
  url: string;
  /** @default 'POST' */
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface CachePurgeNotifierOptions extends NotifierRuntimeOptions {
  /** Fired together at each chosen event. */
  requests: PurgeRequest[];
  /** The notice's key in `window.notices`. @default 'cache-purge' */
  name?: string;
  /** Events that purge. @default ['started', 'ended'] */
  on?: NotifierEventKind[];
  retry?: RetryOptions;
}

const EVENT_KINDS = ['scheduled', 'started', 'extended', 'ended', 'closed'] as const;

const optionsSchema = z
  .object({
    requests: z
      .array(
        z
          .object({
            url: z.url({ message: 'must be an absolute http(s) URL', protocol: /^https?$/ }),
            method: z
              .string()
              .regex(/^[A-Za-z]+$/, 'must be an HTTP method')
              .optional(),
            headers: z.record(z.string(), z.string()).optional(),
            body: z.string().optional(),
          })
          .strict(),
      )
      .min(1, 'needs at least one purge request'),
    name: z.string().trim().min(1).optional(),
    on: z.array(z.enum(EVENT_KINDS)).min(1).optional(),
    ...runtimeShape,
  })
  .strict();

/**
 * Fires a list of purge calls when the window starts and ends, so cached pages and banners do not
 * show a stale state. Each call is retried on its own; one that gives up fails the notice (the
 * others still run).
 */
export function cachePurgeNotifier(options: CachePurgeNotifierOptions): Notifier {
  const o = parseOrThrow(optionsSchema, options, 'cachePurgeNotifier options');
  const name = o.name ?? 'cache-purge';
  const on = new Set<NotifierEventKind>(o.on ?? ['started', 'ended']);
  // The validated options carry the runtime hooks (fetch, clock, sleep, random) and retry settings.
  const delivery = new Delivery(name, o);
  return {
    name,
    async notify(event, ctx) {
      if (!on.has(event.kind)) return ctx.record?.data;
      const results = await Promise.allSettled(
        o.requests.map((r) => {
          const url = new URL(r.url);
          const method = (r.method ?? 'POST').toUpperCase();
          return delivery.send(
            {
              method,
              url: r.url,
              // Query strings of purge URLs often carry tokens: keep them out of errors.
              label: `${method} ${url.origin}${url.pathname}`,
              ...(r.headers ? { headers: r.headers } : {}),
              ...(r.body === undefined ? {} : { body: r.body }),
            },
            ctx.signal,
            ctx.log,
          );
        }),
      );
      const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
      if (failed.length > 0) {
        const messages = failed.map((e) => (e instanceof Error ? e.message : String(e)));
        throw new NotifierError(
          name,
          `${failed.length} of ${results.length} purge calls failed: ${messages.join('; ')}`,
          {
            attempts: Math.max(...failed.map((e) => (e instanceof NotifierError ? e.attempts : 1))),
            retryable: true,
            cause: failed[0],
          },
        );
      }
      return { lastEvent: event.kind, purgedAt: event.at, calls: results.length };
    },
  };
}
