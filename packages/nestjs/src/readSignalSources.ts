import { attachReadSignals, readSignalsOf } from '@quiesce/core';
import type { PlatformRequest } from './platform.js';

const kSources = Symbol('quiesce.nest.readSignalSources');

interface Closing {
  on(event: 'close', listener: () => void): unknown;
  [kSources]?: readonly object[];
}

// One shared listener (no closure per read); `this` is the raw response, which emits `close` once.
function carry(this: Closing): void {
  const sources = this[kSources];
  if (sources === undefined) return;
  this[kSources] = undefined;
  for (const source of sources) {
    const signals = readSignalsOf(source);
    if (signals !== undefined) attachReadSignals(this, signals);
  }
}

/**
 * A Nest handler holds the platform's request and response (Fastify: the reply, not the raw
 * response core times): signals attached with `attachReadSignals(req | res, …)` are moved onto the
 * raw response when it closes, before core's listener (registered after this one) reports the read.
 */
export function forwardReadSignals(raw: Closing, req: PlatformRequest, res: object): void {
  if (raw[kSources] !== undefined) return; // a second guard on the same request
  raw[kSources] = res === raw ? [req] : [req, res];
  raw.on('close', carry);
}
