import { createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyWebhookSignature, webhookNotifier } from '../../src/notifiers/webhookNotifier.js';
import {
  context,
  event,
  type Received,
  type Receiver,
  startReceiver,
  testWindow,
  virtualTime,
} from './testSupport.js';

let receiver: Receiver;
let base: string;
let received: Received[];

beforeEach(async () => {
  receiver = await startReceiver();
  ({ base, received } = receiver);
});
afterEach(() => receiver.close());

const SECRET = 'whsec_0123456789abcdef';

/** Independent check of the documented scheme: hex HMAC-SHA256 over `${timestamp}.${body}`. */
function independentlyValid(r: Received): boolean {
  const ts = r.headers['x-quiesce-timestamp'] as string;
  const mac = createHmac('sha256', SECRET);
  mac.update(ts);
  mac.update('.');
  mac.update(r.body);
  return r.headers['x-quiesce-signature'] === `sha256=${mac.digest('hex')}`;
}

describe('webhookNotifier', () => {
  it('posts the event as JSON with ISO UTC times, signed over timestamp + body', async () => {
    const time = virtualTime();
    const hook = webhookNotifier({
      url: `${base}/hooks/quiesce`,
      secret: SECRET,
      clock: time.clock,
      sleep: time.sleep,
    });
    const w = testWindow({ openedBy: 'alice' });
    const data = await hook.notify(event('started', w, 'freezing', '2026-01-01T10:00:00.250Z'), context());
    expect(received).toHaveLength(1);
    const [r] = received;
    expect(r!.headers['content-type']).toBe('application/json');
    expect(r!.headers['x-quiesce-event']).toBe('started');
    expect(r!.headers['x-quiesce-timestamp']).toBe(String(Math.floor(time.now() / 1000)));
    expect(independentlyValid(r!)).toBe(true);
    const body = JSON.parse(r!.body);
    expect(body).toMatchObject({
      type: 'quiesce.window.started',
      kind: 'started',
      phase: 'freezing',
      at: '2026-01-01T10:00:00.250Z',
      deliveryId: r!.headers['x-quiesce-delivery'],
      title: 'Maintenance in progress: Postgres 17 upgrade',
      window: {
        id: 'win_test_1',
        startsAt: '2026-01-01T10:00:00.000Z',
        endsAt: '2026-01-01T11:30:00.000Z',
        contact: '#ops-oncall',
        rollbackPlan: 'Fail back to the old primary',
        openedBy: 'alice',
      },
    });
    expect(body.text).toContain('expected until 2026-01-01 11:30 UTC');
    expect(data).toMatchObject({ lastEvent: 'started', status: 200, attempts: 1 });
    // A tampered body or a stale timestamp does not verify with the exported helper either.
    const ts = r!.headers['x-quiesce-timestamp'] as string;
    const sig = r!.headers['x-quiesce-signature'] as string;
    const now = time.now();
    expect(
      verifyWebhookSignature({ secret: SECRET, body: r!.body, timestamp: ts, signature: sig, now }),
    ).toBe(true);
    expect(
      verifyWebhookSignature({ secret: SECRET, body: `${r!.body} `, timestamp: ts, signature: sig, now }),
    ).toBe(false);
    expect(
      verifyWebhookSignature({
        secret: SECRET,
        body: r!.body,
        timestamp: ts,
        signature: sig,
        now: now + 600_000,
      }),
    ).toBe(false);
  });

  it('retries 5xx with backoff, keeps the delivery id and signs each attempt afresh', async () => {
    receiver.script.push(500, 503);
    const time = virtualTime();
    const hook = webhookNotifier({
      url: `${base}/hooks`,
      secret: SECRET,
      clock: time.clock,
      sleep: time.sleep,
      random: () => 1,
      retry: { baseDelayMs: 2000 },
    });
    const data = await hook.notify(
      event('ended', testWindow({ endedAt: '2026-01-01T11:00:00Z' }), 'thawing'),
      context(),
    );
    expect(received).toHaveLength(3);
    expect(new Set(received.map((r) => r.headers['x-quiesce-delivery'])).size).toBe(1);
    expect(received.every(independentlyValid)).toBe(true);
    const stamps = received.map((r) => Number(r.headers['x-quiesce-timestamp']));
    expect(stamps[1]! - stamps[0]!).toBe(2);
    expect(stamps[2]! - stamps[1]!).toBe(4);
    expect(data).toMatchObject({ attempts: 3, status: 200 });
  });

  it('does not retry a 4xx refusal, and never leaks a Slack hook URL into the error', async () => {
    receiver.script.push(404);
    const hook = webhookNotifier({ url: `${base}/services/T000/B000/secretpath`, format: 'slack' });
    const attempt = hook.notify(event('scheduled', testWindow(), 'scheduled'), context());
    await expect(attempt).rejects.toThrow(
      /webhook: POST http:\/\/127\.0\.0\.1:\d+\/… was refused \(HTTP 404: nope\)/,
    );
    await expect(attempt).rejects.not.toThrow(/secretpath/);
    expect(received).toHaveLength(1);
  });

  it('formats a Slack incoming-webhook message with text and blocks, times in the reader zone', async () => {
    const hook = webhookNotifier({ url: `${base}/slack`, format: 'slack' });
    await hook.notify(
      event('scheduled', testWindow({ message: 'Orders <paused> & queued' }), 'scheduled'),
      context(),
    );
    const msg = JSON.parse(received[0]!.body);
    expect(msg.text).toContain('Scheduled maintenance: Postgres 17 upgrade');
    expect(msg.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: 'Scheduled maintenance: Postgres 17 upgrade', emoji: false },
    });
    expect(msg.blocks[1].text.text).toBe('Orders &lt;paused&gt; &amp; queued');
    const start = Date.parse('2026-01-01T10:00:00Z') / 1000;
    expect(msg.blocks[2].fields[0].text).toBe(
      `*Read-only from*\n<!date^${start}^{date_short_pretty} {time}|2026-01-01 10:00 UTC>`,
    );
    expect(JSON.stringify(msg.blocks)).toContain('Fail back to the old primary');
    expect(msg.blocks.at(-1).type).toBe('context');
  });

  it('adds the closing record (backfill report) to the closed event', async () => {
    const hook = webhookNotifier({ url: `${base}/x` });
    const w = testWindow({ endedAt: '2026-01-01T11:00:00Z', closedAt: '2026-01-01T11:01:00Z' });
    await hook.notify(
      event('closed', { ...w, report: { backfill: { replayed: 12, failed: 0 } } }, 'closed'),
      context(),
    );
    await hook.notify(
      event('started', { ...w, report: { backfill: { replayed: 1 } } }, 'freezing'),
      context(),
    );
    const [closed, started] = received.map((r) => JSON.parse(r.body));
    expect(closed.report).toEqual({ backfill: { replayed: 12, failed: 0 } });
    expect(closed.text).toContain('Closed at 2026-01-01 11:01 UTC');
    expect(started).not.toHaveProperty('report');
  });

  it('sends only the chosen events and validates its options', async () => {
    const hook = webhookNotifier({ url: `${base}/x`, events: ['started', 'ended'] });
    await hook.notify(event('scheduled', testWindow(), 'scheduled'), context());
    expect(received).toHaveLength(0);
    expect(() => webhookNotifier({ url: 'ftp://example.com/x' })).toThrow(
      /url: must be an absolute http\(s\) URL/,
    );
    expect(() => webhookNotifier({ url: `${base}/x`, secret: 'short' })).toThrow(
      /secret: must be at least 16/,
    );
    expect(() => webhookNotifier({ url: `${base}/x`, format: 'teams' } as never)).toThrow(/format/);
  });
});
