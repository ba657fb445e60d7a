import { z } from 'zod';
import type { Notifier, NotifierContext, NotifierEvent } from '../notifier.js';
import { type MaintenanceWindow, parseOrThrow } from '../window.js';
import { announce } from './announcement.js';
import {
  Delivery,
  KeyedSerializer,
  NotifierError,
  type NotifierRuntimeOptions,
  type RetryOptions,
  runtimeShape,
} from './delivery.js';

export interface StatuspageNotifierOptions extends NotifierRuntimeOptions {
  /** A Statuspage API key, sent as `Authorization: OAuth <key>`. */
  apiKey: string;
  /** The page's id (in the Statuspage manage URL and API settings). */
  pageId: string;
  /** Components set to `under_maintenance` when the window begins and back to `operational` at its end. @default [] */
  componentIds?: string[];
  /** The notice's key in `window.notices`. @default 'statuspage' */
  name?: string;
  /** @default 'https://api.statuspage.io/v1' */
  baseUrl?: string;
  /** Let Statuspage notify the page's subscribers of each update. @default true */
  deliverNotifications?: boolean;
  /** Let Statuspage remind subscribers 60 minutes before a scheduled start. @default false */
  remindPrior?: boolean;
  /** `scheduled_until` when the window has no expected end (Statuspage requires one). @default 3600000 */
  defaultDurationMs?: number;
  /** The incident's name. @default window => `Maintenance: ${window.reason}` */
  title?: (window: MaintenanceWindow) => string;
  /** Spacing between calls: Statuspage allows 1 request per second per API key. @default 1000 */
  minIntervalMs?: number;
  /**
   * When the window's record holds no incident id, look for one this window created before (by its
   * `metadata.quiesce.window_id`) before creating one, so a lost record never duplicates it. @default true
   */
  adoptExisting?: boolean;
  /** @default { attempts: 8, baseDelayMs: 1000, maxDelayMs: 30000, budgetMs: 180000, timeoutMs: 10000 } */
  retry?: RetryOptions;
}

/** What the notifier keeps in `window.notices[name].data`. */
export interface StatuspageNoticeData extends Record<string, unknown> {
  incidentId: string;
  status: MaintenanceStatus;
  scheduledUntil: string | null;
  shortlink: string | null;
}

type MaintenanceStatus = 'scheduled' | 'in_progress' | 'verifying' | 'completed';
const RANK: Record<MaintenanceStatus, number> = { scheduled: 0, in_progress: 1, verifying: 2, completed: 3 };

const fn = z.custom<(w: MaintenanceWindow) => string>((v) => typeof v === 'function', {
  message: 'must be a function',
});

const optionsSchema = z
  .object({
    apiKey: z.string().trim().min(1, 'is required'),
    pageId: z.string().trim().min(1, 'is required'),
    componentIds: z.array(z.string().trim().min(1)).optional(),
    name: z.string().trim().min(1).optional(),
    baseUrl: z.url({ message: 'must be an absolute URL' }).optional(),
    deliverNotifications: z.boolean().optional(),
    remindPrior: z.boolean().optional(),
    defaultDurationMs: z.number().int().positive().optional(),
    title: fn.optional(),
    minIntervalMs: z.number().int().nonnegative().optional(),
    adoptExisting: z.boolean().optional(),
    ...runtimeShape,
  })
  .strict();

interface Incident {
  id: string;
  status: string;
  scheduled_until?: string | null;
  shortlink?: string | null;
  metadata?: { quiesce?: { window_id?: string } } | null;
}

/**
 * Mirrors a window on an Atlassian Statuspage page as a scheduled maintenance (Manage API v1):
 * `scheduled` creates it, `started` moves it to `in_progress` and only then puts the components
 * under maintenance, `extended` moves `scheduled_until`, `ended` completes it with the closure
 * message and the components back to `operational`. The incident id is returned for the window's
 * record, so a restarted or second instance updates the same incident.
 */
