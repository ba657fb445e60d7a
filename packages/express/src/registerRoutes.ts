import type { Classification, InventoryEntry, Policy, QuiesceEngine } from '@quiesce/core';
import { isSafeMethod } from '@quiesce/core';
import { listRoutes } from './routeTable.js';

function classify(
  engine: QuiesceEngine,
  method: string,
  path: string,
): { classification: Classification; policy: Policy; explicit: boolean } {
  const safe = method !== '*' && isSafeMethod(method);
  const fallback = safe
    ? { classification: 'read' as const, policy: 'allow' as const, explicit: false }
    : { classification: 'write' as const, policy: 'block' as const, explicit: false };
  // Outside a window decide() only classifies (no counters, no events), so the engine's rules apply.
  // During a window it would count a refusal, so the surface default stands in.
  if (engine.readOnly) return fallback;
  const d = engine.decide({
    surface: 'http',
    name: `${method} ${path}`,
    method: method === '*' ? 'POST' : method,
    path,
  });
  const explicit = d.classification !== fallback.classification || d.policy !== fallback.policy;
  return { classification: d.classification, policy: d.policy, explicit };
}

/**
 * Report the write surfaces of an Express app (method, path, policy) to `engine.inventory()`.
 * The middleware calls this on its first request and `GET <base>/admin/inventory` refreshes it;
 * call it at startup to have the inventory before any traffic. Returns the entries registered.
 */
export function registerRoutes(engine: QuiesceEngine, app: unknown): InventoryEntry[] {
  const entries: InventoryEntry[] = [];
  const seen = new Set<string>();
  for (const r of listRoutes(app)) {
    // Express answers HEAD with the GET route: one entry is enough.
    if (r.method === 'HEAD') continue;
    const name = `${r.method} ${r.path}`;
    if (seen.has(name)) continue;
    seen.add(name);
    let c: { classification: Classification; policy: Policy; explicit: boolean };
    if (r.policy) {
      const a = r.policy.annotation;
      const readAllowed = a.policy === 'allow' && r.method !== '*' && isSafeMethod(r.method);
      c = readAllowed
        ? { classification: 'read', policy: 'allow', explicit: true }
        : { classification: 'write', policy: a.policy ?? 'block', explicit: true };
    } else {
      c = classify(engine, r.method, r.path);
    }
    if (c.classification !== 'write') continue;
    const entry: InventoryEntry = {
      surface: 'http',
      name,
      method: r.method,
      path: r.path,
      classification: c.classification,
      policy: c.policy,
      explicit: c.explicit,
      source: 'express',
      ...(r.policy ? { details: { helper: r.policy.kind } } : {}),
    };
    engine.register(entry);
    entries.push(entry);
  }
  return entries;
}
