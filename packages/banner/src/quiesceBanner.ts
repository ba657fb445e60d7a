import { type BannerState, type BannerView, bannerView } from './bannerView.js';

const STYLE = `
:host{display:block}
:host([hidden]){display:none}
[part=banner]{font:inherit;line-height:1.4;padding:.6em 1em;border-left:.3em solid;display:flex;flex-wrap:wrap;gap:.25em .75em;align-items:baseline}
[part=banner][data-kind=scheduled]{background:var(--quiesce-scheduled-bg,#e8f0fe);color:var(--quiesce-scheduled-fg,#0b3a7e)}
[part=banner][data-kind=active]{background:var(--quiesce-active-bg,#fff4ce);color:var(--quiesce-active-fg,#4a3500)}
[part=banner][data-kind=ended]{background:var(--quiesce-ended-bg,#e6f4ea);color:var(--quiesce-ended-fg,#0d4a1f)}
[part=headline]{font-weight:700}
`;

const BACKOFF = [500, 1000, 2000, 4000, 8000, 15_000];
const WRITE_SELECTOR = '[data-quiesce-write]';
const MARK = 'data-quiesce-disabled';

// In Node (SSR, tests importing the module) there is no HTMLElement: the class must still load.
const Base = (typeof HTMLElement === 'undefined' ? class {} : HTMLElement) as typeof HTMLElement;

/**
 * `<quiesce-banner src="/quiesce">`: shows scheduled, active and just-ended maintenance windows.
 * Reads `<src>/state`, follows `<src>/events` (SSE) with reconnection, falls back to polling.
 *
 * Attributes: `src` (default `/quiesce`), `disable-writes` (disable `[data-quiesce-write]`
 * elements while writes are refused), `linger` (seconds "maintenance complete" stays, default 60),
 * `poll` (longest wait between looks at `/state` while the stream is down, default 15 s), `locale`, `time-zone`.
 * Fires `quiesce-state` (detail: the state) on each change.
 */
export class QuiesceBannerElement extends Base {
  static observedAttributes = ['src', 'disable-writes', 'locale', 'time-zone', 'linger'];

  /** The last state received, or null before the first answer. */
  state: BannerState | null = null;
  #root: ShadowRoot | undefined;
  #box: HTMLElement | undefined;
  #source: EventSource | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  /** Keeps "in 12 minutes" current while a window is shown. */
  #tickTimer: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;
  #generation = 0;
  #streamBroken = false;
  #skew = 0;
  #connected = false;
  #observer: MutationObserver | null = null;

  connectedCallback(): void {
    if (!this.#root) {
      this.#root = this.attachShadow({ mode: 'open' });
      const style = document.createElement('style');
      style.textContent = STYLE;
      this.#box = document.createElement('div');
      this.#box.setAttribute('part', 'banner');
      this.#box.setAttribute('aria-atomic', 'true');
      this.#box.setAttribute('role', 'status');
      this.#box.setAttribute('aria-live', 'polite');
      this.#root.append(style, this.#box);
    }
    this.#connected = true;
    this.hidden = true;
    this.#connect();
  }

  disconnectedCallback(): void {
    this.#connected = false;
    this.#teardown();
    this.#applyWriteLock(false);
  }

  attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (!this.#connected || old === value) return;
    if (name === 'src') {
      this.#teardown();
      this.#connect();
    } else {
      this.#render();
    }
  }

  get src(): string {
    return (this.getAttribute('src') ?? '/quiesce').replace(/\/+$/, '');
  }

