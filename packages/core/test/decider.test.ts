import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createBypassCheck } from '../src/bypass.js';
import type { ClassifyResult } from '../src/classifier.js';
import {
  type DeciderSettings,
  type DecisionNote,
  type DecisionView,
  decide,
  LEASE_LAPSED,
  PROBLEM_TYPE,
  type RefusalTemplate,
} from '../src/decider.js';
import { type Operation, type Policy, SURFACES, type Surface } from '../src/operation.js';
import { resolveRetryAfterOptions } from '../src/retryAfter.js';

const RUNS = Number(process.env.QUIESCE_PROPERTY_RUNS ?? 200);
const NOW = Date.UTC(2026, 0, 1);
const clock = { now: () => NOW };
const retry = resolveRetryAfterOptions();

const classification = fc.record<ClassifyResult>({
  classification: fc.constantFrom('read', 'write'),
  policy: fc.constantFrom<Policy>('block', 'queue', 'drop', 'allow'),
  explicit: fc.boolean(),
});
const operation = fc.record<Operation>({
  surface: fc.constantFrom<Surface>(...SURFACES),
  name: fc.string({ maxLength: 8 }),
  principal: fc.option(fc.constantFrom('ops-bot', 'alice'), { nil: undefined }),
});
const template = fc.record<RefusalTemplate>({
  windowId: fc.constantFrom('w1', 'lease-expired'),
  endsAt: fc.constant(new Date(NOW + 60_000).toISOString()),
  endsAtMs: fc.constant(NOW + 60_000),
  message: fc.constant('Maintenance'),
  scope: fc.option(
    fc.subarray([...SURFACES], { minLength: 1 }).map((s) => new Set<string>(s)),
    { nil: null },
  ),
});
/** A view as the replica keeps it: a template whenever writes are refused. */
const view = fc.oneof(
  fc.record<DecisionView>({
    readOnly: fc.constant(false),
    leaseUntil: fc.constantFrom(Number.POSITIVE_INFINITY, NOW, NOW + 1, NOW - 1),
    template: fc.constant(null),
  }),
  fc.record<DecisionView>({
    readOnly: fc.constant(true),
    leaseUntil: fc.constantFrom(Number.POSITIVE_INFINITY, NOW + 1000),
    template,
  }),
);
const settings = fc.record<DeciderSettings>({
  bypass: fc.constantFrom(null, createBypassCheck({ principal: (p) => p === 'ops-bot' })),
  retry: fc.constant(retry),
  refusalStatus: fc.constantFrom(503, 423),
  dryRun: fc.boolean(),
  random: fc.constant(() => 0.5),
});

const run = (
  c: ClassifyResult,
  op: Operation,
  v: DecisionView,
  s: DeciderSettings,
): { d: ReturnType<typeof decide>; note: DecisionNote } => {
  const note: DecisionNote = { bypass: null };
  return { d: decide(c, op, v, clock, s, note), note };
};

describe('decider: (classified operation, view, now) → decision, no side effects', () => {
  it('refuses iff writes are refused here ∧ a write ∧ policy block ∧ in scope ∧ not bypassed ∧ not dry-run', () => {
    fc.assert(
      fc.property(classification, operation, view, settings, (c, op, v, s) => {
        const { d } = run(c, op, v, s);
        const inScope = v.template?.scope == null || v.template.scope.has(op.surface);
        const bypassed = s.bypass !== null && op.principal === 'ops-bot';
        const expected =
          v.readOnly &&
          c.classification === 'write' &&
          c.policy === 'block' &&
          inScope &&
          !bypassed &&
          !s.dryRun;
        expect(d !== LEASE_LAPSED && d.outcome === 'refuse').toBe(expected);
      }),
      { numRuns: RUNS },
    );
  });

  it('a dry run never stops a write; a read is never stopped; with writes on everything proceeds', () => {
    fc.assert(
      fc.property(classification, operation, view, settings, (c, op, v, s) => {
        const { d } = run(c, op, v, s);
        if (d === LEASE_LAPSED) {
          // Only when writes are on and the lease ran out: the caller fences and asks again.
          expect(v.readOnly).toBe(false);
          expect(v.leaseUntil).toBeLessThan(NOW);
          return;
        }
        if (s.dryRun || c.classification === 'read' || !v.readOnly) expect(d.outcome).toBe('proceed');
        if (!v.readOnly) expect(d).toMatchObject({ outcome: 'proceed', reason: 'no-window' });
        expect(d.classification).toBe(c.classification);
        if (d.outcome === 'proceed' && d.reason === 'dry-run') expect(s.dryRun).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('maps each policy of a stopped write to its outcome, with the window and a Retry-After', () => {
    fc.assert(
      fc.property(classification, operation, view, settings, (c, op, v, s) => {
        const { d, note } = run(c, op, v, s);
        if (d === LEASE_LAPSED || d.outcome === 'proceed') {
          if (d !== LEASE_LAPSED && d.reason === 'bypass') expect(note.bypass).toBe('principal:ops-bot');
          return;
        }
        expect(d.outcome).toBe({ block: 'refuse', queue: 'enqueue', drop: 'discard' }[c.policy as 'block']);
        expect(d.windowId).toBe(v.template!.windowId);
        if (d.outcome === 'refuse') {
          expect(d.status).toBe(s.refusalStatus);
          expect(d.problem).toMatchObject({
            type: PROBLEM_TYPE,
            code: 'READ_ONLY_MODE',
            detail: 'Maintenance',
          });
          expect(d.retryAfter).toBeGreaterThanOrEqual(retry.floorSeconds);
          expect(d.retryAfter).toBeLessThanOrEqual(retry.capSeconds);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('proceed decisions are shared, frozen objects (the proceed path allocates nothing)', () => {
    const c: ClassifyResult = { classification: 'write', policy: 'block', explicit: false };
    const v: DecisionView = { readOnly: false, leaseUntil: Number.POSITIVE_INFINITY, template: null };
    const s: DeciderSettings = { bypass: null, retry, refusalStatus: 503, dryRun: false };
    const op: Operation = { surface: 'http', name: 'POST /x' };
    const a = run(c, op, v, s).d;
    expect(a).toBe(run(c, op, v, s).d);
    expect(Object.isFrozen(a)).toBe(true);
  });
});
