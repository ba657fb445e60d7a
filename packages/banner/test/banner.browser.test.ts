import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createMemoryStore, createQuiesce, type QuiesceEngine } from '@quiesce/core';
import { browserAvailable, CHROMIUM_PATH } from '@quiesce/testkit';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStateServer } from './stateServer.js';

const root = new URL('..', import.meta.url);
const bundle = new URL('dist/quiesce-banner.global.js', root);

/** Build the browser bundle when it is missing or older than the source, so the test never runs a stale one. */
function ensureBundle() {
  const src = new URL('src/', root);
  const newest = Math.max(...readdirSync(src).map((f) => statSync(new URL(f, src)).mtimeMs));
  if (existsSync(bundle) && statSync(bundle).mtimeMs >= newest) return;
  // tsup directly (not `pnpm run build`): no package-manager round trip in a test.
  const tsup = createRequire(import.meta.url)
    .resolve('tsup/package.json')
    .replace(/package\.json$/, 'dist/cli-default.js');
  execFileSync(process.execPath, [tsup], { cwd: root, stdio: 'pipe' });
}

const PAGE = `<!doctype html><html lang="de"><head><meta charset="utf-8"><title>shop</title></head><body>
<quiesce-banner src="/quiesce" disable-writes linger="1"></quiesce-banner>
<main><form><input id="qty" data-quiesce-write value="1"><button id="save" data-quiesce-write>Speichern</button>
<button id="search">Suchen</button><a id="edit" href="#" data-quiesce-write>Bearbeiten</a></form></main>
<script src="/quiesce-banner.global.js"></script></body></html>`;

// Chromium from QUIESCE_TEST_CHROMIUM (default /usr/bin/chromium); mandatory under QUIESCE_REQUIRE_SERVICES=1.
const available = browserAvailable('banner browser test');

