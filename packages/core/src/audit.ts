import type { Mode, Phase } from './window.js';

/** Every state change: who, when, why, from, to, version. */
export interface AuditEntry {
  at: string;
  actor: string;
  action:
    | 'schedule'
    | 'begin'
    | 'extend'
    | 'end'
    | 'phase'
    | 'fallback'
    | 'recover'
    | 'notice'
    // fencing: an instance's own lease lapsed or came back; another instance's lease expired
    | 'lease'
    // fencing: a live instance took over the window of a controller whose lease expired
    | 'takeover';
  reason?: string;
  windowId: string | null;
  from: { mode: Mode; phase: Phase | null };
  to: { mode: Mode; phase: Phase | null };
  version: number;
  details?: Record<string, unknown>;
}

export interface AuditLog {
  append(entry: AuditEntry): Promise<void>;
  /** Newest last. */
  list(options?: { limit?: number; windowId?: string }): Promise<AuditEntry[]>;
}

/** In-memory audit log, bounded to the most recent `limit` entries. */
export function createMemoryAuditLog(limit = 1000): AuditLog {
  const entries: AuditEntry[] = [];
  return {
    async append(entry) {
      entries.push(entry);
      if (entries.length > limit) entries.splice(0, entries.length - limit);
    },
    async list(options = {}) {
      const filtered = options.windowId ? entries.filter((e) => e.windowId === options.windowId) : entries;
      return options.limit ? filtered.slice(-options.limit) : filtered.slice();
    },
  };
}
