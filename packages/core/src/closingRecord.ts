import type { AuditEntry } from './audit.js';
import {
  type InstanceReadHealth,
  PHASE_KEY_PREFIX,
  type PhaseRecord,
  READ_HEALTH_KEY_PREFIX,
} from './closingTrail.js';
import {
  EMPTY_READ_SUMMARY,
  isReadSummary,
  mergeReadSummaries,
  type ReadSummaryStats,
  readSummaryStats,
} from './readSummary.js';
import type { MaintenanceWindow, Phase, Straggler } from './window.js';

export {
  type InstanceReadHealth,
  PHASE_KEY_PREFIX,
  type PhaseRecord,
  READ_HEALTH_KEY_PREFIX,
  recordReadHealth,
  withTrail,
} from './closingTrail.js';

/**
 * The closing record: what a window leaves behind, assembled from the window as stored (every
 * instance's contributions are in it) and the audit trail. `buildClosingRecord` is pure; the admin
 * page and `quiesce audit` show its result.
 */

export interface VersionGap {
  /** First and last missing version. */
  from: number;
  to: number;
  reason: string;
}

export interface ClosingRecord {
  windowId: string;
  reason: string;
  message: string;
  openedBy: string | null;
  contact: string | null;
  rollbackPlan: string | null;
  phase: Phase;
  startsAt: string;
  /** The end that was planned (`endsAt`) … */
  plannedEnd: string | null;
  frozenAt: string | null;
  /** … and the real one: when writes came back on. */
  endedAt: string | null;
  closedAt: string | null;
  /** How long writes were refused (frozen or freezing), when it ended. */
  readOnlyMs: number | null;
  /** Who moved the window, when and why: one entry per audited change, oldest first. */
  phases: PhaseRecord[];
  /** The audit's versions for the window, and every gap with why it is there. */
  versions: { first: number | null; last: number | null; contiguous: boolean; gaps: VersionGap[] };
  /** Instances that did not confirm, were fenced or were lost. */
  stragglers: Straggler[];
  /** Confirmations and takeovers of the window's checklist, when the engine keeps one. */
  checklist: Record<string, unknown> | null;
  /** How the instances stood: from the checklist's confirmations (fencing) and the stragglers. */
  instances: {
    confirmedFreeze: number | null;
    confirmedThaw: number | null;
    /** Unreachable instances counted as stopped once their lease expired. */
    fenced: Array<{ instanceId: string; leaseUntil: string | null }>;
    /** Instances whose lease expired after they had confirmed (died or cut off mid-window). */
    lost: string[];
    takeovers: Array<{ from: string | null; by: string; at: string; phase: string }>;
  };
  readHealth: {
    /** Every instance's reads added up (`instances`), the controller's alone, or none. */
    source: 'instances' | 'controller' | 'none';
    before: ReadSummaryStats;
    during: ReadSummaryStats;
    instances: Array<{ instanceId: string; before: ReadSummaryStats; during: ReadSummaryStats }>;
    /** The engine's own verdict at the end of the soak (one instance's sample), when there is one. */
    healthy: boolean | null;
    reasons: string[];
  };
  backfill: {
    applied: number;
    failed: number;
    done: number;
    total: number;
    remaining: number | null;
    /** Per instance that replayed, when the engine records it. */
    byInstance: Record<string, { applied: number; failed: number; done: number; total: number }>;
    skipped: string | null;
  } | null;
  /** The storage write audit, as recorded (`@quiesce/postgres`), or null. */
  writeAudit: unknown;
  closingMessage: string | null;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const obj = (v: unknown): Record<string, unknown> | null =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;

function readHealthOf(w: MaintenanceWindow): ClosingRecord['readHealth'] {
  const instances: InstanceReadHealth[] = [];
  for (const [key, value] of Object.entries(w.report)) {
    if (!key.startsWith(READ_HEALTH_KEY_PREFIX)) continue;
    const v = obj(value);
    if (!v || !isReadSummary(v.before) || !isReadSummary(v.during)) continue;
    instances.push({
      instanceId: key.slice(READ_HEALTH_KEY_PREFIX.length),
      at: String(v.at ?? ''),
      before: v.before,
      during: v.during,
    });
  }
  instances.sort((a, b) => (a.instanceId < b.instanceId ? -1 : 1));
  const engineVerdict = obj(w.report.readHealth);
  const healthy = typeof engineVerdict?.healthy === 'boolean' ? engineVerdict.healthy : null;
  const reasons = Array.isArray(engineVerdict?.reasons) ? (engineVerdict.reasons as string[]) : [];
  if (instances.length > 0) {
    return {
      source: 'instances',
      before: readSummaryStats(mergeReadSummaries(instances.map((i) => i.before))),
      during: readSummaryStats(mergeReadSummaries(instances.map((i) => i.during))),
      instances: instances.map((i) => ({
        instanceId: i.instanceId,
        before: readSummaryStats(i.before),
        during: readSummaryStats(i.during),
      })),
      healthy,
      reasons,
    };
  }
  // An engine without per-instance summaries: the controller's own sample, as it recorded it.
  const stat = (v: unknown): ReadSummaryStats => {
    const s = obj(v);
    const n = (x: unknown) => (typeof x === 'number' ? x : null);
    return {
      count: num(s?.count),
      p50Ms: n(s?.p50Ms),
      p95Ms: n(s?.p95Ms),
      p99Ms: n(s?.p99Ms),
      errorRatio: n(s?.errorRatio),
    };
  };
  if (engineVerdict) {
    return {
      source: 'controller',
      before: stat(engineVerdict.baseline),
      during: stat(engineVerdict.window),
      instances: [],
      healthy,
      reasons,
    };
  }
  const none = readSummaryStats(EMPTY_READ_SUMMARY);
  return { source: 'none', before: none, during: none, instances: [], healthy: null, reasons: [] };
}

function backfillOf(w: MaintenanceWindow): ClosingRecord['backfill'] {
  const checklist = obj((w as { checklist?: unknown }).checklist);
  const local = obj(w.report.backfill);
  // The engine's own totals (every instance's, when it keeps a checklist), else the closing
  // instance's report alone.
  const totals = obj(checklist?.backfill);
  const src = totals ?? local;
  if (!src) return null;
  const byInstance: NonNullable<ClosingRecord['backfill']>['byInstance'] = {};
  for (const [id, v] of Object.entries(obj(src.byInstance) ?? {})) {
    const o = obj(v);
    if (o)
      byInstance[id] = {
        applied: num(o.applied),
        failed: num(o.failed),
        done: num(o.done),
        total: num(o.total),
      };
  }
  return {
    applied: num(src.applied),
    failed: num(src.failed),
    done: num(src.done),
    total: num(src.total),
    remaining: typeof local?.remaining === 'number' ? local.remaining : null,
    byInstance,
    skipped: typeof local?.skipped === 'string' ? local.skipped : null,
  };
}

function instancesOf(
  w: MaintenanceWindow,
  checklist: Record<string, unknown> | null,
): ClosingRecord['instances'] {
  const freeze = obj(checklist?.freeze);
  const thaw = obj(checklist?.thaw);
  const fenced = new Map<string, string | null>();
  for (const c of [freeze, thaw]) {
    for (const f of Array.isArray(c?.fenced) ? c.fenced : []) {
      const o = obj(f);
      if (o && typeof o.instanceId === 'string')
        fenced.set(o.instanceId, typeof o.leaseUntil === 'string' ? o.leaseUntil : null);
    }
  }
  for (const s of w.stragglers) {
    if ((s.reason as string) === 'fenced')
      fenced.set(s.instanceId, (s as { leaseUntil?: string }).leaseUntil ?? null);
  }
  const takeovers = (Array.isArray(checklist?.takeovers) ? checklist.takeovers : [])
    .map(obj)
    .filter((o): o is Record<string, unknown> => o !== null && typeof o.by === 'string')
    .map((o) => ({
      from: typeof o.from === 'string' ? o.from : null,
      by: o.by as string,
      at: String(o.at ?? ''),
      phase: String(o.phase ?? ''),
    }));
  return {
    confirmedFreeze: typeof freeze?.confirmed === 'number' ? freeze.confirmed : null,
    confirmedThaw: typeof thaw?.confirmed === 'number' ? thaw.confirmed : null,
    fenced: [...fenced].map(([instanceId, leaseUntil]) => ({ instanceId, leaseUntil })),
    lost: w.stragglers.filter((s) => s.reason === 'lost').map((s) => s.instanceId),
    takeovers,
  };
}

/** What the window's record was updated with (each update is a version of its own). */
function recordUpdates(w: MaintenanceWindow): string {
  const keys = Object.keys(w.report);
  const reads = keys
    .filter((k) => k.startsWith(READ_HEALTH_KEY_PREFIX))
    .map((k) => k.slice(READ_HEALTH_KEY_PREFIX.length));
  const other = keys.filter((k) => !k.startsWith(PHASE_KEY_PREFIX) && !k.startsWith(READ_HEALTH_KEY_PREFIX));
  const parts = [
    ...(Object.keys(w.notices).length > 0 ? [`notices: ${Object.keys(w.notices).join(', ')}`] : []),
    ...(reads.length > 0 ? [`read health of ${reads.join(', ')}`] : []),
    ...other,
    ...((w as { checklist?: unknown }).checklist ? ['checklist progress'] : []),
  ];
  return parts.length > 0 ? parts.join('; ') : 'notices, reports';
}

function phaseRecordOf(v: unknown): PhaseRecord | null {
  const o = obj(v);
  if (!o || !Number.isSafeInteger(o.version) || typeof o.at !== 'string' || typeof o.actor !== 'string')
    return null;
  return {
    action: String(o.action) as AuditEntry['action'],
    to: String(o.to),
    at: o.at,
    actor: o.actor,
    reason: typeof o.reason === 'string' ? o.reason : null,
    version: o.version as number,
  };
}

/** Versions between audited changes of the window that the audit trail has no entry for, and why. */
export function versionGaps(
  entries: ReadonlyArray<{ version: number }>,
  updates = 'notices, the write audit, read health, checklist progress',
): VersionGap[] {
  const versions = [...new Set(entries.map((e) => e.version))].sort((a, b) => a - b);
  const gaps: VersionGap[] = [];
  for (let i = 1; i < versions.length; i++) {
    const prev = versions[i - 1]!;
    const next = versions[i]!;
    if (next - prev > 1) {
      gaps.push({
        from: prev + 1,
        to: next - 1,
        reason: `record updates (${updates}) move the version without a state change; every state change of the window is listed`,
      });
    }
  }
  return gaps;
}

/** The closing record of a window, from the window as stored and the audit entries for it. */
export function buildClosingRecord(w: MaintenanceWindow, entries: readonly AuditEntry[] = []): ClosingRecord {
  const mine = entries.filter((e) => e.windowId === w.id).sort((a, b) => a.version - b.version);
  // Who/when/why: kept in the window by the instance that made each change (so a change made by a
  // CLI or another instance is there too), and this instance's own audit log.
  const byVersion = new Map<number, PhaseRecord>();
  for (const [key, value] of Object.entries(w.report)) {
    if (!key.startsWith(PHASE_KEY_PREFIX)) continue;
    const p = phaseRecordOf(value);
    if (p) byVersion.set(p.version, p);
  }
  for (const e of mine) {
    if (e.action === 'notice' || byVersion.has(e.version)) continue;
    byVersion.set(e.version, {
      action: e.action,
      to: e.to.phase ?? e.to.mode,
      at: e.at,
      actor: e.actor,
      reason: e.reason ?? null,
      version: e.version,
    });
  }
  const phases = [...byVersion.values()].sort((a, b) => a.version - b.version);
  const gaps = versionGaps(phases, recordUpdates(w));
  const checklist = obj((w as { checklist?: unknown }).checklist);
  const readOnlyFrom = Date.parse(w.startsAt);
  return {
    windowId: w.id,
    reason: w.reason,
    message: w.message,
    openedBy: w.openedBy ?? null,
    contact: w.contact ?? null,
    rollbackPlan: w.rollbackPlan ?? null,
    phase: w.phase,
    startsAt: w.startsAt,
    plannedEnd: w.endsAt,
    frozenAt: w.frozenAt,
    endedAt: w.endedAt,
    closedAt: w.closedAt,
    readOnlyMs:
      w.endedAt && w.phase !== 'scheduled' ? Math.max(0, Date.parse(w.endedAt) - readOnlyFrom) : null,
    phases,
    versions: {
      first: phases[0]?.version ?? null,
      last: phases[phases.length - 1]?.version ?? null,
      contiguous: gaps.length === 0,
      gaps,
    },
    stragglers: w.stragglers,
    checklist,
    instances: instancesOf(w, checklist),
    readHealth: readHealthOf(w),
    backfill: backfillOf(w),
    writeAudit: w.report.writeAudit ?? null,
    closingMessage: typeof w.report.closingMessage === 'string' ? w.report.closingMessage : null,
  };
}
