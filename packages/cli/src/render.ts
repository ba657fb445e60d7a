import {
  type AuditEntry,
  type ClosingRecord,
  type EngineStatus,
  type EscalationRows,
  escalationRows,
  type InventoryEntry,
  type MaintenanceWindow,
  type ReadSummaryStats,
  type Straggler,
} from '@quiesce/core';
import type { IntentView } from './controller.js';
import { formatDuration } from './duration.js';

const PHASE_ORDER = ['scheduled', 'freezing', 'frozen', 'thawing', 'backfilling', 'closed'];

/** True when the window reached `phase` or a later one. */
export function reached(phase: string | null | undefined, target: string): boolean {
  return phase != null && PHASE_ORDER.indexOf(phase) >= PHASE_ORDER.indexOf(target);
}

function when(iso: string | null | undefined, now: number): string {
  if (!iso) return 'unknown';
  const d = Date.parse(iso) - now;
  return `${iso} (${d >= 0 ? `in ${formatDuration(d)}` : `${formatDuration(-d)} ago`})`;
}

export function describeStraggler(s: Straggler): string {
  const why =
    s.reason === 'lost'
      ? 'stopped heartbeating'
      : s.reason === 'not-acknowledged'
        ? `had not acknowledged (at v${s.ackedVersion})`
        : `${s.inFlight} write${s.inFlight === 1 ? '' : 's'} still in flight`;
  return `${s.instanceId}: ${why}${s.oldestOperation ? `, oldest ${s.oldestOperation}` : ''}`;
}

/** Acknowledgement and drain figures of a freezing window. */
export function freezeFigures(s: EngineStatus) {
  const w = s.state.window;
  const freezeVersion = w?.freezeVersion ?? s.state.version;
  const live = s.instances.filter((i) => i.live);
  const acked = live.filter((i) => i.ackedVersion >= freezeVersion);
  const inFlight = live.reduce((n, i) => n + i.inFlight, 0);
  const pending = live.filter((i) => i.ackedVersion < freezeVersion || i.inFlight > 0);
  return { live: live.length, acked: acked.length, inFlight, pending };
}

/** One line of progress for `begin` / `end` while waiting. */
export function progressLine(
  s: EngineStatus,
  startedAt: number,
  now = Date.now(),
  kind: 'http' | 'store' = 'http',
  /** `tty`: the line is redrawn in place (elapsed figures stay current); `soakMs`: the soak length, when known. */
  display: { tty?: boolean; soakMs?: number } = { tty: true },
): string {
  const w = s.state.window;
  const elapsed = formatDuration(now - startedAt);
  if (!w) return `no window · ${elapsed}`;
  if (w.phase === 'freezing') {
    const f = freezeFigures(s);
    const waitingOn = f.pending
      .slice(0, 3)
      .map((i) =>
        i.ackedVersion < (w.freezeVersion ?? 0)
          ? `${i.id} (not acknowledged)`
          : `${i.id} (${i.inFlight} in flight${i.oldestOperation ? `: ${i.oldestOperation}` : ''})`,
      );
    return (
      `freezing: ${f.acked}/${f.live} instances acknowledged · ${f.inFlight} write${f.inFlight === 1 ? '' : 's'} in flight` +
      (waitingOn.length ? ` · waiting on ${waitingOn.join(', ')}` : '') +
      ` · ${elapsed}`
    );
  }
  if (w.phase === 'thawing') {
    const of = display.soakMs !== undefined ? ` of ${formatDuration(display.soakMs)}` : '';
    if (display.tty === false) {
      // In a pipe this line is printed once: an elapsed figure would be stale at once ("soaking for 49ms").
      const length = display.soakMs !== undefined ? ` ${formatDuration(display.soakMs)}` : '';
      return `thawing: writes are back on${w.endedAt ? ` since ${w.endedAt}` : ''}; soaking${length} (watching reads before the closure notice and backfill)`;
    }
    const since = w.endedAt ? formatDuration(now - Date.parse(w.endedAt)) : elapsed;
    return `thawing: writes are back on; soaking for ${since}${of} (watching reads before the closure notice and backfill)`;
  }
  if (w.phase === 'backfilling') {
    const b = s.backfill;
    if (kind === 'store') {
      return `backfilling: the app instances replay their queued intents; the last to find its queue empty closes the window · ${elapsed}`;
    }
    return b
      ? `backfilling: ${b.done}/${b.total} intents replayed (${b.applied} applied, ${b.failed} failed) · ${elapsed}`
      : `backfilling: replaying queued intents · ${elapsed}`;
  }
  return `${w.phase} · ${elapsed}`;
}

