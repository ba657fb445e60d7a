import { createManualClock, createQuiesce, type QuiesceEngine } from '@quiesce/core';
import { waitFor, waitForHeartbeats } from '@quiesce/testkit';
import { Cron } from 'croner';
import type { PgBoss } from 'pg-boss';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { freezeJobs, type JobFreezer } from '../src/index.js';
import { type Backend, describeEachBackend } from './backends.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const newEngine = () =>
  createQuiesce({ heartbeatMs: 25, soakMs: 0, drainDeadlineMs: 10_000, logger: silent });
const window = { reason: 'index rebuild', message: 'Writes are paused for an index rebuild.' };

async function stateOf(boss: PgBoss, queue: string, id: string) {
  const [job] = await boss.findJobs(queue, { id });
  return job?.state;
}

describeEachBackend('job plane freeze on %s', (_name, make) => {
  let backend: Backend;
  let boss: PgBoss;
  const cleanups: Array<() => unknown> = [];

  beforeAll(async () => {
    backend = await make();
    boss = await backend.boss();
  }, 30_000);
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(() => backend?.cleanup(), 30_000);

  const track = (engine: QuiesceEngine, freezer?: JobFreezer) => {
    cleanups.push(() => engine.close());
    if (freezer) cleanups.push(() => freezer.close());
  };

  it('stops writing workers at the window, drains running jobs, keeps read-only queues working, resumes at thaw', async () => {
    await boss.createQueue('emails.send');
    await boss.createQueue('reports.read');
    const engine = newEngine();
    const freezer = await freezeJobs(boss, engine, {
      schema: backend.schema,
      queues: { 'reports.read': { readOnly: true } },
    });
    track(engine, freezer);

    const done: string[] = [];
    let releaseSlow!: () => void;
    const slowGate = new Promise<void>((r) => (releaseSlow = r));
    let slowStarted = false;
    await freezer.work<{ kind: string }>(
      'emails.send',
      { pollingIntervalSeconds: 0.5, batchSize: 1 },
      async ([job]) => {
        if (job!.data.kind === 'slow') {
          slowStarted = true;
          await slowGate;
        }
        done.push(job!.data.kind);
      },
    );
    await freezer.work<{ kind: string }>('reports.read', { pollingIntervalSeconds: 0.5 }, async ([job]) => {
      done.push(job!.data.kind);
    });

    await boss.send('emails.send', { kind: 'slow' });
    await vi.waitFor(() => expect(slowStarted).toBe(true), { timeout: 5000 });

    await engine.begin(window);
    // The running job is an in-flight write: the window cannot be confirmed frozen until it ends.
    expect(engine.phase).toBe('freezing');
    expect((await engine.status()).inFlight.count).toBe(1);
    // Three heartbeats later that acknowledge the freeze and still report the job, still freezing.
    const freezeVersion = engine.window!.freezeVersion ?? 0;
    await waitForHeartbeats(
      engine,
      3,
      'acknowledging the freeze with the job in flight',
      (self) => self.ackedVersion >= freezeVersion && self.inFlight === 1,
    );
    expect(engine.phase).toBe('freezing');
    releaseSlow();
    await engine.waitForPhase('frozen', { timeoutMs: 5000 });
    expect(done).toEqual(['slow']);
    expect(freezer.frozen).toBe(true);

    const held = await boss.send('emails.send', { kind: 'during-window' });
    await boss.send('reports.read', { kind: 'report' });
    await vi.waitFor(() => expect(done).toContain('report'), { timeout: 5000 });
    // Two more fetches of the reports.read worker (same polling interval as the stopped one): time in
    // which a running emails.send worker would have fetched the held job.
    const fetches = new Set<string>();
    await waitFor('two more polling rounds of the reports.read worker', () => {
      const at = boss.getWipData().find((w) => w.name === 'reports.read')?.lastFetchedOn;
      if (at) fetches.add(String(at));
      return fetches.size >= 3;
    });
    expect(done).not.toContain('during-window');
    expect(await stateOf(boss, 'emails.send', held!)).toBe('created');
    expect(boss.getWipData().filter((w) => w.name === 'emails.send' && w.state === 'active')).toHaveLength(0);

    await engine.end();
    await vi.waitFor(() => expect(done).toContain('during-window'), { timeout: 5000 });
    // Restarted with its original options.
    const [wip] = boss.getWipData().filter((w) => w.name === 'emails.send' && w.state === 'active');
    expect(wip?.options).toMatchObject({ pollingIntervalSeconds: 0.5, batchSize: 1 });

    expect(engine.inventory()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          surface: 'job',
          name: 'job emails.send',
          queue: 'emails.send',
          classification: 'write',
          explicit: false,
          source: 'pg-boss',
        }),
        expect.objectContaining({
          surface: 'job',
          name: 'job reports.read',
          classification: 'read',
          policy: 'allow',
          explicit: true,
        }),
      ]),
    );
    await freezer.offWork('emails.send');
    await freezer.offWork('reports.read');
  }, 30_000);

  it('hands back, untouched, a job a worker fetched while writes are refused', async () => {
    await boss.createQueue('ledger.post');
    const engine = newEngine();
    const freezer = await freezeJobs(boss, engine, { schema: backend.schema });
    track(engine, freezer);
    const ran: unknown[] = [];
    await freezer.work(
      'ledger.post',
      { pollingIntervalSeconds: 0.5 },
      async ([job]) => void ran.push(job!.data),
    );
    await engine.begin(window);
    await engine.waitForPhase('frozen', { timeoutMs: 5000 });
    const id = await boss.send('ledger.post', { amount: 5 });
    // A worker that races the freeze (here: restarted by hand while the engine still refuses writes).
    await freezer.thaw();
    await vi.waitFor(
      async () => expect((await boss.findJobs('ledger.post', { id: id! }))[0]?.retryCount).toBeGreaterThan(0),
      {
        timeout: 5000,
      },
    );
    expect(ran).toEqual([]);
    expect(await stateOf(boss, 'ledger.post', id!)).not.toBe('completed');
    await freezer.freeze();
    await engine.end();
    await vi.waitFor(() => expect(ran).toEqual([{ amount: 5 }]), { timeout: 5000 });
    await freezer.offWork('ledger.post');
  }, 30_000);

  it('pauses schedules of writing queues and settles missed ticks by policy (fake clock)', async () => {
    const queues = ['nightly.skip', 'nightly.coalesce', 'nightly.replay', 'often.coalesce', 'stats.read'];
    for (const q of queues) await boss.createQueue(q);
    await boss.schedule('nightly.skip', '0 * * * *', { job: 'skip' }, { tz: 'UTC' });
    await boss.schedule('nightly.coalesce', '0 * * * *', { job: 'coalesce' }, { tz: 'UTC', priority: 3 });
    await boss.schedule('nightly.replay', '0 * * * *', { job: 'replay' }, { tz: 'UTC', key: 'eu' });
    await boss.schedule('often.coalesce', '*/5 * * * *', { job: 'often' });
    await boss.schedule('stats.read', '*/5 * * * *', { job: 'stats' });

    const clock = createManualClock(Date.UTC(2026, 0, 1, 0, 10));
    const engine = newEngine();
    const freezer = await freezeJobs(boss, engine, {
      schema: backend.schema,
      clock,
      queues: {
        'nightly.skip': { missed: 'skip' },
        'nightly.coalesce': { missed: 'coalesce' },
        'nightly.replay': { missed: (s) => (s.key === 'eu' ? 'replay' : 'skip') },
        'often.coalesce': { missed: 'coalesce' },
        'stats.read': { readOnly: true },
      },
    });
    track(engine, freezer);
    expect(engine.inventory()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          surface: 'cron',
          name: 'cron nightly.replay/eu',
          details: expect.objectContaining({ cron: '0 * * * *', missed: 'replay', paused: false }),
        }),
      ]),
    );

    await engine.begin(window);
    await engine.waitForPhase('frozen', { timeoutMs: 5000 });
    for (const q of queues.slice(0, 4)) expect(await boss.getSchedules(q)).toEqual([]);
    expect(await boss.getSchedules('stats.read')).toHaveLength(1); // read-only: untouched

    // 3h20m of window on the fake clock: hourly ticks 01:00, 02:00, 03:00; five-minute ticks up to 03:30.
    await clock.set(Date.UTC(2026, 0, 1, 3, 30));
    await engine.end();
    await vi.waitFor(() => expect(freezer.frozen).toBe(false), { timeout: 5000 });
    await vi.waitFor(async () => expect(await boss.getSchedules('nightly.skip')).toHaveLength(1), {
      timeout: 5000,
    });

    const jobs = async (q: string) => boss.findJobs<{ job: string }>(q);
    expect(await jobs('nightly.skip')).toHaveLength(0);
    const coalesced = await jobs('nightly.coalesce');
    expect(coalesced).toHaveLength(1);
    expect(coalesced[0]).toMatchObject({ data: { job: 'coalesce' }, priority: 3 });
    expect((await jobs('nightly.replay')).map((j) => j.data)).toEqual([
      { job: 'replay' },
      { job: 'replay' },
      { job: 'replay' },
    ]);
    expect(await jobs('often.coalesce')).toHaveLength(1);

    // Restored as they were (key, options), except the one whose last missed tick (03:30) is still
    // inside pg-boss's one-minute due window: it comes back once that tick is out of it.
    expect(await boss.getSchedules('nightly.replay')).toEqual([
      expect.objectContaining({ key: 'eu', cron: '0 * * * *', timezone: 'UTC' }),
    ]);
    expect((await boss.getSchedules('nightly.coalesce'))[0]?.options).toMatchObject({ priority: 3 });
    expect(await boss.getSchedules('often.coalesce')).toEqual([]);
    await clock.set(Date.UTC(2026, 0, 1, 3, 31, 5));
    await vi.waitFor(async () => expect(await boss.getSchedules('often.coalesce')).toHaveLength(1), {
      timeout: 5000,
    });
    expect(await backend.sql(`SELECT * FROM ${backend.schema}.quiesce_paused_schedule`)).toEqual([]);
  }, 30_000);

  it('two instances pause a schedule once and settle its missed ticks once', async () => {
    await boss.createQueue('shared.sync');
    await boss.schedule('shared.sync', '*/10 * * * *', { job: 'sync' });
    const other = await backend.boss();
    const clock = createManualClock(Date.UTC(2026, 0, 1, 0, 5));
    const queues = { 'shared.sync': { missed: 'coalesce' as const } };
    const [engineA, engineB] = [newEngine(), newEngine()];
    const a = await freezeJobs(boss, engineA, { schema: backend.schema, clock, queues });
    const b = await freezeJobs(other, engineB, { schema: backend.schema, clock, queues });
    track(engineA, a);
    track(engineB, b);
    await Promise.all([a.freeze(), b.freeze()]);
    expect(await boss.getSchedules('shared.sync')).toEqual([]);
    expect(await backend.sql(`SELECT name FROM ${backend.schema}.quiesce_paused_schedule`)).toEqual([
      { name: 'shared.sync' },
    ]);
    await clock.set(Date.UTC(2026, 0, 1, 1, 5)); // six ticks missed
    await Promise.all([a.thaw(), b.thaw()]);
    expect(await boss.findJobs('shared.sync')).toHaveLength(1);
    expect(await boss.getSchedules('shared.sync')).toEqual([
      expect.objectContaining({ cron: '*/10 * * * *' }),
    ]);
  }, 30_000);

  it('restores schedules a crashed instance left paused when the next one starts', async () => {
    await boss.createQueue('crashy');
    await boss.schedule('crashy', '0 0 * * *', { job: 'daily' });
    const engine = newEngine();
    const freezer = await freezeJobs(boss, engine, { schema: backend.schema, queues: { crashy: {} } });
    await engine.begin(window);
    await engine.waitForPhase('frozen', { timeoutMs: 5000 });
    expect(await boss.getSchedules('crashy')).toEqual([]);
    // The process "dies" here: no thaw hook ever runs on it.
    freezer.close();
    await engine.close();

    const next = newEngine(); // the window's state is gone with the memory store: writes are on
    const restarted = await freezeJobs(boss, next, { schema: backend.schema, queues: { crashy: {} } });
    track(next, restarted);
    expect(await boss.getSchedules('crashy')).toEqual([expect.objectContaining({ cron: '0 0 * * *' })]);
  }, 30_000);
});

