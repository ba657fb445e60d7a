import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  DATE_TIME_MESSAGE,
  isStorableText,
  parseOrThrow,
  type QuiesceEngine,
  QuiesceError,
  toIsoDateTime,
  UNSTORABLE_TEXT_MESSAGE,
  type WriteIntent,
} from '@quiesce/core';
import { type RenderedResponse, readNodeBytes, renderError, sendNodeResponse } from '@quiesce/core/http';
import express from 'express';
import { z } from 'zod';
import { etagMatches, PublicStateView } from './publicState.js';
import { excludeFromReadHealth } from './quiesce.js';
import { registerRoutes } from './registerRoutes.js';
import { allowUnguarded, type Handler } from './routePolicy.js';

interface RouterCommonOptions {
  /** `max-age` of `GET /state`, in seconds, at most 5 so a banner follows a window closely. @default 5 */
  stateMaxAgeSeconds?: number;
  /** Interval of the `: ping` comment on `GET /events`. @default 15000 */
  heartbeatMs?: number;
  /** Reconnection delay the event stream asks clients for (`retry:`). @default 2000 */
  retryMs?: number;
  /** Largest admin JSON body, in bytes (larger: `413`). @default 16384 */
  adminBodyLimit?: number;
}

export type QuiesceRouterOptions = RouterCommonOptions &
  (
    | {
        /** Mount the admin routes. @default true */
        admin?: true;
        /**
         * Bearer token of the admin routes (at least 16 characters), or several keyed by the actor
         * recorded in the audit log (`{ alice: '…', deploybot: '…' }`). A single token acts as `admin`.
         */
        adminToken: string | Readonly<Record<string, string>>;
      }
    | { admin: false; adminToken?: never }
  );

/** The router: mount it with `app.use('/quiesce', router)`. `close()` ends the open event streams. */
export type QuiesceRouter = Handler & { close(): void };

type Req = IncomingMessage & {
  body?: unknown;
  query?: Record<string, unknown>;
  params?: Record<string, string>;
  baseUrl?: string;
  app?: unknown;
};

// RFC 3339 with an explicit offset, the same rule as the engine's (`2030` or a time without a zone is 400).
const isoTime = z
  .string(DATE_TIME_MESSAGE)
  .refine((s) => toIsoDateTime(s) !== null, { message: DATE_TIME_MESSAGE })
  .transform((s) => toIsoDateTime(s)!);
/** Text every store can hold (no NUL, no lone surrogate): the same 400 on every store. */
const text = (what: string) =>
  z.string(required(what)).refine(isStorableText, { message: UNSTORABLE_TEXT_MESSAGE });
const required = (what: string) => ({
  error: (issue: { input: unknown }) => (issue.input === undefined ? 'is required' : `must be ${what}`),
});

const beginBody = z
  .strictObject({
    reason: text('a string').trim().min(1, 'is required').max(500),
    message: text('a string').trim().min(1, 'is required').max(2000),
    endsAt: isoTime.optional(),
    durationMinutes: z
      .number('must be a number')
      .positive('must be positive')
      .max(10_080, 'must be at most 10080 (a week)')
      .optional(),
    startsAt: isoTime.optional(),
    contact: text('a string').max(500).optional(),
    rollbackPlan: text('a string').max(2000).optional(),
    scope: z.array(text('a string'), 'must be an array of surfaces').optional(),
    autoEnd: z.boolean('must be a boolean').optional(),
  })
  .superRefine((v, ctx) => {
    if (v.endsAt !== undefined && v.durationMinutes !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['durationMinutes'],
        message: 'give endsAt or durationMinutes, not both',
      });
    }
  });

