import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachePurgeNotifier } from '../../src/notifiers/cachePurgeNotifier.js';
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

describe('cachePurgeNotifier', () => {
  it('fires every purge call at start and end, not at the announcement', async () => {
    const purge = cachePurgeNotifier({
      requests: [
        { url: `${base}/purge/banner`, method: 'PURGE' },
        {
          url: `${base}/zones/z1/purge_cache`,
          headers: { Authorization: 'Bearer t' },
          body: '{"purge_everything":true}',
        },
      ],
    });
    const w = testWindow();
    await purge.notify(event('scheduled', w, 'scheduled'), context());
    expect(received).toHaveLength(0);
    const data = await purge.notify(event('started', w, 'freezing', '2026-01-01T10:00:00.000Z'), context());
    expect(received.map((r) => `${r.method} ${r.url}`).sort()).toEqual([
      'POST /zones/z1/purge_cache',
      'PURGE /purge/banner',
    ]);
    const cf = received.find((r) => r.method === 'POST')!;
    expect(cf.headers.authorization).toBe('Bearer t');
    expect(cf.body).toBe('{"purge_everything":true}');
    expect(data).toEqual({ lastEvent: 'started', purgedAt: '2026-01-01T10:00:00.000Z', calls: 2 });
    await purge.notify(event('ended', w, 'thawing'), context());
    expect(received).toHaveLength(4);
  });

  it('retries a failing purge, still runs the others, and names the one that gave up', async () => {
    const time = virtualTime();
    const purge = cachePurgeNotifier({
      requests: [{ url: `${base}/broken?token=s3cret` }, { url: `${base}/fine` }],
      retry: { attempts: 3 },
      clock: time.clock,
      sleep: time.sleep,
    });
    const attempt = purge.notify(event('started', testWindow(), 'freezing'), context());
    await expect(attempt).rejects.toThrow(
      /cache-purge: 1 of 2 purge calls failed: cache-purge: POST http:\/\/127\.0\.0\.1:\d+\/broken failed after 3 attempts/,
    );
    await expect(attempt).rejects.not.toThrow(/s3cret/);
    expect(received.filter((r) => r.url.startsWith('/broken'))).toHaveLength(3);
    expect(received.filter((r) => r.url === '/fine')).toHaveLength(1);
  });

  it('rejects an empty list with the field named', () => {
    expect(() => cachePurgeNotifier({ requests: [] })).toThrow(/requests: needs at least one purge request/);
    expect(() => cachePurgeNotifier({ requests: [{ url: '/relative' }] })).toThrow(/requests\.0\.url/);
  });
});