export function frozenSummary(w: MaintenanceWindow, s: EngineStatus): string[] {
  const f = freezeFigures(s);
  const lines = [
    f.live === 0
      ? `frozen at ${w.frozenAt ?? 'unknown'}: no live app instance is registered, so none confirmed the freeze`
      : `frozen at ${w.frozenAt ?? 'unknown'}: ${f.live} live instance${f.live === 1 ? '' : 's'} confirmed; no instance will start a write`,
  ];
  if (w.stragglers.length > 0) {
    lines.push(
      `stragglers (${w.stragglers.length}), named when the drain deadline passed or an instance went silent:`,
    );
    for (const st of w.stragglers) lines.push(`  - ${describeStraggler(st)}`);
  }
  return lines;
}

export function closedSummary(w: MaintenanceWindow): string[] {
  const b = w.report.backfill as
    | { total?: number; applied?: number; failed?: number; remaining?: number | null }
    | undefined;
  const lines = [`closed at ${w.closedAt ?? 'unknown'}`];
  if (b) {
    lines.push(
      `backfill: ${b.applied ?? 0}/${b.total ?? 0} intents applied, ${b.failed ?? 0} failed` +
        (b.remaining ? `, ${b.remaining} still queued` : ''),
    );
  }
  return lines;
}

/**
 * The window's escalations (#18), from core's `escalationRows`: the summary line, the limit as
 * recorded, each escalation with the figures of every rule that fired, and the rollback. `last`:
 * only the newest rows (the earlier ones are counted).
 */
export function escalationLines(view: EscalationRows | null, last = Number.POSITIVE_INFINITY): string[] {
  if (!view?.summary) return [];
  const pad = '           ';
  const lines = [`  escal.   ${view.summary}`];
  lines.push(`${pad}extensions ${view.extensionsFigure}${view.policy ? ` · ${view.policy}` : ''}`);
  const shown = view.rows.slice(-last);
  if (shown.length < view.rows.length) lines.push(`${pad}(${view.rows.length - shown.length} earlier)`);
  const first = view.rows.length - shown.length;
  shown.forEach((r, i) => {
    lines.push(`${pad}#${first + i + 1} ${r.at} on ${r.instanceId} · ${r.extension}`);
    for (const e of r.evidence) lines.push(`${pad}   ${e}`);
  });
  if (view.rollback) lines.push(`${pad}rollback ${view.rollback}`);
  return lines;
}

export function windowLines(w: MaintenanceWindow, now = Date.now()): string[] {
  const lines = [
    `window     ${w.id} · ${w.phase}`,
    `  reason   ${w.reason}`,
    `  message  ${w.message}`,
    `  starts   ${when(w.startsAt, now)}`,
  ];
  if (w.endedAt) {
    lines.push(`  ended    ${when(w.endedAt, now)}${w.closedAt ? ` · closed ${w.closedAt}` : ''}`);
  } else {
    lines.push(
      `  ends     ${w.endsAt ? when(w.endsAt, now) : 'not set (open-ended)'}${w.autoEnd ? ' · ends by itself' : ''}`,
    );
  }
  if (w.contact) lines.push(`  contact  ${w.contact}`);
  if (w.rollbackPlan) lines.push(`  rollback ${w.rollbackPlan}`);
  if (w.openedBy) lines.push(`  opened   by ${w.openedBy}`);
  if (w.stragglers.length) lines.push(`  straggl. ${w.stragglers.map(describeStraggler).join('; ')}`);
  // #18: the newest three escalations; `quiesce audit --window <id>` lists them all.
  lines.push(...escalationLines(escalationRows(w), 3));
  return lines;
}

const sum = (r: Record<string, number> | undefined) => Object.values(r ?? {}).reduce((a, b) => a + b, 0);

