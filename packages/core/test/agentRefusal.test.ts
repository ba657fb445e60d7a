import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agentRefusal } from '../src/agentRefusal.js';
import { createQuiesce } from '../src/engine.js';
import type { DiscardDecision, EnqueueDecision, RefuseDecision } from '../src/operation.js';

const now = Date.UTC(2026, 0, 1, 12);
const endsAt = new Date(now + 600_000).toISOString();
const refuse: RefuseDecision = {
  outcome: 'refuse',
  classification: 'write',
  policy: 'block',
  status: 503,
  retryAfter: 603,
  windowId: 'win_1',
  endsAt,
  problem: { type: 't', title: 't', status: 503, detail: 'Back at noon', code: 'READ_ONLY_MODE' },
};
const enqueue: EnqueueDecision = {
  outcome: 'enqueue',
  classification: 'write',
  policy: 'queue',
  windowId: 'win_1',
  endsAt,
  retryAfter: 601,
};
const discard: DiscardDecision = {
  outcome: 'discard',
  classification: 'write',
  policy: 'drop',
  windowId: 'win_1',
  endsAt,
};

describe('agentRefusal', () => {
  it('renders a refusal: fields and a text saying what, until when and what to do', () => {
    const r = agentRefusal({ decision: refuse, message: 'Back at noon', tool: 'delete_note', now });
    expect(r).toMatchObject({
      code: 'READ_ONLY_MODE',
      outcome: 'refused',
      message: 'Back at noon',
      windowId: 'win_1',
      windowEndsAt: endsAt,
      retryAfterSeconds: 603,
    });
    expect(r.text).toContain('"delete_note" was not run');
    expect(r.text).toContain(endsAt);
    expect(r.text).toContain('Back at noon');
    expect(r.text).toContain('Retry this call after 603 seconds');
    expect(r).not.toHaveProperty('intentId');
  });

  it('renders a queued call with its intent, and tells the agent not to call again', () => {
    const r = agentRefusal({
      decision: enqueue,
      message: 'm',
      contact: '#ops',
      tool: 'add_note',
      intent: { id: 'int_1', idempotencyKey: 'k1', statusUrl: '/quiesce/intents/int_1' },
      now,
    });
    expect(r).toMatchObject({
      outcome: 'queued',
      intentId: 'int_1',
      idempotencyKey: 'k1',
      statusUrl: '/quiesce/intents/int_1',
      contact: '#ops',
      retryAfterSeconds: 601,
    });
    expect(r.text).toContain('queued as intent int_1');
    expect(r.text).toContain('Do not call it again');
    expect(r.text).toContain('Contact: #ops.');
  });

  it('says refused, not queued, for an enqueue decision that was not kept', () => {
    const r = agentRefusal({ decision: enqueue, message: 'm', now });
    expect(r.outcome).toBe('refused');
    expect(r.text).not.toContain('queued');
  });

  it('renders a dropped call with the seconds left of the window, or the default when unknown', () => {
    expect(agentRefusal({ decision: discard, now }).retryAfterSeconds).toBe(600);
    const unknown = agentRefusal({ decision: { ...discard, endsAt: null }, now });
    expect(unknown.retryAfterSeconds).toBe(300);
    expect(unknown.text).toContain('will not be applied');
    expect(unknown.text).toContain('has not announced');
    expect(unknown.message).toBe('The service is in read-only mode for maintenance.');
  });

  it('always names the window and a positive wait, whatever the end and the clock', () => {
    fc.assert(
      fc.property(
        fc.option(fc.integer({ min: -1e10, max: 1e10 }), { nil: null }),
        fc.constantFrom<RefuseDecision | EnqueueDecision | DiscardDecision>(refuse, enqueue, discard),
        (offset, decision) => {
          const end = offset === null ? null : new Date(now + offset).toISOString();
          const r = agentRefusal({ decision: { ...decision, endsAt: end }, now });
          expect(r.retryAfterSeconds).toBeGreaterThan(0);
          expect(r.windowEndsAt).toBe(end);
          expect(r.text).toContain(r.windowId);
          expect(r.text).toContain(end ?? 'has not announced');
        },
      ),
    );
  });

  it('is what guardTool returns', async () => {
    const engine = createQuiesce({ retryAfter: { jitterSeconds: 0 } });
    const del = engine.guardTool('deleteUser', async () => 'deleted');
    const w = await engine.begin({ reason: 'r', message: 'Back soon', contact: '#ops' });
    const refusal = await del();
    const d = engine.decide({ surface: 'tool', name: 'tool deleteUser' });
    if (d.outcome !== 'refuse') throw new Error(`expected a refusal, got ${d.outcome}`);
    const expected = agentRefusal({
      decision: d,
      message: w.message,
      contact: w.contact,
      tool: 'deleteUser',
      now: Date.now(),
    });
    expect(refusal).toEqual({
      ok: false,
      refused: true,
      ...expected,
      endsAt: expected.windowEndsAt,
      retryAfter: expected.retryAfterSeconds,
    });
    await engine.close();
  });
});
