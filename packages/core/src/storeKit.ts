import { QuiesceError } from './errors.js';
import { type InstanceRecord, parseInstanceRecord } from './store.js';
import { INITIAL_STATE, parseState, type QuiesceState } from './window.js';

export interface StoreKitOptions {
  /** How the store names itself at the start of its errors (`postgres store`, `redis store`). */
  name: string;
  /** Where the state lives, for errors (`quiesce.state, key default`, `key quiesce:state`). */
  location?: string;
  /**
   * Read the stored state (the store's own `read()`): the kit calls it to catch up after a feed
   * was down (`refresh()`) or when a change notice does not carry the state.
   */
  read?(): Promise<QuiesceState>;
  /**
   * Called whenever state or registry subscribers come or go (never after `close()`): open, adjust
   * or close the feed so that it carries what `wants` asks for, and say when each part is in place
   * (`feedUp`) or lost (`feedDown`). Without `follow` the store has no feed of its own (memory):
   * a subscription is in place as soon as it is made.
   */
  follow?(wants: StoreKitWants): void;
}

/** One of the two things a store's feed carries: state changes, or announced registry changes. */
export type StoreFeed = keyof StoreKitWants;

/** Which feeds a store needs now: the state's while someone follows the state, the registry's while a controller waits. */
export interface StoreKitWants {
  state: boolean;
  registry: boolean;
}

/**
 * The part every store repeats, whatever its backend: the highest version seen (the state never
 * goes back to 0 by itself), decoding and validating what the backend holds, the
 * `compareAndSet` preconditions, fan-out to state and registry subscribers, and close. A store
 * supplies its commands and its feed (LISTEN, pub/sub, a file watch); see `createPostgresStore`
 * and `createRedisStore` for complete uses.
 */
export interface StoreKit {
  /** Notices this handle received: state changes, and registry changes while it listened to them. */
  readonly received: { state: number; registry: number };
  /** Highest state version this handle has read, written or been told of. */
  readonly highest: number;
  readonly closed: boolean;
  readonly wants: StoreKitWants;
  /**
   * Which subscriptions are in place: wanted, and the feed carrying them up (`feedUp`). A change
   * made after this turned true reaches the subscribers. The stores' `listening` and
   * `registry.listening`.
   */
  readonly listening: StoreKitWants;
  /** Throws `STORE_UNAVAILABLE` for `what` once the store is closed. */
  assertOpen(what: string): void;
  /** Record a state this handle read, wrote or was told of; returns it. */
  seen(state: QuiesceState): QuiesceState;
  /**
   * A state as the backend holds it: `payload` parsed (a string is JSON text) and validated, checked
   * against the version stored beside it (when the backend keeps one), and recorded as seen.
   */
  decode(payload: unknown, storedVersion?: unknown): QuiesceState;
  /**
   * Nothing is stored: the initial state for a handle that never saw one; an outage
   * (`STORE_UNAVAILABLE`, see `vanished()`) for one that did.
   */
  missing(): QuiesceState;
  /** The error for a state that is gone after this handle saw a version of it. */
  vanished(): QuiesceError;
  /** `compareAndSet`'s preconditions: a valid `expectedVersion` and state; the state and its JSON. */
  prepareWrite(expectedVersion: number, next: QuiesceState): { state: QuiesceState; payload: string };
  /** `StateStore.subscribe`: adds a listener, tells `follow`, returns the unsubscribe. */
  subscribe(listener: (state: QuiesceState) => void, onError?: (error: Error) => void): () => void;
  /** `InstanceRegistry.subscribe`: adds a listener, tells `follow`, returns the unsubscribe. */
  subscribeRegistry(listener: () => void): () => void;
  /** Give each state subscriber its own copy of `state`. */
  deliver(state: QuiesceState): void;
  /** Tell every state subscriber of a broken feed or an unreadable payload. */
  reportError(error: Error): void;
  /**
   * A change notice arrived on the state feed: count it, then deliver `state()` (or report why it
   * failed); without `state`, read the store and deliver that.
   */
  stateNotice(state?: () => QuiesceState): void;
  /**
   * The feed carries `feed` (again). Anything announced before was missed: the registry's
   * subscribers are told to look again; after a loss (`reconnected`) the state is read and delivered.
   */
  feedUp(feed: StoreFeed, reconnected?: boolean): void;
  /** The feed no longer carries `feed`, or anything (the connection was lost, nobody wants it any more). */
  feedDown(feed?: StoreFeed): void;
  /** A change notice arrived on the registry feed: count it and tell the registry subscribers. */
  registryNotice(): void;
  /** Tell the registry subscribers to look again (their feed came back, or something changed). */
  registryChanged(): void;
  /** Read the store and deliver what it holds (anything announced while the feed was down was missed). */
  refresh(): void;
  /**
   * A registry record as the backend holds it (a string is JSON text), or null with the error
   * reported: one unreadable record must not hide the others.
   */
  readRecord(value: unknown, what: string): InstanceRecord | null;
  /** Mark the store closed and drop every subscriber; false when it was already closed. */
  close(): boolean;
}

