import { type FakeStatuspage, startFakeStatuspage } from '@quiesce/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isQuiesceError } from '../../src/errors.js';
import { NotifierError } from '../../src/notifiers/delivery.js';
import { statuspageNotifier } from '../../src/notifiers/statuspageNotifier.js';
import { context, event, recordingLogger, testWindow, virtualTime } from './testSupport.js';

let fake: FakeStatuspage;
let time: ReturnType<typeof virtualTime>;

beforeEach(async () => {
  time = virtualTime();
  fake = await startFakeStatuspage({ now: time.now });
});
afterEach(async () => {
  await fake.close();
});

const notifier = (extra: Partial<Parameters<typeof statuspageNotifier>[0]> = {}) =>
  statuspageNotifier({
    apiKey: fake.apiKey,
    pageId: fake.pageId,
    baseUrl: fake.url,
    componentIds: ['cmp_api'],
    clock: time.clock,
    sleep: time.sleep,
    random: () => 1,
    ...extra,
  });

describe('statuspageNotifier', () => {
  it('runs the whole lifecycle on one scheduled maintenance', async () => {
    const sp = notifier();
    const w = testWindow();
    const scheduled = await sp.notify(event('scheduled', w, 'scheduled'), context());
    expect(fake.incidents()).toHaveLength(1);
    const [incident] = fake.incidents();
    expect(incident).toMatchObject({
      status: 'scheduled',
      name: 'Maintenance: Postgres 17 upgrade',
      scheduled_for: '2026-01-01T10:00:00.000Z',
      scheduled_until: '2026-01-01T11:30:00.000Z',
      scheduled_auto_in_progress: false,
      metadata: { quiesce: { window_id: 'win_test_1' } },
    });
    expect(incident!.incident_updates[0]!.body).toContain('until 2026-01-01 11:30 UTC');
    expect(incident!.incident_updates[0]!.body).toContain('Contact: #ops-oncall');
    // The public page never shows the internal rollback plan.
    expect(incident!.incident_updates[0]!.body).not.toContain('Fail back');
    // Only announced: the component is not under maintenance yet.
    expect(fake.componentStatus('cmp_api')).toBe('operational');
    expect(scheduled).toMatchObject({ incidentId: incident!.id, status: 'scheduled' });

    const started = await sp.notify(
      event('started', w, 'freezing'),
      context(scheduled as Record<string, unknown>),
    );
    expect(fake.incidents()[0]!.status).toBe('in_progress');
    expect(fake.componentStatus('cmp_api')).toBe('under_maintenance');
    expect(fake.componentStatus('cmp_web')).toBe('operational');

    const extendedWindow = { ...w, endsAt: '2026-01-01T12:15:00.000Z' };
    await sp.notify(event('extended', extendedWindow, 'frozen'), context(started as Record<string, unknown>));
    expect(fake.incidents()[0]!.scheduled_until).toBe('2026-01-01T12:15:00.000Z');
    expect(fake.incidents()[0]!.incident_updates[0]!.body).toContain('until 2026-01-01 12:15 UTC');

    const endedWindow = { ...extendedWindow, endedAt: '2026-01-01T11:50:00.000Z' };
    const ended = await sp.notify(event('ended', endedWindow, 'thawing'), context());
    expect(fake.incidents()[0]!.status).toBe('completed');
    expect(fake.incidents()[0]!.incident_updates[0]!.body).toContain(
      'Writes are back on since 2026-01-01 11:50 UTC',
    );
    expect(fake.componentStatus('cmp_api')).toBe('operational');
    expect(ended).toMatchObject({ status: 'completed' });

    const before = fake.requests.length;
    await sp.notify(
      event('closed', { ...endedWindow, closedAt: '2026-01-01T11:52:00.000Z' }, 'closed'),
      context(),
    );
    expect(fake.requests.length).toBe(before);

    // Every call authenticated, none rate limited, and spaced by at least a second.
    expect(fake.requests.every((r) => r.authorization === `OAuth ${fake.apiKey}`)).toBe(true);
    expect(fake.requests.map((r) => r.status).filter((s) => s >= 300)).toEqual([]);
    const gaps = fake.requests.slice(1).map((r, i) => r.at - fake.requests[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1000);
    expect(fake.componentChanges.map((c) => `${c.id}:${c.to}`)).toEqual([
      'cmp_api:under_maintenance',
      'cmp_api:operational',
    ]);
  });

  it('a restarted instance updates the incident in the record instead of creating one', async () => {
    const w = testWindow();
    const first = notifier();
    const data = await first.notify(event('scheduled', w, 'scheduled'), context());
    const afterStart = await first.notify(
      event('started', w, 'freezing'),
      context(data as Record<string, unknown>),
    );

    const restarted = notifier();
    await restarted.notify(
      event('extended', { ...w, endsAt: '2026-01-01T12:00:00.000Z' }, 'frozen'),
      context(afterStart as Record<string, unknown>),
    );
    await restarted.notify(
      event('ended', { ...w, endedAt: '2026-01-01T11:40:00.000Z' }, 'thawing'),
      context(afterStart as Record<string, unknown>),
    );
    expect(fake.incidents()).toHaveLength(1);
    expect(fake.incidents()[0]).toMatchObject({
      status: 'completed',
      scheduled_until: '2026-01-01T12:00:00.000Z',
    });
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('a lost record adopts the incident of the window (by its metadata) rather than duplicating it', async () => {
    const w = testWindow();
    await notifier().notify(event('scheduled', w, 'scheduled'), context());
    // A second instance whose record never received the incident id.
    const second = notifier();
    await second.notify(event('started', w, 'freezing'), context());
    expect(fake.incidents()).toHaveLength(1);
    expect(fake.incidents()[0]!.status).toBe('in_progress');
    const third = notifier();
    await third.notify(event('ended', { ...w, endedAt: '2026-01-01T11:00:00.000Z' }, 'thawing'), context());
    expect(fake.incidents()).toHaveLength(1);
    expect(fake.incidents()[0]!.status).toBe('completed');
    expect(fake.componentStatus('cmp_api')).toBe('operational');
  });

  it('in one process, started waits for scheduled even when the record lags behind', async () => {
    const sp = notifier();
    const w = testWindow();
    // Both fired at once, as the engine does (it never waits for notifiers).
    await Promise.all([
      sp.notify(event('scheduled', w, 'scheduled'), context()),
      sp.notify(event('started', w, 'freezing'), context()),
    ]);
    expect(fake.incidents()).toHaveLength(1);
    expect(fake.incidents()[0]!.status).toBe('in_progress');
  });

  it('begin without a schedule creates the maintenance in progress with its components', async () => {
    const w = testWindow({ endsAt: null });
    const data = await notifier().notify(event('started', w, 'freezing'), context());
    const [incident] = fake.incidents();
    expect(incident).toMatchObject({ status: 'in_progress', scheduled_for: w.startsAt });
    // No expected end: Statuspage needs one, so the default duration (1 h) stands in.
    expect(incident!.scheduled_until).toBe('2026-01-01T11:00:00.000Z');
    expect(incident!.incident_updates[0]!.body).toContain('expected until further notice');
    expect(fake.componentStatus('cmp_api')).toBe('under_maintenance');
    expect(data).toMatchObject({ incidentId: incident!.id, status: 'in_progress' });
  });

  it('retries a 5xx storm with backoff and succeeds once the API recovers', async () => {
    fake.failNext(3, 503);
    const log = recordingLogger();
    const started = time.now();
    await notifier().notify(event('scheduled', testWindow(), 'scheduled'), context(undefined, log.logger));
    // Adoption lookups hit the storm first; then the create went through once.
    expect(fake.requests.filter((r) => r.status === 503)).toHaveLength(3);
    expect(fake.incidents()).toHaveLength(1);
    expect(log.entries.filter((e) => e.level === 'warn')).toHaveLength(3);
    // Backoff doubled: 1 s, 2 s, 4 s (random pinned to 1), plus pacing.
    expect(time.now() - started).toBeGreaterThanOrEqual(7000);
  });

  it('gives up after its budget on a storm that does not end, with an error naming the call', async () => {
    fake.failNext(1000, 502);
    const started = time.now();
    const attempt = notifier({ adoptExisting: false, retry: { attempts: 4 } }).notify(
      event('scheduled', testWindow(), 'scheduled'),
      context(),
    );
    await expect(attempt).rejects.toThrow(NotifierError);
    await expect(attempt).rejects.toThrow(
      /statuspage: POST \/pages\/page0001\/incidents failed after 4 attempts .*HTTP 502/,
    );
    expect(fake.requests).toHaveLength(4);
    expect(fake.incidents()).toHaveLength(0);
    expect(time.now() - started).toBeLessThan(120_000);

    fake.failNext(1000, 500);
    const budgeted = notifier({ adoptExisting: false, retry: { attempts: 50, budgetMs: 20_000 } }).notify(
      event('scheduled', testWindow(), 'scheduled'),
      context(),
    );
    await expect(budgeted).rejects.toThrow(/gave up: the 20000 ms budget/);
  });

  it('backs off on 429 when another client used up the shared rate limit', async () => {
    fake.exhaustRateLimit();
    await notifier({ adoptExisting: false }).notify(event('scheduled', testWindow(), 'scheduled'), context());
    const limited = fake.requests.filter((r) => r.status === 429).length;
    expect(limited).toBeGreaterThan(0);
    expect(fake.incidents()).toHaveLength(1);
  });

  it('does not retry a refusal that cannot heal (bad API key)', async () => {
    const sp = notifier({ apiKey: 'wrong-key' });
    await expect(sp.notify(event('scheduled', testWindow(), 'scheduled'), context())).rejects.toThrow(
      /was refused \(HTTP 401: .*Could not authenticate.*\); not retried/,
    );
    expect(fake.requests).toHaveLength(1);
  });

  it('gives a clear error naming the option that is wrong', () => {
    expect(() => statuspageNotifier({ apiKey: '', pageId: 'p' })).toThrow(/apiKey: is required/);
    try {
      statuspageNotifier({ apiKey: 'k', pageId: 'p', baseUrl: 'not a url' });
      expect.unreachable();
    } catch (error) {
      expect(isQuiesceError(error) && error.code === 'INVALID_INPUT' && error.field).toBe('baseUrl');
    }
    expect(() => statuspageNotifier({ apiKey: 'k', pageId: 'p', componentIds: [''] } as never)).toThrow(
      /componentIds\.0/,
    );
  });
});

describe('the Statuspage fake enforces the documented contract', () => {
  const call = (path: string, init: RequestInit & { key?: string } = {}) =>
    fetch(`${fake.url}/pages/${fake.pageId}${path}`, {
      ...init,
      headers: {
        Authorization: `OAuth ${init.key ?? fake.apiKey}`,
        'Content-Type': 'application/json',
        ...(init.headers as Record<string, string>),
      },
    });
  const maintenance = {
    name: 'm',
    status: 'scheduled',
    scheduled_for: '2026-01-01T10:00:00Z',
    scheduled_until: '2026-01-01T11:00:00Z',
  };

  it('refuses a wrong key, a wrong page and a body outside { incident }', async () => {
    expect((await call('/incidents', { key: 'nope' })).status).toBe(401);
    expect((await fetch(`${fake.url}/pages/${fake.pageId}/incidents`)).status).toBe(401);
    expect(
      (
        await fetch(`${fake.url}/pages/other/incidents`, {
          headers: { Authorization: `OAuth ${fake.apiKey}` },
        })
      ).status,
    ).toBe(404);
    expect((await call('/incidents', { method: 'POST', body: JSON.stringify(maintenance) })).status).toBe(
      400,
    );
    const typo = await call('/incidents', {
      method: 'POST',
      body: JSON.stringify({ incident: { ...maintenance, scheduled_untill: 'x' } }),
    });
    expect(typo.status).toBe(422);
    expect(await typo.text()).toContain('scheduled_untill');
  });

  it('needs a valid schedule and allows only forward maintenance transitions', async () => {
    const bad = await call('/incidents', {
      method: 'POST',
      body: JSON.stringify({ incident: { ...maintenance, scheduled_until: '2026-01-01T09:00:00Z' } }),
    });
    expect(bad.status).toBe(422);
    const created = await call('/incidents', {
      method: 'POST',
      body: JSON.stringify({ incident: maintenance }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const patch = (incident: unknown) =>
      call(`/incidents/${id}`, { method: 'PATCH', body: JSON.stringify({ incident }) });
    expect((await patch({ status: 'investigating' })).status).toBe(422);
    expect((await patch({ status: 'in_progress' })).status).toBe(200);
    expect((await patch({ status: 'scheduled' })).status).toBe(422);
    expect((await patch({ status: 'completed' })).status).toBe(200);
    expect((await patch({ status: 'verifying' })).status).toBe(422);
  });

  it('applies a components map at creation, even to a maintenance that is only scheduled', async () => {
    const created = await call('/incidents', {
      method: 'POST',
      body: JSON.stringify({ incident: { ...maintenance, components: { cmp_web: 'under_maintenance' } } }),
    });
    expect(created.status).toBe(201);
    expect(fake.componentStatus('cmp_web')).toBe('under_maintenance');
  });

  it('answers 429 past 1 request per second on a 60 s rolling window', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 61; i++) statuses.push((await call('/components')).status);
    expect(statuses.slice(0, 60).every((s) => s === 200)).toBe(true);
    expect(statuses[60]).toBe(429);
    time.advance(60_001);
    expect((await call('/components')).status).toBe(200);
  });
});