describe('guarding a croner job with engine.guardJob', () => {
  it('skips ticks during a window, settles missed ticks by policy at thaw and tracks running ticks', async () => {
    const engine = newEngine();
    const runs: Record<string, number> = { skip: 0, coalesce: 0, replay: 0, read: 0 };
    const jobs = (['skip', 'coalesce', 'replay'] as const).map(
      (missed) =>
        new Cron(
          '*/5 * * * *',
          { paused: true },
          engine.guardJob(`billing.${missed}`, () => void runs[missed]!++, { missed }),
        ),
    );
    const reader = new Cron(
      '* * * * *',
      { paused: true },
      engine.guardJob('cache.warm', () => void runs.read!++, { readOnly: true }),
    );
    let releaseTick!: () => void;
    let tickRunning = false;
    const long = new Cron(
      '* * * * *',
      { paused: true },
      engine.guardJob('ledger.close', async () => {
        tickRunning = true;
        await new Promise<void>((r) => (releaseTick = r));
      }),
    );

    for (const job of jobs) await job.trigger();
    expect(runs).toMatchObject({ skip: 1, coalesce: 1, replay: 1 });
    void long.trigger();
    await vi.waitFor(() => expect(tickRunning).toBe(true), { timeout: 5000 });

    await engine.begin(window);
    expect((await engine.status()).inFlight.count).toBe(1); // the running tick holds the freeze
    releaseTick();
    await engine.waitForPhase('frozen', { timeoutMs: 5000 });
    for (let i = 0; i < 3; i++) {
      for (const job of jobs) await job.trigger();
      await reader.trigger();
    }
    expect(runs).toEqual({ skip: 1, coalesce: 1, replay: 1, read: 3 });

    await engine.end();
    await vi.waitFor(() => expect(runs).toEqual({ skip: 1, coalesce: 2, replay: 4, read: 3 }), {
      timeout: 5000,
    });
    expect(engine.inventory()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          surface: 'cron',
          name: 'cron billing.replay',
          classification: 'write',
          details: { missed: 'replay' },
        }),
        expect.objectContaining({ surface: 'cron', name: 'cron cache.warm', classification: 'read' }),
      ]),
    );
    for (const job of [...jobs, reader, long]) job.stop();
    await engine.close();
  }, 30_000);
});