/** Build the shared part of a store; see `StoreKit`. */
export function createStoreKit(options: StoreKitOptions): StoreKit {
  const { name } = options;
  const where = options.location ? ` (${options.location})` : '';
  const received = { state: 0, registry: 0 };
  const stateListeners = new Set<{ fn: (state: QuiesceState) => void; onError?: (error: Error) => void }>();
  const registryListeners = new Set<() => void>();
  let highest = 0;
  let closed = false;
  // A store without a feed of its own delivers in process: always up.
  const up: StoreKitWants = { state: !options.follow, registry: !options.follow };

  const wants = (): StoreKitWants => ({
    state: stateListeners.size > 0,
    registry: registryListeners.size > 0,
  });
  const follow = () => {
    if (!closed) options.follow?.(wants());
  };
  const seen = (state: QuiesceState) => {
    if (state.version > highest) highest = state.version;
    return state;
  };
  const vanished = () =>
    new QuiesceError(
      'STORE_UNAVAILABLE',
      `${name}: the state${where} is gone after version ${highest} was seen (deleted, flushed or evicted?). ` +
        'Instances ignore versions they have passed: restore it with a higher version, or restart every instance.',
    );
  const deliver = (state: QuiesceState) => {
    for (const l of stateListeners) l.fn(structuredClone(state));
  };
  const reportError = (error: Error) => {
    for (const l of stateListeners) l.onError?.(error);
  };
  const registryChanged = () => {
    for (const l of registryListeners) l();
  };
  const refresh = () => {
    if (!options.read) throw new Error(`${name}: the store kit needs read() to refresh`);
    options.read().then(deliver, reportError);
  };

  return {
    received,
    get highest() {
      return highest;
    },
    get closed() {
      return closed;
    },
    get wants() {
      return wants();
    },
    get listening() {
      const w = wants();
      return { state: w.state && up.state, registry: w.registry && up.registry };
    },
    assertOpen(what) {
      if (closed) throw new QuiesceError('STORE_UNAVAILABLE', `${name}: ${what} after close()`);
    },
    seen,
    decode(payload, storedVersion) {
      let json = payload;
      if (typeof payload === 'string') {
        try {
          json = JSON.parse(payload);
        } catch (cause) {
          throw new QuiesceError('INVALID_INPUT', `state payload: not JSON${where}`, {
            field: 'payload',
            cause,
          });
        }
      }
      const state = parseState(json);
      if (storedVersion != null && Number(storedVersion) !== state.version) {
        throw new QuiesceError(
          'INVALID_INPUT',
          `state payload: version: ${state.version} does not match the stored version ${storedVersion}${where}`,
          { field: 'version' },
        );
      }
      return seen(state);
    },
    missing() {
      if (highest > 0) throw vanished();
      return structuredClone(INITIAL_STATE);
    },
    vanished,
    prepareWrite(expectedVersion, next) {
      if (!Number.isInteger(expectedVersion) || expectedVersion < 0) {
        throw new QuiesceError(
          'INVALID_INPUT',
          'compareAndSet: expectedVersion must be a non-negative integer',
          {
            field: 'expectedVersion',
          },
        );
      }
      const state = parseState(next);
      return { state, payload: JSON.stringify(state) };
    },
    subscribe(fn, onError) {
      const entry = { fn, onError };
      stateListeners.add(entry);
      follow();
      return () => {
        if (stateListeners.delete(entry)) follow();
      };
    },
    subscribeRegistry(fn) {
      // One entry per call: the same function subscribed twice is two subscriptions.
      const entry = () => fn();
      registryListeners.add(entry);
      follow();
      return () => {
        if (registryListeners.delete(entry)) follow();
      };
    },
    deliver,
    reportError,
    stateNotice(state) {
      received.state++;
      if (!state) return refresh();
      let next: QuiesceState;
      try {
        next = state();
      } catch (err) {
        return reportError(err as Error);
      }
      deliver(next);
    },
    feedUp(feed, reconnected = false) {
      up[feed] = true;
      if (feed === 'registry') registryChanged();
      else if (reconnected) refresh();
    },
    feedDown(feed) {
      if (!options.follow) return;
      if (feed !== 'registry') up.state = false;
      if (feed !== 'state') up.registry = false;
    },
    registryNotice() {
      received.registry++;
      registryChanged();
    },
    registryChanged,
    refresh,
    readRecord(value, what) {
      try {
        return parseInstanceRecord(typeof value === 'string' ? JSON.parse(value) : value, what);
      } catch (err) {
        reportError(
          err instanceof QuiesceError
            ? err
            : new QuiesceError('INVALID_INPUT', `${what}: not JSON`, { cause: err }),
        );
        return null;
      }
    },
    close() {
      if (closed) return false;
      closed = true;
      stateListeners.clear();
      registryListeners.clear();
      return true;
    },
  };
}

/** Delay before reconnection attempt `attempt` (0-based): exponential, capped, with jitter. */
export function reconnectDelay(attempt: number, initialMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}