const patchBody = z
  .strictObject({
    endsAt: isoTime.optional(),
    extendMinutes: z
      .number('must be a number')
      .positive('must be positive')
      .max(10_080, 'must be at most 10080 (a week)')
      .optional(),
    message: text('a string').trim().min(1, 'must not be empty').max(2000).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.endsAt !== undefined && v.extendMinutes !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['extendMinutes'],
        message: 'give endsAt or extendMinutes, not both',
      });
    } else if (v.endsAt === undefined && v.extendMinutes === undefined && v.message === undefined) {
      ctx.addIssue({ code: 'custom', path: [], message: 'give endsAt, extendMinutes or message' });
    }
  });

const endBody = z.strictObject({
  reason: text('a string').max(500).optional(),
  message: text('a string').max(2000).optional(),
  // fencing (#12): end a window in any phase (a stuck thaw or backfill), audited
  force: z.boolean('must be a boolean').optional(),
});

const intentsQuery = z.strictObject({
  status: z.enum(['queued', 'replaying', 'applied', 'failed']).optional(),
  limit: z.coerce
    .number('must be a number')
    .int('must be an integer')
    .min(1, 'must be at least 1')
    .max(1000, 'must be at most 1000')
    .optional(),
});

const auditQuery = z.strictObject({
  limit: z.coerce
    .number('must be a number')
    .int('must be an integer')
    .min(1, 'must be at least 1')
    .max(1000, 'must be at most 1000')
    .optional(),
  windowId: text('a string').min(1).optional(),
});

function positiveInt(name: string, value: number, max = Number.MAX_SAFE_INTEGER, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new QuiesceError(
      'INVALID_INPUT',
      `quiesceRouter(engine, options): ${name} must be an integer in [${min}, ${max}], got ${String(value)}`,
      {
        field: name,
      },
    );
  }
  return value;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

function tokenTable(adminToken: unknown): Array<{ actor: string; digest: Buffer }> {
  const entries: Array<[string, unknown]> =
    typeof adminToken === 'string'
      ? [['admin', adminToken]]
      : adminToken && typeof adminToken === 'object'
        ? Object.entries(adminToken)
        : [];
  if (entries.length === 0) {
    throw new QuiesceError(
      'INVALID_INPUT',
      'quiesceRouter(engine, options): adminToken is required (a string, or actor → token); pass admin: false to leave the admin routes out',
      { field: 'adminToken' },
    );
  }
  return entries.map(([actor, token]) => {
    if (typeof token !== 'string' || token.length < 16) {
      throw new QuiesceError(
        'INVALID_INPUT',
        `quiesceRouter(engine, options): adminToken${typeof adminToken === 'string' ? '' : `.${actor}`} must be a string of at least 16 characters`,
        {
          field: typeof adminToken === 'string' ? 'adminToken' : `adminToken.${actor}`,
        },
      );
    }
    return { actor, digest: digest(token) };
  });
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): RenderedResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
  };
}

