import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { browserAvailable, CHROMIUM_PATH } from '@quiesce/testkit';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildDemo, type Demo } from '../src/index.js';
import { quiesceCli } from './helpers.js';

// Chromium from QUIESCE_TEST_CHROMIUM (default /usr/bin/chromium); mandatory under QUIESCE_REQUIRE_SERVICES=1.
const CHROMIUM = CHROMIUM_PATH;
const available = browserAvailable('demo browser test');

const eventually = (fn: () => Promise<unknown>, timeout = 20_000) =>
  vi.waitFor(fn, { timeout, interval: 150 });
const text = (page: Page, selector: string) => page.locator(selector).first().textContent();

describe.skipIf(!available)(
  'the demo end to end in headless Chromium, with the CLI as a child process',
  () => {
    let dir: string;
    let demo: Demo;
    let browser: Browser;
    let board: Page;
    let admin: Page;
    let target: string[];

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'quiesce-demo-e2e-'));
      demo = await buildDemo({ port: 0, dataDir: dir, soakMs: 500, cron: false });
      target = ['--url', `${demo.url}/quiesce`, '--token', demo.adminToken];
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
        ],
      });
      const context = await browser.newContext();
      board = await context.newPage();
      admin = await context.newPage();
    });
    afterAll(async () => {
      await browser?.close();
      await demo?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('write, begin from the CLI, banner and disabled controls, queued write, end, applied after backfill, admin figures move', async () => {
      // Open the app and write something.
      await board.goto(`${demo.url}/`);
      await board.fill('#text', 'written before the window');
      await board.click('#add-button');
      const first = board.locator('#notes li', { hasText: 'written before the window' });
      await first.waitFor();
      const deleteFirst = first.locator('button[data-action=delete]');
      expect(await deleteFirst.isDisabled()).toBe(false);

      // The admin page, opened with the token in the fragment, shows a calm system.
      await admin.goto(`${demo.url}/admin#token=${demo.adminToken}`);
      await eventually(async () => expect(await text(admin, '[data-figure=phase]')).toBe('none'));
      expect(await text(admin, '[data-figure=refused]')).toBe('0');
      expect(admin.url()).not.toContain(demo.adminToken); // the token leaves the address bar

      // Begin a window from the CLI.
      const begin = await quiesceCli([
        'begin',
        ...target,
        '--reason',
        'e2e: database migration',
        '--message',
        'Notes are read-only while we migrate the database.',
        '--for',
        '10m',
      ]);
      expect(begin.stderr).toBe('');
      expect(begin.code).toBe(0);
      expect(begin.stdout).toMatch(/frozen at/);

      // The banner appears and the write controls are disabled.
      // (Playwright's CSS locators pierce the element's open shadow root.)
      const banner = board.locator('quiesce-banner [part=banner]');
      await eventually(async () =>
        expect(await banner.textContent()).toContain('Notes are read-only while we migrate the database.'),
      );
      expect(await banner.getAttribute('data-kind')).toBe('active');
      expect(await banner.textContent()).toMatch(/read-only/i);
      await eventually(async () => expect(await deleteFirst.isDisabled()).toBe(true));
      expect(await first.locator('button[data-action=pin]').isDisabled()).toBe(true);

      // A write that is refused (a client that ignores the disabled buttons) moves the refused count.
      const status = await board.evaluate(
        async () => (await fetch('/api/notes/1', { method: 'DELETE' })).status,
      );
      expect(status).toBe(503);

      // The board's client (@quiesce/client's browser bundle) does not spin on a window longer than
      // its budget: it gives up at once with the window's message.
      const gaveUp = await board.evaluate(async () => {
        const client = (window as unknown as { QuiesceClient: any }).QuiesceClient;
        return client
          .withQuiesceRetry(fetch, { budgetMs: 30_000 })('/api/notes/1', { method: 'DELETE' })
          .then(
            (r: Response) => `status ${r.status}`,
            (e: any) => ({ name: e.name, reason: e.reason, detail: e.detail, attempts: e.attempts }),
          );
      });
      expect(gaveUp).toEqual({
        name: 'QuiesceRetryError',
        reason: 'window-outlasts-budget',
        detail: 'Notes are read-only while we migrate the database.',
        attempts: 1,
      });

      // Submit a write that is queued.
      await board.fill('#text', 'written during the window');
      await board.click('#add-button');
      const pending = board.locator('#pending li', { hasText: 'written during the window' });
      await pending.waitFor();
      expect(await pending.textContent()).toMatch(/queued/);
      expect(await text(board, '#flash')).toMatch(/queued and will appear after the maintenance window/);
      expect(await board.locator('#notes li', { hasText: 'written during the window' }).count()).toBe(0);

      // The admin page's figures move.
      await eventually(async () => {
        expect(await text(admin, '[data-figure=phase]')).toBe('frozen');
        expect(Number(await text(admin, '[data-figure=refused]'))).toBeGreaterThanOrEqual(1);
        expect(Number(await text(admin, '[data-figure=queued]'))).toBe(1);
        expect(await text(admin, '[data-figure=queue-depth]')).toBe('1');
      });
      expect(await text(admin, '[data-figure=instances]')).toBe('1/1');
      expect(await text(admin, '#audit')).toMatch(/begin/);
      // Reads during the window (the closing record shows them).
      for (let i = 0; i < 3; i++) expect((await fetch(`${demo.url}/api/notes`)).status).toBe(200);

      // End the window from the CLI: thaw, soak, backfill, closed.
      const end = await quiesceCli(['end', ...target, '--reason', 'migration done']);
      expect(end.code).toBe(0);
      expect(end.stdout).toMatch(/backfill: 1\/1 intents applied, 0 failed/);

      // The queued write is applied after the backfill and shows on the page; controls are back.
      const applied = board.locator('#notes li', { hasText: 'written during the window' });
      await applied.waitFor({ timeout: 20_000 });
      expect(await applied.textContent()).toMatch(/applied after the window/);
      await eventually(async () => expect(await board.locator('#pending li').count()).toBe(0));
      await eventually(async () => expect(await deleteFirst.isDisabled()).toBe(false));
      await eventually(async () => expect(await banner.getAttribute('data-kind')).toBe('ended'));
      expect(await banner.textContent()).toMatch(/complete/i);

      await eventually(async () => {
        expect(await text(admin, '[data-figure=phase]')).toBe('closed');
        expect(await text(admin, '[data-figure=queue-depth]')).toBe('0');
        expect(await text(admin, '[data-figure=applied]')).toBe('1');
        expect(await text(admin, '[data-figure=backfill]')).toBe('1/1');
      });
      expect(await text(admin, '#audit')).toMatch(/end/);
      // The record as recorded: the real end (with the planned one), the reads during the window.
      expect(await text(admin, '[data-figure=window]')).toMatch(/ended \S+Z \(planned \S+Z\)/);
      await eventually(async () => {
        const reads = (await text(admin, '[data-figure=record-reads]')) ?? '';
        expect(reads).toMatch(
          /Recorded reads from 1 instance — during: \d+ reads, p50 [\d.]+ ms, p95 [\d.]+ ms/,
        );
        expect(Number(reads.match(/during: (\d+) reads/)?.[1])).toBeGreaterThanOrEqual(3);
        expect(reads).toMatch(/Backfill: 1 applied, 0 failed/);
      });
    });

    it('the admin page asks for the token and refuses a wrong one', async () => {
      const page = await browser.newPage();
      await page.goto(`${demo.url}/admin`);
      await page.locator('#login').waitFor();
      expect(await page.locator('#panel').isHidden()).toBe(true);
      await page.fill('#token', 'not-the-admin-token-at-all');
      await page.click('#login button');
      await eventually(async () => expect(await page.locator('#login').isVisible()).toBe(true));
      await page.fill('#token', demo.adminToken);
      await page.click('#login button');
      await eventually(async () => expect(await text(page, '[data-figure=phase]')).toBe('closed'));
      await page.close();
    });

    it('the admin page schedules, extends and cancels a window; the board announces it', async () => {
      await admin.reload();
      await admin.locator('#panel').waitFor();
      await admin.fill('#begin [name=reason]', 'index rebuild');
      // Number fields say their unit; a message without a final period gets one.
      expect(await admin.locator('#begin label:has([name=minutes])').textContent()).toMatch(/minutes/);
      expect(await admin.locator('#extend label:has([name=minutes])').textContent()).toMatch(/minutes/);
      await admin.fill('#begin [name=message]', 'Planned maintenance tonight');
      await admin.fill('#begin [name=minutes]', '20');
      // datetime-local is in the browser's zone: let the page write an hour from now in it.
      await admin.evaluate(() => {
        const d = new Date(Date.now() + 3_600_000);
        const p = (n: number) => String(n).padStart(2, '0');
        const local = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
        (document.querySelector('#begin [name=startsAt]') as HTMLInputElement).value = local;
      });
      await admin.click('#begin button[type=submit]');
      await eventually(async () => expect(await text(admin, '[data-figure=phase]')).toBe('scheduled'));
      expect(await text(admin, '[data-figure=mode]')).toBe('read-write');
      const endsBefore = Date.parse(demo.engine.window!.endsAt!);
      expect(endsBefore - Date.parse(demo.engine.window!.startsAt)).toBe(20 * 60_000);

      // The board announces it; writes stay on until it starts.
      const banner = board.locator('quiesce-banner [part=banner]');
      await eventually(async () => expect(await banner.getAttribute('data-kind')).toBe('scheduled'));
      expect(await banner.textContent()).toContain('index rebuild');
      expect(await board.locator('#notes li button[data-action=delete]').first().isDisabled()).toBe(false);

      await admin.fill('#extend [name=minutes]', '15');
      await admin.click('#extend button[type=submit]');
      await eventually(async () =>
        expect(Date.parse(demo.engine.window!.endsAt!) - endsBefore).toBe(15 * 60_000),
      );

      expect(demo.engine.window!.message).toBe('Planned maintenance tonight.');

      // End asks first: "Keep it" leaves the window alone, "Yes, end it" ends it.
      await admin.click('#end');
      await admin.locator('#end-confirm').waitFor();
      await admin.click('#end-no');
      expect(await admin.locator('#end-confirm').isHidden()).toBe(true);
      expect(demo.engine.window!.endedAt).toBeNull();
      await admin.click('#end');
      await admin.click('#end-yes');
      await eventually(async () => expect(await text(admin, '[data-figure=phase]')).toBe('closed'));
      expect(demo.engine.window!.endedAt).not.toBeNull();
      expect(await text(admin, '#audit')).toMatch(/schedule/);
    });
  },
);
