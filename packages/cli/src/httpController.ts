import type { AuditEntry, EngineStatus, InventoryEntry, MaintenanceWindow } from '@quiesce/core';
import { CliError, EXIT, exitForCode } from './cliError.js';
import type { BeginRequest, Controller, EndRequest, ExtendRequest, IntentView } from './controller.js';

export interface HttpControllerOptions {
  /** Base URL of the app's quiesce router, e.g. `http://127.0.0.1:3000/quiesce`. */
  url: string;
  token?: string;
  /** Per request. @default 10000 */
  requestTimeoutMs?: number;
}

/** Validate `--url`: an absolute http(s) URL, no credentials, no query. */
export function parseBaseUrl(value: string, flag = '--url'): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliError(
      EXIT.usage,
      `${flag}: "${value}" is not a URL; use e.g. http://127.0.0.1:3000/quiesce`,
      {
        field: flag,
      },
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(
      EXIT.usage,
      `${flag}: must be an http:// or https:// URL of the app's quiesce router, got ${url.protocol}//…` +
        (/^(postgres|postgresql|redis|rediss|file):$/.test(url.protocol) ? ' (a store? use --store)' : ''),
      { field: flag },
    );
  }
  if (url.username || url.password) {
    throw new CliError(
      EXIT.usage,
      `${flag}: put the admin token in --token or QUIESCE_TOKEN, not in the URL`,
      {
        field: flag,
      },
    );
  }
  if (url.search || url.hash) {
    throw new CliError(EXIT.usage, `${flag}: give the router's base URL without a query or fragment`, {
      field: flag,
    });
  }
  url.pathname = url.pathname.replace(/\/+$/, '');
  return url;
}

/** The admin API of `@quiesce/express`'s `quiesceRouter` (or any router with the same contract). */
export function createHttpController(options: HttpControllerOptions): Controller {
  const base = parseBaseUrl(options.url);
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  // No trailing slash: `${target}/admin/…` must not become `//admin` (a QUIESCE_URL without a path).
  const target = base.toString().replace(/\/+$/, '');

  async function call<T>(method: string, path: string, body?: unknown, admin = true): Promise<T> {
    if (admin && !options.token) {
      throw new CliError(
        EXIT.auth,
        `the admin API of ${target} needs a token: pass --token or set QUIESCE_TOKEN`,
        {
          field: '--token',
        },
      );
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (admin) headers.authorization = `Bearer ${options.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${target}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why =
        (err as Error).name === 'TimeoutError'
          ? `no answer within ${timeoutMs} ms`
          : (cause?.code ?? cause?.message ?? (err as Error).message);
      throw new CliError(EXIT.unreachable, `cannot reach ${target}: ${why}`, { cause: err });
    }
    const text = await res.text();
    let parsed: any = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (!res.ok) {
      const code: string | undefined = parsed?.code;
      const detail: string =
        parsed?.detail ?? parsed?.message ?? (text.slice(0, 200) || `${res.status} ${res.statusText}`);
      if (res.status === 404 && !code) {
        throw new CliError(
          EXIT.usage,
          `${method} ${target}${path}: 404 — is ${target} the base of the app's quiesce router (e.g. …/quiesce)?`,
          { field: '--url' },
        );
      }
      throw new CliError(exitForCode(code, res.status), `${detail}${code ? ` [${code}]` : ''}`, {
        field: parsed?.field,
      });
    }
    if (parsed === null) {
      throw new CliError(
        EXIT.failure,
        `${method} ${target}${path}: expected JSON, got ${res.headers.get('content-type')}`,
      );
    }
    return parsed as T;
  }

  return {
    kind: 'http',
    target,
    async begin(input: BeginRequest) {
      const { actor: _actor, ...body } = input; // the server records the token's actor
      return (await call<{ window: MaintenanceWindow }>('POST', '/admin/windows', body)).window;
    },
    async extend(input: ExtendRequest) {
      const body: Record<string, unknown> = {};
      if (input.endsAt !== undefined) body.endsAt = input.endsAt;
      if (input.byMs !== undefined) body.extendMinutes = input.byMs / 60_000;
      if (input.message !== undefined) body.message = input.message;
      return (await call<{ window: MaintenanceWindow }>('PATCH', '/admin/windows/current', body)).window;
    },
    async end(input: EndRequest) {
      const { actor: _actor, ...body } = input;
      return (await call<{ window: MaintenanceWindow }>('POST', '/admin/windows/current/end', body)).window;
    },
    status: () => call<EngineStatus>('GET', '/admin/status'),
    inventory: () =>
      call<{ entries: InventoryEntry[]; unclassified: InventoryEntry[] }>('GET', '/admin/inventory'),
    async audit(o) {
      const q = new URLSearchParams();
      if (o.limit !== undefined) q.set('limit', String(o.limit));
      if (o.windowId !== undefined) q.set('windowId', o.windowId);
      const qs = q.size ? `?${q}` : '';
      return (await call<{ entries: AuditEntry[] }>('GET', `/admin/audit${qs}`)).entries;
    },
    intent: (id: string) => call<IntentView>('GET', `/intents/${encodeURIComponent(id)}`, undefined, false),
    async intents(o) {
      const q = new URLSearchParams();
      if (o.status !== undefined) q.set('status', o.status);
      if (o.limit !== undefined) q.set('limit', String(o.limit));
      const qs = q.size ? `?${q}` : '';
      return (await call<{ intents: IntentView[] }>('GET', `/admin/intents${qs}`)).intents;
    },
    async close() {},
  };
}
