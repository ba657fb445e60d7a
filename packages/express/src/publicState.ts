import { createHash } from 'node:crypto';
import type { Mode, Phase, QuiesceEngine, QuiesceState } from '@quiesce/core';

/** The public banner state: what `GET <base>/state` and every `state` event of `<base>/events` carry. */
export interface PublicState {
  /** What this instance does now: `read-only` while writes are refused. */
  mode: Mode;
  phase: Phase | null;
  version: number;
  windowId: string | null;
  message: string | null;
  reason: string | null;
  startsAt: string | null;
  endsAt: string | null;
  endedAt: string | null;
  contact: string | null;
  /** The server's clock, so a client can correct its own when counting down. */
  serverTime: string;
}

export interface PublicStateSnapshot {
  /** JSON of everything but `serverTime`: equal snapshots mean nothing a client shows changed. */
  key: string;
  etag: string;
  view: Omit<PublicState, 'serverTime'>;
}

/** Snapshots cached per applied state, so polling `/state` costs one object and one stringify. */
export class PublicStateView {
  #state: QuiesceState | null = null;
  #readOnly = false;
  #snapshot: PublicStateSnapshot | null = null;

  constructor(private readonly engine: QuiesceEngine) {}

  snapshot(): PublicStateSnapshot {
    const state = this.engine.state;
    const readOnly = this.engine.readOnly;
    if (this.#snapshot && state === this.#state && readOnly === this.#readOnly) return this.#snapshot;
    const w = state.window;
    const view: PublicStateSnapshot['view'] = {
      mode: readOnly ? 'read-only' : 'read-write',
      phase: w?.phase ?? null,
      version: state.version,
      windowId: w?.id ?? null,
      message: w?.message ?? null,
      reason: w?.reason ?? null,
      startsAt: w?.startsAt ?? null,
      endsAt: w?.endsAt ?? null,
      endedAt: w?.endedAt ?? null,
      contact: w?.contact ?? null,
    };
    const key = JSON.stringify(view);
    // The version alone is not enough: a store fallback changes the mode without a new version.
    const etag = `"${createHash('sha1').update(key).digest('base64url').slice(0, 22)}"`;
    this.#state = state;
    this.#readOnly = readOnly;
    this.#snapshot = { key, etag, view };
    return this.#snapshot;
  }

  /** The JSON body, `serverTime` included. */
  body(snapshot = this.snapshot()): string {
    return `${snapshot.key.slice(0, -1)},"serverTime":${JSON.stringify(new Date().toISOString())}}`;
  }
}

/** RFC 9110 weak comparison of an `If-None-Match` header against one entity tag. */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  const opaque = etag.replace(/^W\//, '');
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === opaque);
}