export function statuspageNotifier(options: StatuspageNotifierOptions): Notifier {
  const o = parseOrThrow(optionsSchema, options, 'statuspageNotifier options');
  const name = o.name ?? 'statuspage';
  const base = `${(o.baseUrl ?? 'https://api.statuspage.io/v1').replace(/\/+$/, '')}/pages/${encodeURIComponent(o.pageId)}`;
  const componentIds = o.componentIds ?? [];
  const deliverNotifications = o.deliverNotifications ?? true;
  const defaultDurationMs = o.defaultDurationMs ?? 3_600_000;
  const title = o.title ?? ((w: MaintenanceWindow) => `Maintenance: ${w.reason}`);
  const adoptExisting = o.adoptExisting ?? true;
  const delivery = new Delivery(name, {
    ...o,
    // A key shared by several clients can be rate limited for up to the 60 s measuring window.
    retry: { attempts: 8, budgetMs: 180_000, ...o.retry },
    minIntervalMs: o.minIntervalMs ?? 1000,
  });
  const serializer = new KeyedSerializer();
  // The latest known incident per window in this process: the engine stores what notify returns
  // asynchronously, so the next event's record may not show it yet.
  const known = new Map<string, StatuspageNoticeData>();

  const call = async (
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    body: unknown,
    ctx: NotifierContext,
  ): Promise<unknown> => {
    const headers: Record<string, string> = {
      Authorization: `OAuth ${o.apiKey}`,
      Accept: 'application/json',
    };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const request = {
      method,
      url: `${base}${path}`,
      headers,
      label: `${method} /pages/${o.pageId}${path}`,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    };
    const result = await delivery.send(request, ctx.signal, ctx.log);
    try {
      return JSON.parse(result.body);
    } catch (error) {
      throw new NotifierError(
        name,
        `${request.label} answered ${result.status} with a body that is not JSON`,
        {
          attempts: result.attempts,
          status: result.status,
          retryable: false,
          cause: error,
        },
      );
    }
  };

  const toData = (incident: Incident, fallback?: StatuspageNoticeData): StatuspageNoticeData => {
    if (typeof incident?.id !== 'string') {
      throw new NotifierError(name, 'Statuspage answered without an incident id', {
        attempts: 1,
        retryable: false,
      });
    }
    return {
      incidentId: incident.id,
      status: (incident.status as MaintenanceStatus) ?? fallback?.status ?? 'scheduled',
      scheduledUntil: incident.scheduled_until ?? fallback?.scheduledUntil ?? null,
      shortlink: incident.shortlink ?? fallback?.shortlink ?? null,
    };
  };

  const until = (w: MaintenanceWindow): string =>
    w.endsAt ?? new Date(Date.parse(w.startsAt) + defaultDurationMs).toISOString();

  const body = (event: NotifierEvent) => announce(event).lines.join('\n\n');

  const componentMap = (status: 'under_maintenance' | 'operational') =>
    Object.fromEntries(componentIds.map((id) => [id, status]));

  const adopt = async (windowId: string, ctx: NotifierContext): Promise<StatuspageNoticeData | undefined> => {
    if (!adoptExisting) return undefined;
    for (const list of ['active_maintenance', 'upcoming']) {
      const incidents = await call('GET', `/incidents/${list}`, undefined, ctx);
      if (!Array.isArray(incidents)) continue;
      const found = (incidents as Incident[]).find((i) => i?.metadata?.quiesce?.window_id === windowId);
      if (found) {
        ctx.log.info(`${name}: adopted incident ${found.id} of window ${windowId}`, { notifier: name });
        return toData(found);
      }
    }
    return undefined;
  };

  const create = async (
    event: NotifierEvent,
    status: 'scheduled' | 'in_progress',
    ctx: NotifierContext,
  ): Promise<StatuspageNoticeData> => {
    const w = event.window;
    const incident: Record<string, unknown> = {
      name: title(w),
      status,
      body: body(event),
      scheduled_for: w.startsAt,
      scheduled_until: until(w),
      scheduled_remind_prior: o.remindPrior ?? false,
      // quiesce moves the incident and the components itself, at the real begin and end.
      scheduled_auto_in_progress: false,
      scheduled_auto_completed: false,
      auto_transition_to_maintenance_state: false,
      auto_transition_to_operational_state: false,
      deliver_notifications: deliverNotifications,
      metadata: { quiesce: { window_id: w.id } },
      component_ids: componentIds,
    };
    // Statuspage applies a `components` map at once, even to a maintenance that is only
    // scheduled: send it only when the window is really active.
    if (status === 'in_progress') incident.components = componentMap('under_maintenance');
    return toData((await call('POST', '/incidents', { incident }, ctx)) as Incident);
  };

  const update = async (
    current: StatuspageNoticeData,
    incident: Record<string, unknown>,
    ctx: NotifierContext,
  ): Promise<StatuspageNoticeData> => {
    const answer = await call(
      'PATCH',
      `/incidents/${encodeURIComponent(current.incidentId)}`,
      { incident: { deliver_notifications: deliverNotifications, ...incident } },
      ctx,
    );
    return toData(answer as Incident, current);
  };

  const handle = async (
    event: NotifierEvent,
    ctx: NotifierContext,
  ): Promise<StatuspageNoticeData | undefined> => {
    const w = event.window;
    let current = known.get(w.id) ?? recordData(ctx.record?.data);
    const ensure = async () => {
      current ??= await adopt(w.id, ctx);
      return current;
    };
    switch (event.kind) {
      case 'scheduled': {
        if (!(await ensure())) return create(event, 'scheduled', ctx);
        if (current!.status !== 'scheduled') return current;
        return update(
          current!,
          { name: title(w), body: body(event), scheduled_for: w.startsAt, scheduled_until: until(w) },
          ctx,
        );
      }
      case 'started': {
        if (!(await ensure())) return create(event, 'in_progress', ctx);
        if (RANK[current!.status] >= RANK.in_progress) return current;
        return update(
          current!,
          {
            status: 'in_progress',
            body: body(event),
            scheduled_until: until(w),
            components: componentMap('under_maintenance'),
            component_ids: componentIds,
          },
          ctx,
        );
      }
      case 'extended': {
        if (!(await ensure())) {
          const active = event.phase === 'freezing' || event.phase === 'frozen';
          return create(event, active ? 'in_progress' : 'scheduled', ctx);
        }
        if (current!.status === 'completed') return current;
        return update(current!, { body: body(event), scheduled_until: until(w) }, ctx);
      }
      case 'ended': {
        if (!(await ensure())) {
          ctx.log.warn(`${name}: no incident to complete for window ${w.id}`, { notifier: name });
          return undefined;
        }
        if (current!.status === 'completed') return current;
        return update(
          current!,
          {
            status: 'completed',
            body: body(event),
            components: componentMap('operational'),
            component_ids: componentIds,
          },
          ctx,
        );
      }
      case 'closed':
        // Completed at `ended` already; the backfill is internal and not news for the status page.
        return current;
    }
  };

  return {
    name,
    notify(event, ctx) {
      return serializer.run(event.window.id, async () => {
        const data = await handle(event, ctx);
        if (data) known.set(event.window.id, data);
        return data;
      });
    },
  };
}

function recordData(data: Record<string, unknown> | undefined): StatuspageNoticeData | undefined {
  if (
    !data ||
    typeof data.incidentId !== 'string' ||
    !(typeof data.status === 'string' && data.status in RANK)
  ) {
    return undefined;
  }
  return {
    incidentId: data.incidentId,
    status: data.status as MaintenanceStatus,
    scheduledUntil: typeof data.scheduledUntil === 'string' ? data.scheduledUntil : null,
    shortlink: typeof data.shortlink === 'string' ? data.shortlink : null,
  };
}
