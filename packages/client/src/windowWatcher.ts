/**
 * Waiting for a window's end on the server's event stream (`GET <base>/events` of the quiesce
 * router) instead of sleeping the whole `Retry-After`: one stream per watcher, shared by every
 * request waiting on it, opened on the first wait and closed when nobody waits.
 */
import { sleep } from './sleep.js';

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

export class WindowWatcher {
  readonly #url: string | URL;
  readonly #fetch: Fetch;
  readonly #waiters = new Set<() => void>();
  #stream: AbortController | undefined;

  constructor(url: string | URL, fetchFn: Fetch) {
    this.#url = url;
    this.#fetch = fetchFn;
  }

  /**
   * Resolves when the stream says writes are back (`mode: read-write`, then `true`), or after
   * `maxMs` (`false`), whichever comes first; rejects with the signal's reason when it aborts. A
   * stream that cannot be opened or breaks leaves the timer to do the waiting.
   */
  async wait(maxMs: number, signal?: AbortSignal | null): Promise<boolean> {
    if (signal?.aborted) throw signal.reason;
    let woke = false;
    let wake!: () => void;
    const woken = new Promise<void>((r) => {
      wake = () => {
        woke = true;
        r();
      };
    });
    const timeout = new AbortController();
    this.#waiters.add(wake);
    this.#open();
    try {
      await Promise.race([
        woken,
        sleep(maxMs, anySignal(signal, timeout.signal)).catch(rethrowUnless(timeout)),
      ]);
    } finally {
      timeout.abort();
      this.#waiters.delete(wake);
      if (this.#waiters.size === 0) this.#close();
    }
    if (signal?.aborted) throw signal.reason;
    return woke;
  }

  #open(): void {
    if (this.#stream) return;
    const stream = new AbortController();
    this.#stream = stream;
    void this.#read(stream).catch(() => {
      // Broken or refused: the waiters' timers still run.
    });
  }

  #close(): void {
    this.#stream?.abort();
    this.#stream = undefined;
  }

  async #read(stream: AbortController): Promise<void> {
    const res = await this.#fetch(this.#url, {
      headers: { accept: 'text/event-stream' },
      signal: stream.signal,
      cache: 'no-store',
    });
    if (!res.ok || !res.body) {
      res.body?.cancel().catch(() => {});
      return;
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      // Lines end in CRLF, LF or CR; a CR at a chunk's end may be the first half of a CRLF.
      buffer += value;
      const held = buffer.endsWith('\r') ? '\r' : '';
      buffer = buffer.slice(0, buffer.length - held.length).replace(/\r\n?/g, '\n');
      let cut = buffer.indexOf('\n\n');
      while (cut !== -1) {
        this.#event(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        cut = buffer.indexOf('\n\n');
      }
      buffer += held;
    }
  }

  #event(block: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (event !== 'state' || data.length === 0) return;
    let state: { mode?: unknown };
    try {
      state = JSON.parse(data.join('\n'));
    } catch {
      return;
    }
    if (state?.mode !== 'read-write') return;
    for (const wake of [...this.#waiters]) wake();
  }
}

function anySignal(...signals: (AbortSignal | null | undefined)[]): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s != null));
}

/** The timer's own abort (the stream won) is not an error; the caller's is. */
function rethrowUnless(timeout: AbortController) {
  return (error: unknown) => {
    if (!timeout.signal.aborted || error !== timeout.signal.reason) throw error;
  };
}

/** A watcher for the `events` option, checked; `undefined` when the option is not set. */
export function watcherFor(events: unknown, fetchFn: Fetch): WindowWatcher | undefined {
  if (events === undefined) return undefined;
  if (typeof events !== 'string' && !(events instanceof URL)) {
    throw new TypeError('@quiesce/client: events must be the URL of the quiesce event stream');
  }
  return new WindowWatcher(events, fetchFn);
}

/**
 * Wait before a retry: the policy's `delayMs`, cut short when a watcher sees the window end (then
 * up to `jitterMs` more, within `delayMs`, so clients woken together do not return together).
 */
export async function pause(
  delayMs: number,
  options: {
    watcher: WindowWatcher | undefined;
    refused: boolean;
    jitterMs: number;
    signal?: AbortSignal | null;
  },
): Promise<void> {
  const { watcher, signal } = options;
  if (!watcher || !options.refused) return sleep(delayMs, signal);
  const start = Date.now();
  if (await watcher.wait(delayMs, signal)) {
    const left = Math.max(0, delayMs - (Date.now() - start));
    await sleep(Math.min(Math.random() * options.jitterMs, left), signal);
  }
}
