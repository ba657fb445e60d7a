import { QuiesceError } from '@quiesce/core';
import pg from 'pg';
import { backoff } from './connection.js';
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
  /** The LISTEN connection is (again) in place: anything sent while it was down may be missed. */
  listening(reconnected: boolean): void;
  error(error: Error): void;
}

/**
 * One dedicated connection that LISTENs on a channel and comes back by itself: a terminated backend
 * (`pg_terminate_backend`), a restarted server or a dropped socket start a reconnection with
 * exponential backoff and jitter; every successful (re)connection is announced so the owner can
 * re-read what it may have missed.
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

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly events: ListenerEvents,
    reconnect: ReconnectOptions = {},
  ) {
    this.initialDelayMs = reconnect.initialDelayMs ?? 50;
    this.maxDelayMs = reconnect.maxDelayMs ?? 5000;
    this.pingMs = reconnect.pingMs ?? 10_000;
  }

  get connected(): boolean {
    return this.client !== null;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.connect();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stopPinging();
    const client = this.client;
    this.client = null;
    if (client) await client.end().catch(() => {});
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
        this.stopPinging();
      }
      client.removeAllListeners('notification');
      client.end().catch(() => {});
      // end() waits for the server's goodbye, which a half-open connection never sends.
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      if (!this.running) return;
      this.events.error(
        new QuiesceError('STORE_UNAVAILABLE', `postgres LISTEN connection lost: ${err.message}`, {
          cause: err,
        }),
      );
      this.schedule();
    };
    client.on('error', fail);
    client.on('end', () => fail(new Error('connection ended')));
    client.on('notification', (msg) => {
      if (msg.channel === this.channel && msg.payload !== undefined) this.events.notification(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.channel)}`);
    } catch (err) {
      fail(err as Error);
      return;
    }
    if (!this.running || failed) {
      if (!failed) await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.attempt = 0;
    this.startPinging(client, fail);
    const reconnected = this.connectedOnce;
    this.connectedOnce = true;
    this.events.listening(reconnected);
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
    const delay = backoff(this.attempt++, this.initialDelayMs, this.maxDelayMs);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
    this.timer.unref();
  }
}
