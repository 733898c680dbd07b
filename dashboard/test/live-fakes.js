// Fakes for the live client's tests: a clock with a timer queue, window
// online/offline listeners, a WebSocket, an EventSource and fetch, each
// playing the hub's part on command. Not a test file itself.

import { createLive } from '../static/js/live.js';

/** Lets pending promise callbacks (fake fetch answers) run. */
export async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/**
 * @param {{online?: boolean}} [opts]
 */
export function harness({ online = true } = {}) {
  let now = 1_000_000;
  let nextId = 1;
  /** @type {Map<number, {at: number, fn: () => void}>} */
  const timers = new Map();
  /** @type {Map<string, () => void>} */
  const listeners = new Map();
  /** @type {any[]} */ const sockets = [];
  /** @type {any[]} */ const sources = [];
  /** @type {any[]} */ const fetches = [];

  class FakeWebSocket {
    /** @param {string} url */
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      /** @type {any[]} */
      this.sent = [];
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      sockets.push(this);
    }
    /** @param {string} s */
    send(s) {
      this.sent.push(JSON.parse(s));
    }
    close() {
      this.readyState = 3;
    }
    // The hub's part.
    accept() {
      this.readyState = 1;
      this.onopen?.();
    }
    /** @param {any} msg */
    push(msg) {
      this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
    }
    drop() {
      this.readyState = 3;
      this.onerror?.();
      this.onclose?.();
    }
  }

  class FakeEventSource {
    /** @param {string} url */
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.closed = false;
      /** @type {Map<string, ((ev: any) => void)[]>} */
      this.handlers = new Map();
      this.onopen = this.onerror = null;
      sources.push(this);
    }
    /** @param {string} type @param {(ev: any) => void} fn */
    addEventListener(type, fn) {
      const list = this.handlers.get(type) ?? [];
      list.push(fn);
      this.handlers.set(type, list);
    }
    close() {
      this.readyState = 2;
      this.closed = true;
    }
    /** The URL's query as an object. */
    get query() {
      return Object.fromEntries(new URL(this.url, 'http://x').searchParams);
    }
    // The hub's part.
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    /** @param {string} type @param {any} data @param {number} [id] */
    emit(type, data, id) {
      const ev = { data: typeof data === 'string' ? data : JSON.stringify(data), lastEventId: id === undefined ? '' : String(id) };
      if (type === 'error') this.onerror?.(ev);
      for (const fn of this.handlers.get(type) ?? []) fn(ev);
    }
    fail() {
      this.readyState = 0; // a real EventSource would now reconnect on its own
      this.onerror?.({});
    }
  }

  /**
   * @param {string} url
   * @param {any} init
   */
  function fakeFetch(url, init = {}) {
    return new Promise((resolve, reject) => {
      const req = {
        url,
        headers: init.headers ?? {},
        aborted: false,
        settled: false,
        get query() {
          return Object.fromEntries(new URL(url, 'http://x').searchParams);
        },
        get path() {
          return new URL(url, 'http://x').pathname;
        },
        /**
         * @param {number} status
         * @param {any} [body]
         * @param {Record<string, string>} [headers]
         */
        respond(status, body, headers = {}) {
          req.settled = true;
          const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
          resolve({
            status,
            ok: status >= 200 && status < 300,
            headers: { get: (/** @type {string} */ n) => lower[n.toLowerCase()] ?? null },
            json: async () => body,
          });
        },
        /** @param {Error} [err] */
        fail(err = new TypeError('Failed to fetch')) {
          req.settled = true;
          reject(err);
        },
      };
      init.signal?.addEventListener('abort', () => {
        req.aborted = true;
        if (!req.settled) req.fail(new Error('aborted'));
      });
      fetches.push(req);
    });
  }

  const env = {
    now: () => now,
    random: () => h.rand,
    isOnline: () => h.online,
    /** @param {() => void} fn @param {number} ms */
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    /** @param {any} id */
    clearTimeout(id) {
      timers.delete(id);
    },
    /** @param {string} type @param {() => void} fn */
    addEventListener(type, fn) {
      listeners.set(type, fn);
    },
    /** @param {string} type @param {() => void} fn */
    removeEventListener(type, fn) {
      if (listeners.get(type) === fn) listeners.delete(type);
    },
    WebSocket: FakeWebSocket,
    EventSource: FakeEventSource,
    fetch: fakeFetch,
    AbortController: globalThis.AbortController,
    location: { protocol: 'http:', host: 'hub' },
  };

  const h = {
    env,
    online,
    rand: 0.5,
    sockets,
    sources,
    fetches,
    timers,
    listeners,
    /** @type {string[]} */ states: [],
    /** @type {any[]} */ details: [],
    /** @type {any[]} */ events: [],
    /** @type {string[]} */ resets: [],
    get socket() {
      return sockets[sockets.length - 1];
    },
    get source() {
      return sources[sources.length - 1];
    },
    get request() {
      return fetches[fetches.length - 1];
    },
    /** Requests not answered yet. */
    get pending() {
      return fetches.filter((r) => !r.settled);
    },
    get now() {
      return now;
    },
    /** Advances the clock, firing due timers in order. @param {number} ms */
    advance(ms) {
      const end = now + ms;
      for (;;) {
        /** @type {[number, {at: number, fn: () => void}] | null} */
        let due = null;
        for (const [id, t] of timers) if (t.at <= end && (!due || t.at < due[1].at)) due = [id, t];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = end;
    },
    /** The delay of the only pending timer that is not longer than `max`. */
    nextTimer() {
      let min = Infinity;
      for (const t of timers.values()) min = Math.min(min, t.at - now);
      return min;
    },
    /** @param {string} type */
    fire(type) {
      listeners.get(type)?.();
    },
    /** @param {object} [opts] */
    create(opts = {}) {
      return createLive({
        url: 'http://hub',
        transport: 'ws',
        channels: ['fleet'],
        onEvent: (ev) => h.events.push(ev),
        onReset: (ch) => h.resets.push(ch),
        onState: (s, d) => {
          h.states.push(s);
          h.details.push(d);
        },
        env,
        ...opts,
      });
    },
  };
  return h;
}
