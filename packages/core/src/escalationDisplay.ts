// How a window's escalation record reads to an operator: the rows the CLI and the admin page show,
// worked out once here from the record (escalation.ts writes it).
import type { EscalationEvent, EscalationRecord } from './escalation.js';
import type { ReadFinding } from './readSignals.js';
import type { MaintenanceWindow } from './window.js';

/** An escalation policy's limits: how many extensions, and how long each (ms). */
export interface EscalationLimits {
  maxExtensions: number;
  extendBy: number;
}

/** One escalation as an operator sees it (CLI, admin page). */
export interface EscalationRow {
  at: string;
  instanceId: string;
  outcome: EscalationEvent['outcome'];
  /** What it did to the window: `extended: now ends …`, `none: extended 2 of 2 times already`, `failed: …`. */
  extension: string;
  /** One line per threshold crossed, with its figures when the record has them (else its reason). */
  evidence: string[];
  /** The same evidence as numbers; empty in records written before they were kept. */
  findings: ReadFinding[];
}

/** A window's escalation record, ready to show: `escalationRows(window)`. */
export interface EscalationRows {
  extensions: number;
  /** The policy's limit and step (ms) as recorded; null in records written before they were kept. */
  maxExtensions: number | null;
  extendBy: number | null;
  /** True once the window has an escalation record; false when the rows show only `policy`'s limits. */
  recorded: boolean;
  /** `2 / 2` (extensions / limit), or `2` when the record has no limit. */
  extensionsFigure: string;
  /** The policy as recorded, e.g. `extended by 10 min per escalation, at most 2 times`; null without it. */
  policy: string | null;
  /** `describeEscalation`'s line; null before the first escalation is recorded. */
  summary: string | null;
  rows: EscalationRow[];
  /** The rollback hook's run, e.g. `ok on i-1, started … · plan: … · evidence: … · result: …`; null when none. */
  rollback: string | null;
}

const num = (x: number) => Number(x.toPrecision(3)).toString();
const pct = (x: number) => `${num(x * 100)}%`;
const span = (ms: number) =>
  ms % 60_000 === 0 ? `${ms / 60_000} min` : ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;

/** A finding as one line: `deltaS mean 1 during (64 reads) vs 0.25 before (4 reads) · limit: above 0.6 (absolute)`. */
export function describeFinding(f: ReadFinding): string {
  const v = (x: number) => (f.stat === 'p95Ms' ? `${num(x)} ms` : f.stat === 'errorRatio' ? pct(x) : num(x));
  const what =
    f.metric === 'reads' ? (f.stat === 'p95Ms' ? 'read p95' : 'read errors') : `${f.metric} ${f.stat}`;
  const during =
    f.kind === 'trend'
      ? `${num(f.during)} per read over the last ${f.duringSamples} reads`
      : `${v(f.during)} during (${f.duringSamples} reads)`;
  const before = f.baseline === null ? '' : ` vs ${v(f.baseline)} before (${f.baselineSamples} reads)`;
  const limit =
    f.kind === 'ratio'
      ? f.direction === 'above'
        ? `above ${num(f.limit)}× the baseline`
        : `below the baseline ÷ ${num(f.limit)}`
      : f.kind === 'delta'
        ? `${f.direction} the baseline ${f.direction === 'above' ? '+' : '−'} ${v(f.limit)}`
        : f.kind === 'trend'
          ? `${f.direction} ${num(f.limit)} per read`
          : `${f.direction} ${v(f.limit)}`;
  return `${what} ${during}${before} · limit: ${limit} (${f.kind})`;
}

const EMPTY: Partial<EscalationRecord> = Object.freeze({});

/**
 * The window's escalation record as rows for an operator: what the CLI (`quiesce status`,
 * `quiesce audit --window`) and an admin page show, every figure taken from the record. Null when
 * the window has no record and no `policy` is given. Reads records of every shape so far (older ones
 * lack the limit and the figures: their reasons are shown instead).
 *
 * `policy`: the limit this instance acts on (`engine.options.escalation`), shown before the first
 * escalation writes the record (`0 / 2`); the record's own limit wins once there is one.
 */