describe.skipIf(!available)('<quiesce-banner> in headless Chromium', () => {
  let browser: Browser;
  let page: Page;
  const store = createMemoryStore();
  let engine: QuiesceEngine;
  let server: Awaited<ReturnType<typeof startStateServer>>;

  /** The banner's shadow content as the page sees it. */
  const banner = () =>
    page.evaluate(() => {
      const el = document.querySelector<HTMLElement>('quiesce-banner')!;
      const box = el.shadowRoot?.querySelector<HTMLElement>('[part=banner]');
      return {
        hidden: el.hidden,
        kind: box?.dataset.kind ?? null,
        role: box?.getAttribute('role') ?? null,
        live: box?.getAttribute('aria-live') ?? null,
        text: box?.textContent ?? '',
        times: [...(box?.querySelectorAll('time') ?? [])].map((t) => ({
          iso: t.dateTime,
          text: t.textContent,
        })),
      };
    });
  /** What a reader in de-DE on New York time should see for a time (mirrors the documented format). */
  const readerTime = (iso: string) => {
    const at = new Date(iso);
    const zone = 'America/New_York';
    const local = new Intl.DateTimeFormat('de-DE', {
      weekday: 'short',
      day: 'numeric',
      month: 'short',
      hour: 'numeric',
      minute: '2-digit',
      timeZoneName: 'short',
      timeZone: zone,
    }).format(at);
    const day = (tz: string) =>
      new Intl.DateTimeFormat('en', { dateStyle: 'short', timeZone: tz }).format(at);
    const utc = new Intl.DateTimeFormat('de-DE', {
      hour: 'numeric',
      minute: '2-digit',
      timeZone: 'UTC',
      ...(day(zone) === day('UTC') ? {} : { day: 'numeric', month: 'short' }),
    }).format(at);
    return `${local} (${utc} UTC)`;
  };
  const waitForKind = (kind: string | null, timeout: number) =>
    page.waitForFunction(
      (k) => {
        const el = document.querySelector<HTMLElement>('quiesce-banner');
        const box = el?.shadowRoot?.querySelector<HTMLElement>('[part=banner]');
        return k === null ? el?.hidden === true : !el?.hidden && box?.dataset.kind === k;
      },
      kind,
      { timeout, polling: 20 },
    );

  beforeAll(async () => {
    ensureBundle();
    engine = createQuiesce({ store, soakMs: 200, heartbeatMs: 100 });
    await engine.start();
    server = await startStateServer(engine, { page: PAGE });
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
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
    // A reader in Germany on New York time: times must follow the reader, not the server (UTC).
    const context = await browser.newContext({ locale: 'de-DE', timezoneId: 'America/New_York' });
    page = await context.newPage();
    await page.goto(server.url);
    await page.waitForFunction(() => customElements.get('quiesce-banner') !== undefined);
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await engine?.close();
  });

  it('stays hidden outside a window', async () => {
    await page.waitForTimeout(200);
    expect(await banner()).toMatchObject({ hidden: true });
    expect(await page.isDisabled('#save')).toBe(false);
  });

  it('announces a scheduled window with times in the reader locale and zone', async () => {
    // Three days ahead at 15:30 UTC (far-ahead dates hit a core timer bug, see core-requests.md).
    const day = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
    const startsAt = `${day}T15:30:00.000Z`;
    const endsAt = `${day}T17:00:00.000Z`;
    await engine.schedule({
      reason: 'Datenbank-Upgrade',
      message: 'Bestellungen pausieren.',
      startsAt,
      endsAt,
    });
    await waitForKind('scheduled', 2000);
    const b = await banner();
    expect(b).toMatchObject({ role: 'status', live: 'polite' });
    expect(b.text).toContain('Scheduled maintenance: Datenbank-Upgrade');
    expect(b.times).toEqual([
      { iso: startsAt, text: readerTime(startsAt) },
      { iso: endsAt, text: readerTime(endsAt) },
    ]);
    // Date, reader zone, and UTC: "Mi., 2. Dez., 10:30 GMT-5 (15:30 UTC)"; and how soon, in German.
    expect(b.times[0]!.text).toMatch(/\(15:30 UTC\)$/);
    // 2–4 days: 15:30 UTC three days ahead is 2.x to 3.x days away depending on the time of day now.
    expect(b.text).toMatch(/\(in [234] Tagen\)/);
    // 15:30 UTC is 10:30 or 11:30 in New York, never 15:30.
    expect(b.times[0]!.text).toMatch(/1[01]:30/);
    expect(await page.isDisabled('#save')).toBe(false);
    await engine.end();
    await waitForKind(null, 5000);
  });

  // How soon it appears is printed, not asserted (speed belongs in benchmarks; this must hold on a busy machine).
  it('appears after begin without a reload, shows the end, locks writes, and goes at end', {
    timeout: 20_000,
  }, async () => {
    const endsAt = new Date(Date.now() + 45 * 60_000).toISOString();
    const began = Date.now();
    await engine.begin({
      reason: 'Migration',
      message: 'Speichern ist kurz pausiert', // no final period: the banner adds one
      endsAt,
      contact: 'ops@example.com',
    });
    await waitForKind('active', 5000);
    console.info(`[banner] active banner shown ${Date.now() - began} ms after begin()`);
    const b = await banner();
    expect(b).toMatchObject({ role: 'alert', live: 'assertive' });
    expect(b.text).toContain('Read-only mode');
    expect(b.text).toContain('Speichern ist kurz pausiert. Read-only since ');
    expect(b.text).toContain('Contact: ops@example.com');
    // Start and end, each with date, reader zone and UTC; the end from the window, with how soon.
    const startsAt = engine.window!.startsAt;
    expect(b.times).toEqual([
      { iso: startsAt, text: readerTime(startsAt) },
      { iso: endsAt, text: readerTime(endsAt) },
    ]);
    expect(b.text).toMatch(/Expected back by .* \(in 4[45] Minuten\)\./);
    expect(await page.isDisabled('#save')).toBe(true);
    expect(await page.isDisabled('#qty')).toBe(true);
    expect(await page.isDisabled('#search')).toBe(false);
    expect(await page.getAttribute('#edit', 'aria-disabled')).toBe('true');

    // Elements rendered during the window are locked as well.
    await page.evaluate(() => {
      const b = document.createElement('button');
      b.id = 'late';
      b.dataset.quiesceWrite = '';
      document.querySelector('form')!.append(b);
    });
    await page.waitForFunction(() => (document.getElementById('late') as HTMLButtonElement).disabled);

    await engine.end();
    await waitForKind('ended', 3000);
    expect((await banner()).text).toContain('Maintenance complete');
    expect(await page.isDisabled('#save')).toBe(false);
    expect(await page.getAttribute('#edit', 'aria-disabled')).toBe(null);
    // "Just ended" lingers one second (linger="1") after the window closes, then the banner goes.
    await engine.waitForPhase('closed', { timeoutMs: 5000 });
    await waitForKind(null, 5000);
  });

  it('meets WCAG AA contrast (4.5:1) in every state', async () => {
    const ratios = await page.evaluate(() => {
      const lum = (rgb: string) => {
        const [r, g, b] = rgb
          .match(/\d+(\.\d+)?/g)!
          .slice(0, 3)
          .map(Number)
          .map((v) => {
            const c = v / 255;
            return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
          });
        return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
      };
      const box = document
        .querySelector('quiesce-banner')!
        .shadowRoot!.querySelector<HTMLElement>('[part=banner]')!;
      const out: Record<string, number> = {};
      for (const kind of ['scheduled', 'active', 'ended']) {
        box.dataset.kind = kind;
        const s = getComputedStyle(box);
        const [a, b] = [lum(s.color), lum(s.backgroundColor)].sort((x, y) => y - x);
        out[kind] = (a! + 0.05) / (b! + 0.05);
      }
      delete box.dataset.kind;
      return out;
    });
    for (const ratio of Object.values(ratios)) expect(ratio).toBeGreaterThanOrEqual(4.5);
  });

  it('falls back to polling /state when the event stream is blocked', async () => {
    const polling = await page.context().newPage();
    let blocked = 0;
    await polling.route('**/quiesce/events', (route) => {
      blocked++;
      return route.abort();
    });
    await polling.goto(server.url);
    await polling.evaluate(() => document.querySelector('quiesce-banner')!.setAttribute('poll', '1'));
    await polling.waitForTimeout(300);
    await engine.begin({ reason: 'Proxy', message: 'Behind a buffering proxy.' });
    await polling.waitForFunction(
      () =>
        document.querySelector('quiesce-banner')!.shadowRoot!.querySelector<HTMLElement>('[part=banner]')!
          .dataset.kind === 'active',
      undefined,
      { timeout: 2500, polling: 50 },
    );
    expect(blocked).toBeGreaterThan(0);
    await engine.end();
    await engine.waitForPhase('closed', { timeoutMs: 5000 });
    await polling.close();
    await waitForKind(null, 5000);
  });

  it('reconnects after the server restarts and shows what changed meanwhile', async () => {
    const port = server.port;
    await server.close();
    // While the server is down a new instance of the app begins a window on the shared store.
    await engine.close();
    engine = createQuiesce({ store, soakMs: 200, heartbeatMs: 100 });
    await engine.begin({ reason: 'Failover', message: 'Nur Lesen während des Failovers.' });
    await page.waitForTimeout(700);
    expect((await banner()).hidden).toBe(true);
    server = await startStateServer(engine, { port, page: PAGE });
    await waitForKind('active', 10_000);
    expect((await banner()).text).toContain('Nur Lesen während des Failovers.');
    // And the stream is live again: the end arrives without a reload.
    await engine.end();
    await waitForKind('ended', 5000);
  }, 20_000);
});