export function statusLines(
  s: EngineStatus,
  target: string,
  kind: 'http' | 'store',
  now = Date.now(),
): string[] {
  const w = s.state.window;
  const lines = [
    `quiesce · ${target}`,
    `mode       ${s.state.mode}${s.dryRun ? ' (dry run)' : ''} · state version ${s.state.version}${s.state.updatedBy ? ` by ${s.state.updatedBy}` : ''}`,
  ];
  if (w) lines.push(...windowLines(w, now));
  else lines.push('window     none');
  const live = s.instances.filter((i) => i.live);
  lines.push(
    `instances  ${live.length} live${s.instances.length > live.length ? `, ${s.instances.length - live.length} silent` : ''}`,
  );
  for (const i of s.instances) {
    lines.push(
      `  ${i.live ? '●' : '○'} ${i.id}  acked v${i.ackedVersion} · ${i.inFlight} in flight${i.oldestOperation ? ` (${i.oldestOperation})` : ''}`,
    );
  }
  if (kind === 'http') {
    lines.push(
      `writes     refused ${sum(s.counters.refused)} · queued ${sum(s.counters.queued)} · dropped ${sum(s.counters.dropped)} · bypassed ${sum(s.counters.bypassed)}  (answering instance)`,
    );
    if (s.queue) {
      lines.push(
        `queue      depth ${s.queue.depth}${s.queue.oldestAgeMs != null ? `, oldest ${formatDuration(s.queue.oldestAgeMs)}` : ''} · applied ${s.queue.applied} · failed ${s.queue.failed} · replaying ${s.queue.replaying}`,
      );
    }
    if (s.backfill)
      lines.push(
        `backfill   ${s.backfill.done}/${s.backfill.total} (${s.backfill.applied} applied, ${s.backfill.failed} failed)`,
      );
    if (s.readHealth && !s.readHealth.healthy)
      lines.push(`reads      DEGRADED: ${s.readHealth.reasons.join('; ')}`);
  }
  lines.push(
    `store      ${s.store.kind} · ${s.store.healthy ? 'healthy' : `UNHEALTHY: ${s.store.lastError}`}${s.store.fallback ? ` · fallback ${s.store.fallback}` : ''}`,
  );
  return lines;
}

/** A key of what a person watching cares about (heartbeat timestamps excluded). */
export function statusKey(s: EngineStatus): string {
  return JSON.stringify([
    s.state.version,
    s.phase,
    s.readOnly,
    s.instances.map((i) => [i.id, i.live, i.ackedVersion, i.inFlight]),
    s.counters,
    s.queue && { ...s.queue, oldestAgeMs: null },
    s.backfill,
    s.store.healthy,
    s.store.fallback,
  ]);
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd(),
  );
}

export function inventoryLines(entries: InventoryEntry[], unclassified: InventoryEntry[]): string[] {
  if (entries.length === 0) return ['no write surfaces registered yet'];
  const rows = [['SURFACE', 'NAME', 'CLASS', 'POLICY', 'DECIDED', 'SOURCE']];
  for (const e of entries) {
    rows.push([
      e.surface,
      e.name,
      e.classification,
      e.policy,
      e.explicit ? 'yes' : e.classification === 'write' ? 'NO' : '-',
      e.source,
    ]);
  }
  const lines = table(rows);
  lines.push('');
  lines.push(
    unclassified.length === 0
      ? `${entries.length} surfaces; every write has a decided policy`
      : `${entries.length} surfaces; ${unclassified.length} write${unclassified.length === 1 ? '' : 's'} with no decided policy (default block): ${unclassified.map((e) => e.name).join(', ')}`,
  );
  return lines;
}

export function auditLines(entries: AuditEntry[]): string[] {
  if (entries.length === 0) return ['no audit entries'];
  const rows = [['AT', 'ACTOR', 'ACTION', 'FROM → TO', 'VERSION', 'WINDOW', 'REASON']];
  for (const e of entries) {
    rows.push([
      e.at,
      e.actor,
      e.action,
      `${e.from.phase ?? e.from.mode} → ${e.to.phase ?? e.to.mode}`,
      `v${e.version}`,
      e.windowId ?? '-',
      e.reason ?? '',
    ]);
  }
  return table(rows);
}

const ms = (v: number | null) => (v === null ? '–' : `${v < 10 ? v.toFixed(2) : v.toFixed(0)}ms`);
const pct = (v: number | null) => (v === null ? '–' : `${(v * 100).toFixed(1)}%`);
const readFigures = (s: ReadSummaryStats) =>
  `${s.count} reads · p50 ${ms(s.p50Ms)} · p95 ${ms(s.p95Ms)} · p99 ${ms(s.p99Ms)} · errors ${pct(s.errorRatio)}`;