async function readJsonBody(req: Req, limit: number): Promise<Record<string, unknown>> {
  let value: unknown;
  if (req.body !== undefined) value = req.body;
  else {
    const raw = await readNodeBytes(req, limit, 'admin requests');
    if (raw.length === 0) return {};
    const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (type !== 'application/json' && !type.endsWith('+json')) {
      throw new QuiesceError(
        'INVALID_INPUT',
        `body: send JSON with Content-Type: application/json (got ${type || 'none'})`,
        { field: 'body' },
      );
    }
    try {
      value = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new QuiesceError('INVALID_INPUT', `body: not valid JSON (${(err as Error).message})`, {
        field: 'body',
        cause: err,
      });
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new QuiesceError('INVALID_INPUT', 'body: must be a JSON object', { field: 'body' });
  }
  return value as Record<string, unknown>;
}

/** What a client may see of a queued write: never the payload or the principal. */
function intentView(i: WriteIntent) {
  return {
    id: i.id,
    name: i.name,
    status: i.status,
    idempotencyKey: i.idempotencyKey,
    windowId: i.windowId,
    createdAt: i.createdAt,
    attempts: i.attempts,
    appliedAt: i.appliedAt,
  };
}

/**
 * Public state, live events, intent status and the admin API, to mount under a base path
 * (`app.use('/quiesce', quiesceRouter(engine, { adminToken }))`). Routes: `GET /state`,
 * `GET /events`, `GET /intents/:id`, and with a Bearer token `GET /admin/status`,
 * `POST /admin/windows`, `PATCH /admin/windows/current`, `POST /admin/windows/current/end`,
 * `GET /admin/inventory`, `GET /admin/intents`, `GET /admin/audit`.
 */
export function quiesceRouter(engine: QuiesceEngine, options: QuiesceRouterOptions): QuiesceRouter {
  if (!engine || typeof engine.decide !== 'function') {
    throw new QuiesceError(
      'INVALID_INPUT',
      'quiesceRouter(engine): engine must be a QuiesceEngine from createQuiesce()',
      { field: 'engine' },
    );
  }
  if (options === null || typeof options !== 'object') {
    throw new QuiesceError('INVALID_INPUT', 'quiesceRouter(engine, options): options must be an object', {
      field: 'options',
    });
  }
  const maxAge = positiveInt('stateMaxAgeSeconds', options.stateMaxAgeSeconds ?? 5, 5, 0);
  const heartbeatMs = positiveInt('heartbeatMs', options.heartbeatMs ?? 15_000, 3_600_000, 10);
  const retryMs = positiveInt('retryMs', options.retryMs ?? 2000, 3_600_000, 0);
  const bodyLimit = positiveInt('adminBodyLimit', options.adminBodyLimit ?? 16 * 1024, 1024 * 1024);
  if (options.admin !== undefined && typeof options.admin !== 'boolean') {
    throw new QuiesceError('INVALID_INPUT', 'quiesceRouter(engine, options): admin must be a boolean', {
      field: 'admin',
    });
  }
  const tokens = options.admin === false ? null : tokenTable(options.adminToken);

  const view = new PublicStateView(engine);
  const streams = new Set<() => void>();
  const router = express.Router();
  const open = allowUnguarded();
  const send = (res: ServerResponse, r: RenderedResponse) => sendNodeResponse(res, r);
  const route =
    (
      fn: (
        req: Req,
        res: ServerResponse,
      ) => Promise<RenderedResponse | undefined> | RenderedResponse | undefined,
    ) =>
    (req: Req, res: ServerResponse) => {
      Promise.resolve()
        .then(() => fn(req, res))
        .then(
          (r) => r && send(res, r),
          (err) => send(res, renderError(err)),
        );
    };

  router.get(
    '/state',
    route((req) => {
      const snap = view.snapshot();
      const headers = { etag: snap.etag, 'cache-control': `public, max-age=${maxAge}` };
      if (etagMatches(req.headers['if-none-match'], snap.etag)) return { status: 304, headers, body: '' };
      return {
        status: 200,
        headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
        body: view.body(snap),
      };
    }),
  );

  router.get('/events', (req: Req, res: ServerResponse) => {
    excludeFromReadHealth(res);
    res.statusCode = 200;
    res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('cache-control', 'no-cache, no-transform');
    res.setHeader('connection', 'keep-alive');
    res.setHeader('x-accel-buffering', 'no');
    req.socket.setTimeout(0);
    req.socket.setNoDelay(true);
    const flush = () => (res as ServerResponse & { flush?: () => void }).flush?.();
    let last = '';
    const push = () => {
      const snap = view.snapshot();
      if (snap.key === last) return;
      last = snap.key;
      res.write(`event: state\nid: ${snap.view.version}\ndata: ${view.body(snap)}\n\n`);
      flush();
    };
    res.write(`retry: ${retryMs}\n\n`);
    push();
    // A state change and its phase change arrive as two events; `push` sends each new view once.
    const offState = engine.on('state', push);
    const offPhase = engine.on('phase', push);
    const ping = setInterval(() => {
      res.write(': ping\n\n');
      flush();
    }, heartbeatMs);
    ping.unref();
    const stop = () => {
      if (!streams.delete(stop)) return;
      clearInterval(ping);
      offState();
      offPhase();
      if (!res.writableEnded) res.end();
    };
    streams.add(stop);
    req.on('close', stop);
    res.on('close', stop);
  });

  router.get(
    '/intents/:id',
    route(async (req) => {
      const id = req.params?.id ?? '';
      const intent = isStorableText(id) ? await engine.getIntent(id) : null;
      if (!intent)
        throw new QuiesceError('NOT_FOUND', `intent ${JSON.stringify(id)} not found`, { field: 'id' });
      return json(200, intentView(intent));
    }),
  );

  /*
   * The router's own paths answer every method themselves (405 + Allow, 404), marked `allow`: the
   * quiesce middleware in front never refuses its own admin surface as a write during a window.
   */
  const others = (allowed: string, guard?: (req: Req, res: ServerResponse) => void) =>
    route((req, res) => {
      if (req.method === 'OPTIONS') {
        return { status: 204, headers: { allow: allowed, 'cache-control': 'no-store' }, body: '' };
      }
      guard?.(req, res);
      res.setHeader('allow', allowed);
      throw new QuiesceError(
        'METHOD_NOT_ALLOWED',
        `${req.method} ${req.baseUrl ?? ''}${(req.url ?? '').split('?', 1)[0]}: use ${allowed}`,
        { details: { allow: allowed } },
      );
    });
  for (const path of ['/state', '/events', '/intents/:id']) router.all(path, open, others('GET, HEAD'));
  router.all(
    '/intents{/}',
    open,
    route(() => {
      throw new QuiesceError('NOT_FOUND', 'intent id missing: GET /intents/<id>', { field: 'id' });
    }),
  );

  if (tokens) {
    const actorOf = (req: IncomingMessage): string => {
      const header = req.headers.authorization;
      const m = header ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
      if (!m) {
        throw new QuiesceError('UNAUTHORIZED', 'Authorization: send Authorization: Bearer <admin token>', {
          field: 'Authorization',
        });
      }
      // Hash, then compare every token in constant time: neither a prefix nor the length leaks.
      const given = digest(m[1]!);
      let actor: string | null = null;
      for (const t of tokens) if (timingSafeEqual(given, t.digest) && actor === null) actor = t.actor;
      if (actor === null)
        throw new QuiesceError('FORBIDDEN', 'Authorization: the admin token is not valid', {
          field: 'Authorization',
        });
      return actor;
    };
    const admin = (fn: (req: Req, actor: string) => Promise<RenderedResponse>) =>
      route(async (req, res) => {
        let actor: string;
        try {
          actor = actorOf(req);
        } catch (err) {
          if (err instanceof QuiesceError && err.code === 'UNAUTHORIZED') {
            res.setHeader('www-authenticate', 'Bearer realm="quiesce"');
          }
          throw err;
        }
        return fn(req, actor);
      });
    const authenticate = (req: Req, res: ServerResponse) => {
      try {
        actorOf(req);
      } catch (err) {
        if (err instanceof QuiesceError && err.code === 'UNAUTHORIZED') {
          res.setHeader('www-authenticate', 'Bearer realm="quiesce"');
        }
        throw err;
      }
    };

    router.get(
      '/admin/status',
      open,
      admin(async () => json(200, await engine.status())),
    );

    router.post(
      '/admin/windows',
      open,
      admin(async (req, actor) => {
        const v = parseOrThrow(beginBody, await readJsonBody(req, bodyLimit), 'POST /admin/windows');
        let endsAt = v.endsAt;
        if (v.durationMinutes !== undefined) {
          endsAt = new Date(
            (v.startsAt ? Date.parse(v.startsAt) : Date.now()) + v.durationMinutes * 60_000,
          ).toISOString();
        }
        const input = {
          reason: v.reason,
          message: v.message,
          actor,
          ...(endsAt !== undefined ? { endsAt } : {}),
          ...(v.contact !== undefined ? { contact: v.contact } : {}),
          ...(v.rollbackPlan !== undefined ? { rollbackPlan: v.rollbackPlan } : {}),
          ...(v.scope !== undefined ? { scope: v.scope } : {}),
          ...(v.autoEnd !== undefined ? { autoEnd: v.autoEnd } : {}),
        };
        const window = v.startsAt
          ? await engine.schedule({ ...input, startsAt: v.startsAt })
          : await engine.begin(input);
        return json(201, { window }, { location: `${req.baseUrl ?? ''}/admin/status` });
      }),
    );

    router.patch(
      '/admin/windows/current',
      open,
      admin(async (req, actor) => {
        const v = parseOrThrow(patchBody, await readJsonBody(req, bodyLimit), 'PATCH /admin/windows/current');
        const window = await engine.extend({
          actor,
          ...(v.endsAt !== undefined ? { endsAt: v.endsAt } : {}),
          ...(v.extendMinutes !== undefined ? { byMs: Math.round(v.extendMinutes * 60_000) } : {}),
          ...(v.message !== undefined ? { message: v.message } : {}),
        });
        return json(200, { window });
      }),
    );

    router.post(
      '/admin/windows/current/end',
      open,
      admin(async (req, actor) => {
        const v = parseOrThrow(
          endBody,
          await readJsonBody(req, bodyLimit),
          'POST /admin/windows/current/end',
        );
        const window = await engine.end({ actor, ...v });
        return json(200, { window });
      }),
    );

    router.get(
      '/admin/inventory',
      open,
      admin(async (req) => {
        if (req.app) registerRoutes(engine, req.app);
        const entries = engine.inventory();
        return json(200, {
          entries,
          unclassified: entries.filter((e) => e.classification === 'write' && !e.explicit),
        });
      }),
    );

    router.get(
      '/admin/intents',
      open,
      admin(async (req) => {
        const q = parseOrThrow(intentsQuery, { ...req.query }, 'GET /admin/intents');
        const intents = await engine.listIntents({ limit: 100, ...q });
        return json(200, { intents: intents.map(intentView) });
      }),
    );

    router.get(
      '/admin/audit',
      open,
      admin(async (req) => {
        const q = parseOrThrow(auditQuery, { ...req.query }, 'GET /admin/audit');
        return json(200, { entries: await engine.audit(q) });
      }),
    );

    const adminOthers = (allowed: string) => others(allowed, authenticate);
    router.all('/admin/status', open, adminOthers('GET, HEAD'));
    router.all('/admin/windows', open, adminOthers('POST'));
    router.all('/admin/windows/current', open, adminOthers('PATCH'));
    router.all('/admin/windows/current/end', open, adminOthers('POST'));
    for (const path of ['/admin/inventory', '/admin/intents', '/admin/audit'])
      router.all(path, open, adminOthers('GET, HEAD'));
    // Only the current window is addressable; any other id, and any other admin path, is 404.
    router.all(
      ['/admin/windows/:id', '/admin/windows/:id/*rest'],
      open,
      admin(async (req) => {
        throw new QuiesceError(
          'NOT_FOUND',
          `window ${JSON.stringify(req.params?.id ?? '')} not found: the admin API addresses the open window as "current"`,
          { field: 'id' },
        );
      }),
    );
    router.all(
      '/admin{/*rest}',
      open,
      admin(async (req) => {
        throw new QuiesceError(
          'NOT_FOUND',
          `${req.baseUrl ?? ''}${(req.url ?? '').split('?', 1)[0]}: no such admin route (see GET /admin/status)`,
        );
      }),
    );
  }

  return Object.assign(router as unknown as Handler, {
    close() {
      for (const stop of [...streams]) stop();
    },
  });
}
