import { QuiesceError } from '@quiesce/core';
import pg from 'pg';
import { backoff } from './connection.js';
import { quoteIdent } from './schema.js';

export interface ReconnectOptions {
  /** First delay before reconnecting the LISTEN connection. @default 50 */
  initialDelayMs?: number;
  /** Cap of the exponential backoff. @default 5000 */
  maxDelayMs?: number;
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

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly events: ListenerEvents,
    reconnect: ReconnectOptions = {},
  ) {
    this.initialDelayMs = reconnect.initialDelayMs ?? 50;
    this.maxDelayMs = reconnect.maxDelayMs ?? 5000;
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
    const client = this.client;
    this.client = null;
    if (client) await client.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    if (!this.running) return;
    const client = new pg.Client({ ...this.config, keepAlive: true });
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      if (this.client === client) this.client = null;
      client.removeAllListeners('notification');
      client.end().catch(() => {});
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
    const reconnected = this.connectedOnce;
    this.connectedOnce = true;
    this.events.listening(reconnected);
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