/** A window's closing record, as recorded (the real end, every instance's reads and backfill). */
export function closingRecordLines(r: ClosingRecord): string[] {
  const lines = [
    `window     ${r.windowId} · ${r.phase} · ${r.reason} · “${r.message}”`,
    `  opened   ${r.startsAt}${r.openedBy ? ` by ${r.openedBy}` : ''}`,
    `  frozen   ${r.frozenAt ?? 'never'}`,
    `  ended    ${r.endedAt ?? 'not yet'}${r.plannedEnd ? ` (planned ${r.plannedEnd})` : ' (open-ended)'}${r.readOnlyMs !== null ? ` · read-only ${formatDuration(r.readOnlyMs)}` : ''}`,
    `  closed   ${r.closedAt ?? 'not yet'}`,
  ];
  if (r.closingMessage) lines.push(`  closing  “${r.closingMessage}”`);
  lines.push('phases');
  for (const p of r.phases) {
    lines.push(
      `  v${p.version}  ${p.at}  ${p.action} → ${p.to}  by ${p.actor}${p.reason ? ` · ${p.reason}` : ''}`,
    );
  }
  if (r.phases.length === 0) lines.push('  (no audit entries for this window on this instance)');
  // One reason for every gap (record updates): said once.
  const reasons = [...new Set(r.versions.gaps.map((g) => g.reason))];
  for (const reason of reasons) {
    const which = r.versions.gaps
      .filter((g) => g.reason === reason)
      .map((g) => `v${g.from}${g.to > g.from ? `–v${g.to}` : ''}`);
    lines.push(`  ${which.join(', ')}: ${reason}`);
  }
  const inst = r.instances;
  const parts = [
    ...(inst.confirmedFreeze !== null ? [`${inst.confirmedFreeze} confirmed the freeze`] : []),
    ...(inst.confirmedThaw !== null ? [`${inst.confirmedThaw} the thaw`] : []),
    ...(inst.fenced.length > 0
      ? [
          `fenced: ${inst.fenced.map((f) => `${f.instanceId}${f.leaseUntil ? ` (lease expired ${f.leaseUntil})` : ''}`).join(', ')}`,
        ]
      : []),
    ...(inst.lost.length > 0 ? [`lost: ${inst.lost.join(', ')}`] : []),
    ...inst.takeovers.map((x) => `${x.by} took over from ${x.from ?? 'nobody'} at ${x.at} (${x.phase})`),
  ];
  if (parts.length > 0) lines.push(`instances  ${parts.join(' · ')}`);
  if (r.stragglers.length > 0) {
    lines.push(`stragglers (${r.stragglers.length})`);
    for (const s of r.stragglers) lines.push(`  ${describeStraggler(s)}`);
  }
  const h = r.readHealth;
  if (h.source === 'none') lines.push('reads      none recorded');
  else {
    const from =
      h.source === 'instances'
        ? `${h.instances.length} instance${h.instances.length === 1 ? '' : 's'}`
        : 'the controller only';
    lines.push(`reads      from ${from}${h.healthy === false ? ` · DEGRADED: ${h.reasons.join('; ')}` : ''}`);
    lines.push(`  before   ${readFigures(h.before)}`);
    lines.push(`  during   ${readFigures(h.during)}`);
    for (const i of h.instances) {
      lines.push(
        `  ${i.instanceId}: before ${i.before.count} · during ${i.during.count}, p95 ${ms(i.during.p95Ms)}`,
      );
    }
  }
  const b = r.backfill;
  if (!b) lines.push('backfill   none recorded');
  else {
    lines.push(
      `backfill   ${b.applied} applied · ${b.failed} failed · ${b.done}/${b.total} done${b.remaining !== null ? ` · ${b.remaining} left` : ''}${b.skipped ? ` · skipped: ${b.skipped}` : ''}`,
    );
    for (const [id, x] of Object.entries(b.byInstance)) {
      lines.push(`  ${id}: ${x.applied} applied · ${x.failed} failed · ${x.done}/${x.total}`);
    }
  }
  lines.push(...writeAuditLines(r.writeAudit));
  return lines;
}

function writeAuditLines(value: unknown): string[] {
  if (!value || typeof value !== 'object') return ['storage   no write audit recorded'];
  const a = value as {
    verdict?: string;
    reasons?: string[];
    from?: string | null;
    to?: string | null;
    tablesAudited?: number;
    tables?: Array<{
      schema: string;
      table: string;
      inserted: number;
      updated: number;
      deleted: number;
      truncated?: number;
      verdict: string;
      reason?: string;
    }>;
    clean?: boolean | null;
  };
  if (!a.verdict) return [`storage   ${a.clean ? 'clean' : 'not clean'} (an older audit format)`];
  const lines = [
    `storage   ${a.verdict.toUpperCase()} · ${a.tablesAudited ?? 0} tables audited · ${a.from ?? '–'} → ${a.to ?? '–'}`,
  ];
  for (const reason of a.reasons ?? []) lines.push(`  ${reason}`);
  for (const t of a.tables ?? []) {
    if (t.verdict === 'clean') continue;
    lines.push(
      `  ${t.schema}.${t.table}: ${t.verdict} · +${t.inserted} ~${t.updated} -${t.deleted}${t.truncated ? ` truncated ${t.truncated}` : ''}${t.reason ? ` · ${t.reason}` : ''}`,
    );
  }
  return lines;
}

export function intentLines(i: IntentView): string[] {
  return [
    `intent     ${i.id} · ${i.status}`,
    `  name     ${i.name}`,
    `  key      ${i.idempotencyKey}`,
    `  window   ${i.windowId ?? '-'}`,
    `  created  ${i.createdAt}`,
    `  attempts ${i.attempts}${i.appliedAt ? ` · applied ${i.appliedAt}` : ''}`,
  ];
}
