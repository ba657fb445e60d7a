import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EscalationRecord, escalationRows } from '@quiesce/core';
import { browserAvailable, CHROMIUM_ARGS, CHROMIUM_PATH } from '@quiesce/testkit';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildDemo, type Demo } from '../src/index.js';
import { json } from './helpers.js';

const available = browserAvailable('demo escalation browser test');

const eventually = (fn: () => Promise<unknown>, timeout = 20_000) =>
  vi.waitFor(fn, { timeout, interval: 150 });
const text = async (page: Page, selector: string) =>
  (await page.locator(selector).first().textContent()) ?? '';

describe.skipIf(!available)('the admin page shows escalations (#18), in headless Chromium', () => {
  let dir: string;
  let demo: Demo;
  let browser: Browser;
  let admin: Page;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quiesce-demo-escalation-'));
    // The demo's default policy: extend by 10 minutes, at most twice, rollback hook once.
    demo = await buildDemo({ port: 0, dataDir: dir, soakMs: 200, cron: false });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    admin = await (await browser.newContext()).newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const record = () => demo.engine.window?.report.escalation as EscalationRecord | undefined;
  /** Reads during the window whose answers drifted (deltaS 1, over the 0.6 limit): the watcher judges every 64th. */
  const driftingReads = (n: number) => {
    for (let i = 0; i < n; i++)
      demo.engine.reportRead({ surface: 'http', durationMs: 1, error: false, signals: { deltaS: 1 } });
  };

  it('reads drift during a window: extended twice with the new ends, then at the limit; the rollback hook ran once; the signal before and during', async () => {
    // The baseline: searches before the window, over HTTP; the route attaches each answer's deltaS.
    for (const text of ['tea with lemon', 'coffee beans'])
      expect(
        (
          await fetch(`${demo.url}/api/notes`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ text }),
          })
        ).status,
      ).toBe(201);
    const drifts = [];
    for (const q of ['tea lemon', 'tea sugar', 'coffee beans', 'coffee milk'])
      drifts.push((await json(fetch(`${demo.url}/api/notes/search?q=${encodeURIComponent(q)}`))).deltaS);
    expect(drifts).toEqual([0, 0.5, 0, 0.5]);
    // Reported when each response closes.
    await expect
      .poll(async () => (await demo.engine.status()).readHealth.signals.deltaS?.baseline.count)
      .toBe(4);

    const begun = await demo.engine.begin({
      reason: 'search reindex',
      message: 'Notes are read-only while we rebuild the search index.',
      endsAt: new Date(Date.now() + 30 * 60_000).toISOString(),
      rollbackPlan: 'Switch search back to the old index.',
    });
    await demo.engine.waitForPhase('frozen', { timeoutMs: 15_000 });
    const plannedEnd = Date.parse(begun.endsAt!);

    await admin.goto(`${demo.url}/admin#token=${demo.adminToken}`);
    // Nothing recorded yet: the limit shown is the demo engine's own policy (engine.options.escalation).
    await eventually(async () =>
      expect(await text(admin, '[data-figure=escalation-policy]')).toBe(
        'No escalation recorded in this window. Policy: extended by 10 min per escalation, at most 2 times.',
      ),
    );
    expect(await text(admin, '[data-figure=extensions]')).toBe('0 / 2');
    expect(await admin.locator('[data-escalation]').count()).toBe(0);
    expect(await admin.locator('#escalations tr').count()).toBe(0);
    // The rows come from the admin token's route, not from anyone without it.
    expect((await fetch(`${demo.url}/admin/escalation`)).status).toBe(401);

    // First escalation: extended by 10 minutes, and the rollback hook runs.
    driftingReads(64);
    await expect.poll(() => record()?.rollback?.status).toBe('ok');
    // The record carries the policy's limit and step, and each rule's figures.
    expect(record()).toMatchObject({ extensions: 1, maxExtensions: 2, extendBy: 10 * 60_000 });
    const first = record()!.events[0]!;
    expect(first.outcome).toBe('extended');
    expect(Date.parse(first.endsAt!) - plannedEnd).toBe(10 * 60_000);
    expect(first.reasons).toEqual([
      'deltaS mean 1 is above 0.600',
      'deltaS mean 1 is over 2x the baseline 0.250',
    ]);
    const figures = {
      metric: 'deltaS',
      stat: 'mean',
      baseline: 0.25,
      during: 1,
      baselineSamples: 4,
      duringSamples: 64,
    };
    expect(first.findings).toMatchObject([
      { ...figures, kind: 'absolute', limit: 0.6 },
      { ...figures, kind: 'ratio', limit: 2 },
    ]);
    await eventually(async () => expect(await text(admin, '[data-figure=extensions]')).toBe('1 / 2'));
    expect(await text(admin, '[data-figure=escalation-policy]')).toBe(
      'As recorded: extended by 10 min per escalation, at most 2 times.',
    );
    const row1 = admin.locator('#escalations tr').nth(0).locator('td');
    expect([
      await row1.nth(0).textContent(),
      await row1.nth(1).textContent(),
      await row1.nth(3).textContent(),
      await row1.nth(4).textContent(),
    ]).toEqual([first.at, 'extended', `extended: now ends ${first.endsAt}`, demo.engine.instanceId]);
    // The evidence: one line per rule, the numbers those of the record.
    const lines = row1.nth(2).locator('div');
    expect(await lines.allTextContents()).toEqual([
      'deltaS mean 1 during (64 reads) vs 0.25 before (4 reads) · limit: above 0.6 (absolute)',
      'deltaS mean 1 during (64 reads) vs 0.25 before (4 reads) · limit: above 2× the baseline (ratio)',
    ]);
    expect(await lines.allTextContents()).toEqual(escalationRows(demo.engine.window)!.rows[0]!.evidence);
    for (const [i, f] of first.findings!.entries()) {
      const line = lines.nth(i);
      expect(await line.getAttribute('data-kind')).toBe(f.kind);
      expect(Number(await line.getAttribute('data-baseline'))).toBe(f.baseline);
      expect(Number(await line.getAttribute('data-during'))).toBe(f.during);
      expect(Number(await line.getAttribute('data-limit'))).toBe(f.limit);
    }
    const rollback = await text(admin, '[data-figure=rollback]');
    expect(rollback).toContain(`Rollback hook: ok on ${demo.engine.instanceId}`);
    expect(rollback).toContain('plan: Switch search back to the old index.');
    expect(rollback).toContain(
      'evidence: deltaS mean 1 is above 0.600; deltaS mean 1 is over 2x the baseline 0.250',
    );
    expect(rollback).toContain(
      'result: {"plan":"Switch search back to the old index.","done":"nothing: the demo only records the plan and the evidence"}',
    );

    // Still drifting: extended again; then the limit (recorded, nothing changes).
    driftingReads(64);
    await expect.poll(() => record()?.events.length).toBe(2);
    const second = record()!.events[1]!;
    expect(second.outcome).toBe('extended');
    expect(Date.parse(second.endsAt!) - plannedEnd).toBe(20 * 60_000);
    driftingReads(64);
    await expect.poll(() => record()?.events.length).toBe(3);
    expect(record()!.events[2]!.outcome).toBe('limit');
    expect(demo.engine.window!.endsAt).toBe(second.endsAt);

    await eventually(async () => expect(await admin.locator('#escalations tr').count()).toBe(3));
    // The limit, 2 / 2, is the record's: extensions against maxExtensions as written by the policy.
    expect(record()).toMatchObject({ extensions: 2, maxExtensions: 2 });
    expect(await text(admin, '[data-figure=extensions]')).toBe('2 / 2');
    expect(escalationRows(demo.engine.window)!.extensionsFigure).toBe('2 / 2');
    expect(await admin.locator('#escalations tr').nth(1).locator('td').nth(3).textContent()).toBe(
      `extended: now ends ${second.endsAt}`,
    );
    const limit = admin.locator('#escalations tr').nth(2).locator('td');
    expect(await limit.nth(1).textContent()).toBe('limit');
    expect(await limit.nth(3).textContent()).toBe('none: extended 2 of 2 times already');
    // The window line follows the new end; the rollback ran once.
    expect(await text(admin, '[data-figure=window]')).toContain(`ends ${second.endsAt}`);
    expect(await text(admin, '[data-figure=rollback]')).toContain('Rollback hook: ok');
    const audit = await demo.engine.audit({ windowId: begun.id });
    expect(audit.filter((e) => e.reason === 'escalation: rollback ran')).toHaveLength(1);
    expect(await text(admin, '#audit')).toContain('reads degraded: deltaS mean 1 is above 0.600');

    // The signal before and during the window, as the watcher summarizes it.
    const signal = admin.locator('#signals tr[data-signal=deltaS] td');
    expect(await signal.nth(1).textContent()).toBe('4 reads, mean 0.25, p95 0.5, max 0.5');
    expect(await signal.nth(2).textContent()).toBe('192 reads, mean 1, p95 1, max 1');
  });
});
