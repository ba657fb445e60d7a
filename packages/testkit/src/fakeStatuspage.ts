import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local fake of Atlassian Statuspage's Manage API v1 (https://developer.statuspage.io), for the
 * incident and component calls a maintenance notifier makes. It enforces the documented contract:
 *
 * - `Authorization: OAuth <api key>` on every call (401 otherwise); unknown page or incident 404;
 * - 1 request per second per API key, measured on a 60 s rolling window, answered 429 (or 420,
 *   both documented) when exceeded;
 * - bodies as JSON `{ "incident": { … } }` with the documented field names and types; a scheduled
 *   maintenance needs `scheduled_for` < `scheduled_until` (ISO 8601);
 * - statuses: maintenances `scheduled → in_progress → verifying → completed` (forward only,
 *   `completed` final), realtime incidents `investigating/identified/monitoring/resolved`, no
 *   switching between the two kinds;
 * - a `components` map (`{ id: status }`) is applied to the page's components at once, on create
 *   as on update, as the real API does (even for a maintenance that is only scheduled).
 *
 * Stricter than the real API in one way: an unknown incident field is a 422 naming it (the real API
 * ignores it, which hides typos).
 */
export interface FakeStatuspageOptions {
  /** @default 'test-api-key' */
  apiKey?: string;
  /** @default 'page0001' */
  pageId?: string;
  /** @default [{ id: 'cmp_api', name: 'API' }, { id: 'cmp_web', name: 'Website' }] */
  components?: Array<{ id: string; name: string }>;
  /** Time source for the rate limit and timestamps, shareable with a test's virtual clock. @default Date.now */
  now?: () => number;
  /** @default { requests: 60, windowMs: 60000, status: 429 } (the documented 1 request/second on a 60 s window) */
  rateLimit?: { requests: number; windowMs: number; status?: 420 | 429 };
}

export type MaintenanceStatus = 'scheduled' | 'in_progress' | 'verifying' | 'completed';
export type RealtimeStatus = 'investigating' | 'identified' | 'monitoring' | 'resolved' | 'postmortem';
export type ComponentStatus =
  | 'operational'
  | 'under_maintenance'
  | 'degraded_performance'
  | 'partial_outage'
  | 'major_outage';

export interface FakeIncident {
  id: string;
  page_id: string;
  name: string;
  status: MaintenanceStatus | RealtimeStatus;
  impact: string;
  scheduled_for: string | null;
  scheduled_until: string | null;
  scheduled_remind_prior: boolean;
  scheduled_auto_in_progress: boolean;
  scheduled_auto_completed: boolean;
  metadata: Record<string, unknown>;
  shortlink: string;
  created_at: string;
  updated_at: string;
  started_at: string;
  resolved_at: string | null;
  components: Array<{ id: string; name: string; status: ComponentStatus }>;
  incident_updates: Array<{
    id: string;
    incident_id: string;
    status: string;
    body: string;
    created_at: string;
    deliver_notifications: boolean;
    affected_components: Array<{ code: string; name: string; old_status: string; new_status: string }> | null;
  }>;
}

export interface FakeRequest {
  method: string;
  path: string;
  status: number;
  at: number;
  authorization: string | undefined;
  body: unknown;
}

export interface FakeStatuspage {
  /** Base URL including `/v1`, to pass as the notifier's `baseUrl`. */
  readonly url: string;
  readonly apiKey: string;
  readonly pageId: string;
  /** Every request in arrival order, with the status the fake answered. */
  readonly requests: FakeRequest[];
  /** Every component status change, in order. */
  readonly componentChanges: Array<{
    at: number;
    id: string;
    from: ComponentStatus;
    to: ComponentStatus;
    incidentId: string;
  }>;
  incidents(): FakeIncident[];
  componentStatus(id: string): ComponentStatus;
  /** Answer the next `count` requests with `status` (default 503) before looking at them. */
  failNext(count: number, status?: number): void;
  /** Use up the API key's rate-limit allowance now (as a second client on the same key would). */
  exhaustRateLimit(): void;
  close(): Promise<void>;
}