  #teardown(): void {
    // Answers of a connection attempt begun before this point are ignored.
    this.#generation++;
    this.#source?.close();
    this.#source = null;
    clearTimeout(this.#timer);
    clearTimeout(this.#lingerTimer);
    clearTimeout(this.#tickTimer);
  }

  async #connect(): Promise<void> {
    clearTimeout(this.#timer);
    const generation = this.#generation;
    const ok = await this.#poll(generation);
    if (!this.#connected || generation !== this.#generation) return;
    if (!ok || this.#streamBroken || typeof EventSource === 'undefined') return this.#retry(ok);
    const source = new EventSource(`${this.src}/events`);
    this.#source = source;
    // The server sends the state on connect: silence means a proxy is buffering the stream, so
    // drop it and poll instead.
    const watchdog = setTimeout(() => {
      source.close();
      if (this.#source === source) this.#source = null;
      this.#streamBroken = true;
      this.#retry(true);
    }, 10_000);
    source.addEventListener('state', (e) => {
      clearTimeout(watchdog);
      this.#failures = 0;
      this.#accept((e as MessageEvent).data);
    });
    source.onerror = () => {
      clearTimeout(watchdog);
      // Take reconnection over from the browser: our own backoff, and a fresh /state first so a
      // change made while the stream was down shows at once.
      source.close();
      if (this.#source === source) this.#source = null;
      this.#retry(false);
    };
  }

  /**
   * Next look at the server: a plain poll when the stream is unavailable, else backoff with jitter
   * after a failure. Either way `poll` bounds the wait, so a blocked stream still means polling.
   */
  #retry(reachable: boolean): void {
    if (!this.#connected) return;
    const pollMs = Math.max(1, Number(this.getAttribute('poll') ?? 15) || 15) * 1000;
    let delay = pollMs;
    if (!reachable) {
      const base = BACKOFF[Math.min(this.#failures, BACKOFF.length - 1)]!;
      this.#failures++;
      delay = Math.min(pollMs, base * (0.8 + Math.random() * 0.4));
    }
    this.#timer = setTimeout(() => void this.#connect(), delay);
  }

  async #poll(generation: number): Promise<boolean> {
    try {
      const res = await fetch(`${this.src}/state`, {
        cache: 'no-store',
        headers: { accept: 'application/json' },
      });
      if (!res.ok) return false;
      const body = await res.text();
      if (generation === this.#generation) this.#accept(body);
      return true;
    } catch {
      return false;
    }
  }

  #accept(json: string): void {
    let next: BannerState;
    try {
      next = JSON.parse(json) as BannerState;
    } catch {
      return;
    }
    // No ordering by version: a restarted server with a fresh store starts counting again, and
    // polls never run while the stream is open, so the last answer is the current one.
    if (!next || typeof next !== 'object' || typeof next.version !== 'number') return;
    const server = Date.parse(next.serverTime);
    if (!Number.isNaN(server)) this.#skew = server - Date.now();
    const changed =
      JSON.stringify({ ...next, serverTime: 0 }) !== JSON.stringify({ ...this.state, serverTime: 0 });
    this.state = next;
    this.#render();
    if (changed)
      this.dispatchEvent(new CustomEvent('quiesce-state', { detail: next, bubbles: true, composed: true }));
  }

  #render(): void {
    const box = this.#box;
    if (!box) return;
    const now = Date.now() + this.#skew;
    const lingerMs = Number(this.getAttribute('linger') ?? 60) * 1000;
    const view = bannerView(this.state, {
      now,
      lingerMs,
      locale: this.getAttribute('locale') ?? undefined,
      timeZone: this.getAttribute('time-zone') ?? undefined,
    });
    this.#applyWriteLock(view?.kind === 'active');
    clearTimeout(this.#lingerTimer);
    clearTimeout(this.#tickTimer);
    if (view?.kind === 'ended' && this.state?.endedAt && this.state.phase === 'closed') {
      const left = Date.parse(this.state.endedAt) + lingerMs - now;
      this.#lingerTimer = setTimeout(() => this.#render(), Math.max(0, left) + 50);
    }
    if (view && view.kind !== 'ended') {
      // Re-render at the next minute boundary of the (server-corrected) clock.
      this.#tickTimer = setTimeout(() => this.#render(), 60_000 - (now % 60_000) + 50);
    }
    this.hidden = !view;
    if (!view) {
      box.replaceChildren();
      box.removeAttribute('data-kind');
      return;
    }
    box.dataset.kind = view.kind;
    box.setAttribute('role', view.role);
    box.setAttribute('aria-live', view.role === 'alert' ? 'assertive' : 'polite');
    box.replaceChildren(...content(view));
  }

  #applyWriteLock(on: boolean): void {
    const lock = on && this.hasAttribute('disable-writes') && this.#connected;
    if (lock) {
      for (const el of document.querySelectorAll<HTMLElement>(WRITE_SELECTOR)) lockElement(el);
      if (!this.#observer && typeof MutationObserver !== 'undefined') {
        // Elements rendered during the window are locked too.
        this.#observer = new MutationObserver(() => {
          for (const el of document.querySelectorAll<HTMLElement>(`${WRITE_SELECTOR}:not([${MARK}])`))
            lockElement(el);
        });
        this.#observer.observe(document.documentElement, { childList: true, subtree: true });
      }
      return;
    }
    this.#observer?.disconnect();
    this.#observer = null;
    for (const el of document.querySelectorAll<HTMLElement>(`[${MARK}]`)) {
      if (el.getAttribute(MARK) === 'disabled') (el as HTMLButtonElement).disabled = false;
      else el.removeAttribute('aria-disabled');
      el.removeAttribute(MARK);
    }
  }
}

function lockElement(el: HTMLElement): void {
  if (el.hasAttribute(MARK)) return;
  if ('disabled' in el) {
    // Leave alone what the app disabled itself; unlock only what the banner locked.
    if ((el as HTMLButtonElement).disabled) return;
    (el as HTMLButtonElement).disabled = true;
    el.setAttribute(MARK, 'disabled');
  } else {
    el.setAttribute('aria-disabled', 'true');
    el.setAttribute(MARK, 'aria');
  }
}

function content(view: BannerView): Node[] {
  const headline = document.createElement('strong');
  headline.setAttribute('part', 'headline');
  headline.textContent = view.headline;
  const text = document.createElement('span');
  text.setAttribute('part', 'text');
  for (const part of view.parts) {
    if (typeof part === 'string') {
      text.append(part);
    } else {
      const time = document.createElement('time');
      time.dateTime = part.time;
      time.textContent = part.text;
      text.append(time);
    }
  }
  const nodes: Node[] = [headline, text];
  if (view.contact) {
    const contact = document.createElement('span');
    contact.setAttribute('part', 'contact');
    contact.textContent = `Contact: ${view.contact}`;
    nodes.push(contact);
  }
  return nodes;
}

/** Register the element (once) under `tagName`. Does nothing outside a browser. */
export function defineQuiesceBanner(tagName = 'quiesce-banner'): void {
  if (typeof customElements === 'undefined' || customElements.get(tagName)) return;
  // A subclass per name: one constructor cannot be registered twice.
  customElements.define(
    tagName,
    tagName === 'quiesce-banner' ? QuiesceBannerElement : class extends QuiesceBannerElement {},
  );
}
