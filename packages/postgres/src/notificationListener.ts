import { QuiesceError, reconnectDelay } from '@quiesce/core';
import pg from 'pg';
import { quoteIdent } from './schema.js';

export interface ReconnectOptions {
  /** First delay before reconnecting the LISTEN connection. @default 50 */
  initialDelayMs?: number;
  /** Cap of the exponential backoff. @default 5000 */
  maxDelayMs?: number;
  /**
   * How often the idle LISTEN connection is checked (`SELECT 1`); a check unanswered within this
   * time reconnects it. A half-open connection (a partition, no FIN, no RST) would otherwise stay
   * silent for hours. 0 disables. @default 10000
   */
  pingMs?: number;
}

export interface ListenerEvents {
  notification(payload: string): void;
  /**
   * The channel is (again) listened to: anything sent while it was not may be missed. `reconnected`
   * is true after a lost connection came back.
   */
  listening(reconnected: boolean): void;
  /** The connection was lost: nothing is received until `listening` is called again. */
  lost(error: Error): void;
}

/**
 * One connection that LISTENs on any number of channels, for any number of subscribers, and comes
 * back by itself: a terminated backend (`pg_terminate_backend`), a restarted server or a dropped
 * socket start a reconnection with exponential backoff and jitter; every (re)connection is announced
 * so each subscriber can re-read what it may have missed. The connection is open only while some
 * channel has a subscriber; a channel is LISTENed only while it has one.
 */
export class NotificationListener {
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private running = false;
  private connectedOnce = false;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly pingMs: number;
  private pinger: NodeJS.Timeout | null = null;
  private readonly channels = new Map<string, Set<ListenerEvents>>();
  /** Channels LISTENed on the current connection. */
  private readonly listened = new Set<string>();
  /** Notifications received (every channel), for the fleet benchmark. */
  received = 0;

  constructor(
    private readonly config: pg.ClientConfig,
    reconnect: ReconnectOptions = {},
  ) {
    this.initialDelayMs = reconnect.initialDelayMs ?? 50;
    this.maxDelayMs = reconnect.maxDelayMs ?? 5000;
    this.pingMs = reconnect.pingMs ?? 10_000;
  }

  get connected(): boolean {
    return this.client !== null;
  }

  /** Subscribe to a channel; the returned function unsubscribes. */
  listen(channel: string, events: ListenerEvents): () => Promise<void> {
    let set = this.channels.get(channel);
    const first = !set;
    if (!set) {
      set = new Set();
      this.channels.set(channel, set);
    }
    set.add(events);
    if (!this.running) {
      this.running = true;
      void this.connect();
    } else if (this.client && first) {
      void this.listenOn(this.client, channel);
    } else if (this.client && this.listened.has(channel)) {
      events.listening(false);
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      const s = this.channels.get(channel);
      s?.delete(events);
      if (s && s.size === 0) {
        this.channels.delete(channel);
        const client = this.client;
        if (client && this.listened.delete(channel) && this.channels.size > 0)
          await client.query(`UNLISTEN ${quoteIdent(channel)}`).catch(() => {});
      }
      if (this.channels.size === 0) await this.stop();
    };
  }

  private async listenOn(client: pg.Client, channel: string): Promise<void> {
    try {
      await client.query(`LISTEN ${quoteIdent(channel)}`);
    } catch {
      return; // the connection failed: fail() reconnects and LISTENs again
    }
    if (this.client !== client || !this.channels.has(channel)) return;
    this.listened.add(channel);
    for (const e of this.channels.get(channel) ?? []) e.listening(false);
  }

  private async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stopPinging();
    const client = this.client;
    this.client = null;
    this.listened.clear();
    this.connectedOnce = false;
    this.attempt = 0;
    if (client) await client.end().catch(() => {});
  }

  private broadcastLoss(error: Error): void {
    for (const set of this.channels.values()) for (const e of set) e.lost(error);
  }

  private async connect(): Promise<void> {
    if (!this.running) return;
    const client = new pg.Client({
      ...this.config,
      keepAlive: true,
      ...(this.pingMs > 0 ? { query_timeout: this.pingMs } : {}),
    });
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      if (this.client === client) {
        this.client = null;
        this.listened.clear();
        this.stopPinging();
      }
      client.removeAllListeners('notification');
      client.end().catch(() => {});
      // end() waits for the server's goodbye, which a half-open connection never sends.
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      if (!this.running) return;
      this.broadcastLoss(
        new QuiesceError('STORE_UNAVAILABLE', `postgres LISTEN connection lost: ${err.message}`, {
          cause: err,
        }),
      );
      this.schedule();
    };
    client.on('error', fail);
    client.on('end', () => fail(new Error('connection ended')));
    client.on('notification', (msg) => {
      if (msg.payload === undefined) return;
      this.received++;
      for (const e of this.channels.get(msg.channel) ?? []) e.notification(msg.payload);
    });
    const channels = [...this.channels.keys()];
    try {
      await client.connect();
      for (const channel of channels) await client.query(`LISTEN ${quoteIdent(channel)}`);
    } catch (err) {
      fail(err as Error);
      return;
    }
    if (!this.running || failed) {
      if (!failed) await client.end().catch(() => {});
      return;
    }
    this.client = client;
    for (const c of channels) this.listened.add(c);
    this.attempt = 0;
    this.startPinging(client, fail);
    const reconnected = this.connectedOnce;
    this.connectedOnce = true;
    // Channels subscribed while connecting.
    for (const c of this.channels.keys()) if (!this.listened.has(c)) void this.listenOn(client, c);
    for (const c of channels) for (const e of this.channels.get(c) ?? []) e.listening(reconnected);
  }

  private startPinging(client: pg.Client, fail: (err: Error) => void): void {
    if (this.pingMs <= 0) return;
    let busy = false;
    this.pinger = setInterval(() => {
      if (busy) return;
      busy = true;
      client.query('SELECT 1').then(
        () => {
          busy = false;
        },
        (err: Error) => fail(new Error(`no answer to a check within ${this.pingMs} ms (${err.message})`)),
      );
    }, this.pingMs);
    this.pinger.unref();
  }

  private stopPinging(): void {
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = null;
  }

  private schedule(): void {
    if (this.timer || !this.running) return;
    const delay = reconnectDelay(this.attempt++, this.initialDelayMs, this.maxDelayMs);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
    this.timer.unref();
  }
}

const shared = new Map<string, NotificationListener>();

function sharingKey(config: pg.ClientConfig, reconnect: ReconnectOptions): string {
  const plain: Record<string, unknown> = {};
  for (const k of Object.keys(config).sort()) {
    const v = (config as Record<string, unknown>)[k];
    if (typeof v !== 'function' && typeof v !== 'object') plain[k] = v;
  }
  return JSON.stringify([plain, reconnect.initialDelayMs, reconnect.maxDelayMs, reconnect.pingMs]);
}

/**
 * The LISTEN connection for these settings, shared by every store of this process that connects the
 * same way (one connection for many engines, however many schemas or keys they use).
 */
export function sharedListener(
  config: pg.ClientConfig,
  reconnect: ReconnectOptions = {},
): NotificationListener {
  const key = sharingKey(config, reconnect);
  let l = shared.get(key);
  if (!l) {
    // Kept for the process's life (one small object per distinct setting): it closes its connection
    // whenever nobody listens, and opens it again for the next store.
    l = new NotificationListener(config, reconnect);
    shared.set(key, l);
  }
  return l;
}