const MAINTENANCE: MaintenanceStatus[] = ['scheduled', 'in_progress', 'verifying', 'completed'];
const REALTIME: RealtimeStatus[] = ['investigating', 'identified', 'monitoring', 'resolved', 'postmortem'];
const COMPONENT_STATUSES: ComponentStatus[] = [
  'operational',
  'under_maintenance',
  'degraded_performance',
  'partial_outage',
  'major_outage',
];
const BOOLEAN_FIELDS = [
  'scheduled_remind_prior',
  'scheduled_auto_in_progress',
  'scheduled_auto_completed',
  'deliver_notifications',
  'auto_transition_deliver_notifications_at_end',
  'auto_transition_deliver_notifications_at_start',
  'auto_transition_to_maintenance_state',
  'auto_transition_to_operational_state',
  'auto_tweet_at_beginning',
  'auto_tweet_on_completion',
  'auto_tweet_on_creation',
  'auto_tweet_one_hour_before',
  'backfilled',
  'scheduled_auto_transition',
] as const;
const STRING_FIELDS = [
  'name',
  'status',
  'impact_override',
  'body',
  'backfill_date',
  'reminder_intervals',
] as const;
const KNOWN_FIELDS = new Set<string>([
  ...BOOLEAN_FIELDS,
  ...STRING_FIELDS,
  'scheduled_for',
  'scheduled_until',
  'metadata',
  'components',
  'component_ids',
]);

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const isIso = (v: unknown): v is string =>
  typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v));

const newId = () => randomBytes(6).toString('hex');