export function escalationRows(
  window: Pick<MaintenanceWindow, 'report'> | null | undefined,
  policy?: EscalationLimits | null,
): EscalationRows | null {
  if (!window) return null;
  const found = window.report?.escalation as Partial<EscalationRecord> | undefined;
  const rec: Partial<EscalationRecord> | null =
    found && typeof found === 'object' ? found : policy ? EMPTY : null;
  if (!rec) return null;
  const events = Array.isArray(rec.events) ? rec.events : [];
  const extensions = rec.extensions ?? 0;
  const max = typeof rec.maxExtensions === 'number' ? rec.maxExtensions : (policy?.maxExtensions ?? null);
  const extendBy = typeof rec.extendBy === 'number' ? rec.extendBy : (policy?.extendBy ?? null);
  const n = (o: EscalationEvent['outcome']) => events.filter((e) => e.outcome === o).length;
  let summary: string | null = null;
  if (events.length > 0 || rec.rollback) {
    const parts = [`extended ${n('extended')}×`];
    if (n('limit') > 0) parts.push(`at the limit ${n('limit')}×`);
    if (n('failed') > 0) parts.push(`extension failed ${n('failed')}×`);
    const last = events.at(-1);
    summary = `${events.length} escalation${events.length === 1 ? '' : 's'}: ${parts.join(', ')}`;
    if (last?.reasons?.length) summary += ` (last: ${last.reasons[0]})`;
    const r = rec.rollback;
    if (r) summary += ` · rollback ${r.status}${r.status === 'failed' && r.error ? `: ${r.error}` : ''}`;
  }
  const r = rec.rollback;
  return {
    recorded: rec !== EMPTY,
    extensions,
    maxExtensions: max,
    extendBy,
    extensionsFigure: max === null ? String(extensions) : `${extensions} / ${max}`,
    policy:
      max === null
        ? null
        : max === 0
          ? 'never extended (at most 0 times)'
          : `extended by ${extendBy === null ? 'a set time' : span(extendBy)} per escalation, at most ${max} time${max === 1 ? '' : 's'}`,
    summary,
    rows: events.map((e) => {
      const findings = Array.isArray(e.findings) ? e.findings : [];
      return {
        at: e.at,
        instanceId: e.instanceId,
        outcome: e.outcome,
        extension:
          e.outcome === 'extended'
            ? `extended: now ends ${e.endsAt ?? 'not set'}`
            : e.outcome === 'limit'
              ? max === null
                ? `none: extended ${extensions} time${extensions === 1 ? '' : 's'} already`
                : `none: extended ${extensions} of ${max} times already`
              : `failed: ${e.error ?? 'unknown error'}`,
        evidence: findings.length > 0 ? findings.map(describeFinding) : [...(e.reasons ?? [])],
        findings,
      };
    }),
    rollback: !r
      ? null
      : `${r.status} on ${r.instanceId}, started ${r.startedAt}${r.finishedAt ? `, finished ${r.finishedAt}` : ''}` +
        ` · plan: ${r.plan ?? 'none'} · evidence: ${(r.evidence ?? []).join('; ')}` +
        (r.status === 'failed'
          ? ` · error: ${r.error ?? 'unknown error'}`
          : r.result !== undefined
            ? ` · result: ${JSON.stringify(r.result)}`
            : ''),
  };
}

/**
 * One line for an operator (CLI, admin page): the window's escalations, or null when there were
 * none. E.g. `3 escalations: extended 2×, at the limit 1× (last: read p95 …) · rollback ok`.
 */
export function describeEscalation(window: Pick<MaintenanceWindow, 'report'>): string | null {
  return escalationRows(window)?.summary ?? null;
}
