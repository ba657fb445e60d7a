import { type FakeStatuspage, startFakeStatuspage, waitFor } from '@quiesce/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createQuiesce } from '../../src/engine.js';
import { createMemoryStore } from '../../src/memoryStore.js';
import { statuspageNotifier } from '../../src/notifiers/statuspageNotifier.js';
import type { QuiesceEngine } from '../../src/types.js';
import { virtualTime } from './testSupport.js';

// The engine drives the notifier on the real clock; the notifier's own waits (pacing, backoff)
// run on virtual time shared with the fake, so the suite stays fast.
let fake: FakeStatuspage;
let time: ReturnType<typeof virtualTime>;
const engines: QuiesceEngine[] = [];

beforeEach(async () => {
  time = virtualTime(Date.now());
  fake = await startFakeStatuspage({ now: time.now });
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
  await fake.close();
});

const statuspage = (extra: Partial<Parameters<typeof statuspageNotifier>[0]> = {}) =>
  statuspageNotifier({
    apiKey: fake.apiKey,
    pageId: fake.pageId,
    baseUrl: fake.url,
    componentIds: ['cmp_api', 'cmp_web'],
    clock: time.clock,
    sleep: time.sleep,
    ...extra,
  });

function engineWith(store = createMemoryStore(), notifier = statuspage()) {
  const engine = createQuiesce({ store, notifiers: [notifier], soakMs: 50, heartbeatMs: 50 });
  engines.push(engine);
  return engine;
}

describe('statuspage notifier driven by the engine', () => {
  it('schedule, begin, extend, end: one incident, the id kept in the window record', async () => {
    const engine = engineWith();
    const startsAt = new Date(Date.now() + 300).toISOString();
    const endsAt = new Date(Date.now() + 3_600_000).toISOString();
    const w = await engine.schedule({
      reason: 'Reindex',
      message: 'Writes pause for a reindex.',
      startsAt,
      endsAt,
    });
    await waitFor('the scheduled notice', () => engine.window?.notices.statuspage?.lastEvent === 'scheduled');
    expect(fake.incidents()[0]).toMatchObject({
      status: 'scheduled',
      scheduled_for: w.startsAt,
      scheduled_until: endsAt,
    });
    expect(fake.componentStatus('cmp_api')).toBe('operational');
    const incidentId = engine.window?.notices.statuspage?.data?.incidentId;
    expect(incidentId).toBe(fake.incidents()[0]!.id);

    await engine.waitForPhase('frozen', { timeoutMs: 3000 });
    await waitFor('the started notice', () => engine.window?.notices.statuspage?.lastEvent === 'started');
    expect(fake.incidents()[0]!.status).toBe('in_progress');
    expect(fake.componentStatus('cmp_web')).toBe('under_maintenance');

    const later = new Date(Date.parse(endsAt) + 1_800_000).toISOString();
    await engine.extend({ endsAt: later });
    await waitFor('the extended notice', () => engine.window?.notices.statuspage?.lastEvent === 'extended');
    expect(fake.incidents()[0]!.scheduled_until).toBe(later);

    await engine.end({ message: 'All done.' });
    await engine.waitForPhase('closed', { timeoutMs: 3000 });
    await waitFor('the closed notice', () => engine.window?.notices.statuspage?.lastEvent === 'closed');
    expect(fake.incidents()).toHaveLength(1);
    expect(fake.incidents()[0]!.status).toBe('completed');
    expect(fake.componentStatus('cmp_api')).toBe('operational');
    expect(engine.window?.notices.statuspage).toMatchObject({
      status: 'ok',
      data: { incidentId, status: 'completed' },
    });
  });

  it('an instance restarted mid-window finishes the same incident', async () => {
    const store = createMemoryStore();
    const first = engineWith(store);
    await first.begin({ reason: 'Failover', message: 'Writes paused during failover.' });
    await waitFor('the started notice', () => first.window?.notices.statuspage?.status === 'ok');
    await first.close();

    const second = engineWith(store, statuspage({ adoptExisting: false }));
    await second.start();
    await second.end();
    await second.waitForPhase('closed', { timeoutMs: 3000 });
    await waitFor('the ended notice', () => second.window?.notices.statuspage?.lastEvent !== 'started');
    await waitFor('completion', () => fake.incidents()[0]?.status === 'completed');
    expect(fake.incidents()).toHaveLength(1);
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  // Four real attempts with backoff: room for a busy machine (waitFor uses 80 % of it).
  it('a Statuspage outage neither stops nor delays the freeze, and is recorded on the window', {
    timeout: 10_000,
  }, async () => {
    fake.failNext(10_000, 503);
    // Real waits here (small backoff) so the freeze demonstrably completes while the notifier retries.
    const notifier = statuspage({
      sleep: undefined,
      clock: undefined,
      minIntervalMs: 0,
      retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 200 },
    });
    const engine = engineWith(createMemoryStore(), notifier);
    const failures: string[] = [];
    engine.on('notifier-failed', (info) => failures.push(info.error));
    await engine.begin({ reason: 'Emergency', message: 'Read-only while we investigate.' });
    await engine.waitForPhase('frozen', { timeoutMs: 1000 });
    expect(engine.window?.notices.statuspage?.status).not.toBe('failed');
    await waitFor('the failed notice', () => engine.window?.notices.statuspage?.status === 'failed');
    expect(engine.window?.notices.statuspage?.lastError).toMatch(
      /statuspage: .* failed after 4 attempts .*HTTP 503/,
    );
    expect(failures).toHaveLength(1);
    expect(engine.readOnly).toBe(true);
  });
});
