import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readQueued, readRefusal } from '../src/quiesceAnswer.js';
import { WindowWatcher } from '../src/windowWatcher.js';

const RUNS = Number(process.env.QUIESCE_PROPERTY_RUNS ?? 500);

describe('reading answers', () => {
  it('never throws on any JSON, and finds a refusal only where the code says so', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (body) => {
        const refusal = readRefusal(body);
        const queued = readQueued(body);
        if (refusal) expect(JSON.stringify(body)).toContain('READ_ONLY_MODE');
        if (queued) expect(JSON.stringify(body)).toContain('WRITE_QUEUED');
      }),
      { numRuns: RUNS },
    );
  });

  it('reads any refusal quiesce renders, whatever the other members', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.option(fc.date({ noInvalidDate: true }).map((d) => d.toISOString())),
        fc.nat(),
        fc.dictionary(fc.string(), fc.jsonValue()),
        (detail, endsAt, retryAfter, extra) => {
          const problem = { ...extra, detail, code: 'READ_ONLY_MODE', windowId: 'w', endsAt, retryAfter };
          expect(readRefusal(problem)).toEqual({
            code: 'READ_ONLY_MODE',
            message: detail,
            windowId: 'w',
            endsAt,
            retryAfter,
          });
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('WindowWatcher', () => {
  const stream = (chunks: string[]) =>
    (async () =>
      new Response(
        new ReadableStream({
          start(c) {
            for (const chunk of chunks) c.enqueue(new TextEncoder().encode(chunk));
            // Left open, as a live stream is: only the waiter's wake or its timer ends the wait.
          },
        }),
        { headers: { 'content-type': 'text/event-stream' } },
      )) as unknown as typeof fetch;

  const events = [
    'retry: 3000\n\n',
    'event: state\nid: 3\ndata: {"mode":"read-only","phase":"frozen"}\n\n',
    ': ping\n\n',
    'event: state\r\nid: 4\r\ndata: {"mode":"read-write","phase":"thawing"}\r\n\r\n',
  ].join('');

  it('wakes on the read-write state however the stream is cut into chunks', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 1, max: events.length - 1 }), { maxLength: 12 }),
        async (cuts) => {
          const at = [0, ...cuts.sort((a, b) => a - b), events.length];
          const chunks = at.slice(1).map((end, i) => events.slice(at[i], end));
          // The timer is an hour: the test finishes only if the stream wakes the waiter.
          expect(await new WindowWatcher('http://x/quiesce/events', stream(chunks)).wait(3_600_000)).toBe(
            true,
          );
        },
      ),
      { numRuns: Math.min(RUNS, 200) },
    );
  });

  it('does not wake on a read-only state; the timer ends the wait', async () => {
    const w = new WindowWatcher(
      'http://x/quiesce/events',
      stream(['event: state\ndata: {"mode":"read-only"}\n\n']),
    );
    expect(await w.wait(20)).toBe(false);
  });

  it('rejects with the signal reason when aborted', async () => {
    const abort = new AbortController();
    const waiting = new WindowWatcher('http://x/e', stream([])).wait(3_600_000, abort.signal);
    abort.abort(new Error('left the page'));
    await expect(waiting).rejects.toThrow('left the page');
  });
});