export async function startFakeStatuspage(options: FakeStatuspageOptions = {}): Promise<FakeStatuspage> {
  const apiKey = options.apiKey ?? 'test-api-key';
  const pageId = options.pageId ?? 'page0001';
  const now = options.now ?? Date.now;
  const limit = { requests: 60, windowMs: 60_000, status: 429 as 420 | 429, ...options.rateLimit };
  const components = new Map<string, { id: string; name: string; status: ComponentStatus }>();
  for (const c of options.components ?? [
    { id: 'cmp_api', name: 'API' },
    { id: 'cmp_web', name: 'Website' },
  ]) {
    components.set(c.id, { ...c, status: 'operational' });
  }
  const incidents = new Map<string, FakeIncident>();
  const requests: FakeRequest[] = [];
  const componentChanges: FakeStatuspage['componentChanges'] = [];
  let accepted: number[] = [];
  let failures: { count: number; status: number } = { count: 0, status: 503 };

  const iso = () => new Date(now()).toISOString();

  const validateIncident = (input: unknown, creating: boolean): Record<string, unknown> => {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new HttpError(400, 'incident is missing: send { "incident": { ... } }');
    }
    const fields = input as Record<string, unknown>;
    const unknown = Object.keys(fields).filter((k) => !KNOWN_FIELDS.has(k));
    if (unknown.length) throw new HttpError(422, `unknown incident field(s): ${unknown.join(', ')}`);
    for (const k of BOOLEAN_FIELDS) {
      if (k in fields && typeof fields[k] !== 'boolean')
        throw new HttpError(422, `incident[${k}] must be a boolean`);
    }
    for (const k of STRING_FIELDS) {
      if (k in fields && typeof fields[k] !== 'string')
        throw new HttpError(422, `incident[${k}] must be a string`);
    }
    if (creating && !(typeof fields.name === 'string' && fields.name.trim())) {
      throw new HttpError(422, "incident[name] can't be blank");
    }
    if ('status' in fields && ![...MAINTENANCE, ...REALTIME].includes(fields.status as MaintenanceStatus)) {
      throw new HttpError(422, `incident[status] is not a valid status: ${String(fields.status)}`);
    }
    for (const k of ['scheduled_for', 'scheduled_until']) {
      if (k in fields && !isIso(fields[k]))
        throw new HttpError(422, `incident[${k}] must be an ISO 8601 date-time`);
    }
    if ('metadata' in fields && (typeof fields.metadata !== 'object' || fields.metadata === null)) {
      throw new HttpError(422, 'incident[metadata] must be an object');
    }
    if ('components' in fields) {
      const map = fields.components;
      if (typeof map !== 'object' || map === null || Array.isArray(map)) {
        throw new HttpError(422, 'incident[components] must be an object of component id to status');
      }
      for (const [id, status] of Object.entries(map)) {
        if (!components.has(id)) throw new HttpError(422, `incident[components]: unknown component ${id}`);
        if (!COMPONENT_STATUSES.includes(status as ComponentStatus)) {
          throw new HttpError(
            422,
            `incident[components][${id}] is not a valid component status: ${String(status)}`,
          );
        }
      }
    }
    if ('component_ids' in fields) {
      const ids = fields.component_ids;
      if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) {
        throw new HttpError(422, 'incident[component_ids] must be an array of component ids');
      }
      for (const id of ids)
        if (!components.has(id)) throw new HttpError(422, `incident[component_ids]: unknown component ${id}`);
    }
    return fields;
  };

  const applyComponents = (incident: FakeIncident, fields: Record<string, unknown>) => {
    const affected: NonNullable<FakeIncident['incident_updates'][number]['affected_components']> = [];
    const ids = new Set(incident.components.map((c) => c.id));
    for (const id of (fields.component_ids as string[] | undefined) ?? []) ids.add(id);
    for (const [id, status] of Object.entries((fields.components as Record<string, ComponentStatus>) ?? {})) {
      ids.add(id);
      const c = components.get(id)!;
      if (c.status !== status) {
        componentChanges.push({ at: now(), id, from: c.status, to: status, incidentId: incident.id });
        affected.push({ code: id, name: c.name, old_status: c.status, new_status: status });
        c.status = status;
      }
    }
    incident.components = [...ids].map((id) => ({ ...components.get(id)! }));
    return affected.length ? affected : null;
  };

  const addUpdate = (
    incident: FakeIncident,
    fields: Record<string, unknown>,
    affected: ReturnType<typeof applyComponents>,
  ) => {
    incident.incident_updates.unshift({
      id: newId(),
      incident_id: incident.id,
      status: incident.status,
      body: typeof fields.body === 'string' ? fields.body : '',
      created_at: iso(),
      deliver_notifications: fields.deliver_notifications !== false,
      affected_components: affected,
    });
  };

  const create = (fields: Record<string, unknown>): FakeIncident => {
    const status = (fields.status as FakeIncident['status'] | undefined) ?? 'investigating';
    const maintenance = MAINTENANCE.includes(status as MaintenanceStatus);
    if (maintenance) {
      if (!isIso(fields.scheduled_for) || !isIso(fields.scheduled_until)) {
        throw new HttpError(
          422,
          'a scheduled maintenance needs incident[scheduled_for] and incident[scheduled_until]',
        );
      }
      if (Date.parse(fields.scheduled_until) <= Date.parse(fields.scheduled_for)) {
        throw new HttpError(422, 'incident[scheduled_until] must be after incident[scheduled_for]');
      }
    }
    const id = newId();
    const incident: FakeIncident = {
      id,
      page_id: pageId,
      name: fields.name as string,
      status,
      impact: maintenance ? 'maintenance' : ((fields.impact_override as string) ?? 'none'),
      scheduled_for: maintenance ? new Date(fields.scheduled_for as string).toISOString() : null,
      scheduled_until: maintenance ? new Date(fields.scheduled_until as string).toISOString() : null,
      scheduled_remind_prior: fields.scheduled_remind_prior === true,
      scheduled_auto_in_progress: fields.scheduled_auto_in_progress === true,
      scheduled_auto_completed: fields.scheduled_auto_completed === true,
      metadata: (fields.metadata as Record<string, unknown>) ?? {},
      shortlink: `https://stspg.io/${id.slice(0, 8)}`,
      created_at: iso(),
      updated_at: iso(),
      started_at: iso(),
      resolved_at: status === 'completed' || status === 'resolved' ? iso() : null,
      components: [],
      incident_updates: [],
    };
    const affected = applyComponents(incident, fields);
    addUpdate(incident, fields, affected);
    incidents.set(id, incident);
    return incident;
  };

  const update = (incident: FakeIncident, fields: Record<string, unknown>): FakeIncident => {
    const maintenance = MAINTENANCE.includes(incident.status as MaintenanceStatus);
    if ('status' in fields && fields.status !== incident.status) {
      const to = fields.status as FakeIncident['status'];
      if (maintenance !== MAINTENANCE.includes(to as MaintenanceStatus)) {
        throw new HttpError(
          422,
          `incident[status] cannot change a ${maintenance ? 'maintenance' : 'realtime incident'} to ${to}`,
        );
      }
      const order: string[] = maintenance ? MAINTENANCE : REALTIME;
      if (incident.status === 'completed' || order.indexOf(to) < order.indexOf(incident.status)) {
        throw new HttpError(422, `incident[status] cannot go from ${incident.status} to ${to}`);
      }
      incident.status = to;
      if (to === 'completed' || to === 'resolved') incident.resolved_at = iso();
    }
    if (maintenance) {
      const from = (fields.scheduled_for as string | undefined) ?? incident.scheduled_for!;
      const until = (fields.scheduled_until as string | undefined) ?? incident.scheduled_until!;
      if (Date.parse(until) <= Date.parse(from)) {
        throw new HttpError(422, 'incident[scheduled_until] must be after incident[scheduled_for]');
      }
      incident.scheduled_for = new Date(from).toISOString();
      incident.scheduled_until = new Date(until).toISOString();
    }
    if (typeof fields.name === 'string') incident.name = fields.name;
    if (fields.metadata) incident.metadata = fields.metadata as Record<string, unknown>;
    const affected = applyComponents(incident, fields);
    addUpdate(incident, fields, affected);
    incident.updated_at = iso();
    return incident;
  };

  const route = (method: string, path: string, body: unknown): { status: number; json: unknown } => {
    const m = /^\/v1\/pages\/([^/]+)(\/.*)?$/.exec(path);
    if (!m) throw new HttpError(404, 'Not found');
    if (decodeURIComponent(m[1]!) !== pageId) throw new HttpError(404, 'Page not found');
    const rest = m[2] ?? '';
    const all = () => [...incidents.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    const isMaint = (i: FakeIncident) => MAINTENANCE.includes(i.status as MaintenanceStatus);
    if (method === 'GET') {
      if (rest === '/components') return { status: 200, json: [...components.values()] };
      if (rest === '/incidents') return { status: 200, json: all() };
      if (rest === '/incidents/upcoming')
        return { status: 200, json: all().filter((i) => i.status === 'scheduled') };
      if (rest === '/incidents/scheduled') return { status: 200, json: all().filter(isMaint) };
      if (rest === '/incidents/active_maintenance') {
        return {
          status: 200,
          json: all().filter((i) => i.status === 'in_progress' || i.status === 'verifying'),
        };
      }
      if (rest === '/incidents/unresolved') {
        return {
          status: 200,
          json: all().filter((i) => !isMaint(i) && i.status !== 'resolved' && i.status !== 'postmortem'),
        };
      }
    }
    const one = /^\/incidents\/([^/]+)$/.exec(rest);
    if (one) {
      const incident = incidents.get(decodeURIComponent(one[1]!));
      if (!incident) throw new HttpError(404, 'Incident not found');
      if (method === 'GET') return { status: 200, json: incident };
      if (method === 'PATCH' || method === 'PUT') {
        const fields = validateIncident((body as { incident?: unknown } | undefined)?.incident, false);
        return { status: 200, json: update(incident, fields) };
      }
      if (method === 'DELETE') {
        incidents.delete(incident.id);
        return { status: 200, json: incident };
      }
    }
    if (rest === '/incidents' && method === 'POST') {
      const fields = validateIncident((body as { incident?: unknown } | undefined)?.incident, true);
      return { status: 201, json: create(fields) };
    }
    throw new HttpError(405, `${method} ${rest || '/'} is not supported`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://fake').pathname.replace(/\.json$/, '');
    const entry: FakeRequest = {
      method,
      path,
      status: 0,
      at: now(),
      authorization: req.headers.authorization,
      body: undefined,
    };
    requests.push(entry);
    const send = (status: number, json: unknown) => {
      entry.status = status;
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(json));
    };
    try {
      if (failures.count > 0) {
        failures.count--;
        return send(failures.status, { error: 'Service temporarily unavailable (injected)' });
      }
      if (req.headers.authorization !== `OAuth ${apiKey}`) throw new HttpError(401, 'Could not authenticate');
      const t = now();
      accepted = accepted.filter((at) => at > t - limit.windowMs);
      if (accepted.length >= limit.requests) {
        return send(limit.status, { error: 'Rate limit exceeded. Please retry later.' });
      }
      accepted.push(t);
      let body: unknown;
      if (raw.length > 0) {
        if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
          throw new HttpError(400, 'Content-Type must be application/json for a JSON body');
        }
        try {
          body = JSON.parse(raw);
        } catch {
          throw new HttpError(400, 'body is not valid JSON');
        }
        entry.body = body;
      }
      const out = route(method, path, body);
      send(out.status, out.json);
    } catch (error) {
      if (error instanceof HttpError) return send(error.status, { error: error.message });
      send(500, { error: String(error) });
    }
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    apiKey,
    pageId,
    requests,
    componentChanges,
    incidents: () => [...incidents.values()],
    componentStatus: (id) => {
      const c = components.get(id);
      if (!c) throw new Error(`fake statuspage: no component ${id}`);
      return c.status;
    },
    failNext(count, status = 503) {
      failures = { count, status };
    },
    exhaustRateLimit() {
      const t = now();
      accepted = Array.from({ length: limit.requests }, () => t);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
