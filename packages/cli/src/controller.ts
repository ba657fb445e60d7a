import type { AuditEntry, EngineStatus, InventoryEntry, MaintenanceWindow } from '@quiesce/core';

export interface BeginRequest {
  reason: string;
  message: string;
  endsAt?: string;
  /** Set: an announced window that begins by itself at this time. */
  startsAt?: string;
  contact?: string;
  rollbackPlan?: string;
  autoEnd?: boolean;
  actor?: string;
}

export interface ExtendRequest {
  endsAt?: string;
  byMs?: number;
  message?: string;
  actor?: string;
}

export interface EndRequest {
  reason?: string;
  message?: string;
  actor?: string;
  /** End a window in any phase (a stuck thaw or backfill): closed at once, audited. */
  force?: boolean;
}

/** What a client may see of one queued write (the admin API never shows payloads). */
export interface IntentView {
  id: string;
  name: string;
  status: string;
  idempotencyKey: string;
  windowId: string | null;
  createdAt: string;
  attempts: number;
  appliedAt: string | null;
}

/**
 * The one surface every command talks to: an app's admin API, or a store driven by a
 * non-participant engine. Both answer with the engine's own shapes.
 */
export interface Controller {
  readonly kind: 'http' | 'store';
  /** `http://host/quiesce` or `postgres store` for messages. */
  readonly target: string;
  /** How long the soak after `end` lasts, when this side knows it (the store controller runs it). */
  readonly soakMs?: number;
  begin(input: BeginRequest): Promise<MaintenanceWindow>;
  extend(input: ExtendRequest): Promise<MaintenanceWindow>;
  end(input: EndRequest): Promise<MaintenanceWindow>;
  status(): Promise<EngineStatus>;
  inventory(): Promise<{ entries: InventoryEntry[]; unclassified: InventoryEntry[] }>;
  audit(options: { limit?: number; windowId?: string }): Promise<AuditEntry[]>;
  intent(id: string): Promise<IntentView>;
  intents(options: { status?: string; limit?: number }): Promise<IntentView[]>;
  close(): Promise<void>;
}
