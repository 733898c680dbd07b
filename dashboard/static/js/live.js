// Live client for the hub: keeps one connection up over the best transport
// that works (WebSocket, then server-sent events, long-poll, polling),
// resumes from the last event id after every reconnect, queues what the app
// sends while disconnected, and reports an honest connection state. No DOM
// access beyond globals injected through `env`, so the whole state machine
// runs under `node --test` with fakes. The wire formats live in
// transports.js and polling.js, backoff and resume positions in reconnect.js.

import { longPollTransport, pollTransport } from './polling.js';
import {
  BACKOFF_CAP_MS,
  BACKOFF_START_MS,
  RETRY_AFTER_CAP_MS,
  backoffDelay,
  createPositions,
  nextDelay,
} from './reconnect.js';
import {
  CONNECT_TIMEOUT_MS,
  DEAD_AFTER_MS,
  LONGPOLL_TIMEOUT_MS,
  LONGPOLL_WAIT_S,
  OFFLINE_PROBE_MS,
  PING_INTERVAL_MS,
  POLL_INTERVAL_MS,
} from './transports.js';
import { sseTransport, wsTransport } from './streams.js';

export {
  BACKOFF_CAP_MS,
  BACKOFF_START_MS,
  RETRY_AFTER_CAP_MS,
  backoffDelay,
  createPositions,
  nextDelay,
  CONNECT_TIMEOUT_MS,
  DEAD_AFTER_MS,
  LONGPOLL_TIMEOUT_MS,
  LONGPOLL_WAIT_S,
  OFFLINE_PROBE_MS,
  PING_INTERVAL_MS,
  POLL_INTERVAL_MS,
};

/** Failing for longer than this is reported as offline, not reconnecting. */
export const OFFLINE_AFTER_MS = 60_000;
/** `auto` moves to the next transport after this many failures in a row before it ever opened. */
export const FALLBACK_AFTER = 2;
/** After `auto` settles on a fallback, it tries the better transports this soon once... */
export const UPGRADE_FIRST_MS = 10_000;
/** ...and then this often. */
export const UPGRADE_EVERY_MS = 5 * 60_000;
/** Client messages kept while disconnected; the oldest go first. */
export const QUEUE_LIMIT = 100;

/** The transports by name. */
const TRANSPORTS = Object.freeze({
  ws: wsTransport,
  sse: sseTransport,
  longpoll: longPollTransport,
  poll: pollTransport,
});

/** Transport names, best first: the order `auto` tries them in. */
export const TRANSPORT_ORDER = Object.freeze(/** @type {const} */ (['ws', 'sse', 'longpoll', 'poll']));

/** @typedef {'ws'|'sse'|'longpoll'|'poll'} TransportName */
/** @typedef {TransportName|'auto'} TransportChoice */
/** @typedef {'connecting'|'live'|'reconnecting'|'offline'|'error'} ConnState */
/** @typedef {import('./transports.js').LiveEvent} LiveEvent */
/** @typedef {import('./transports.js').Env} Env */
/** @typedef {import('./transports.js').Failure} Failure */
/** @typedef {import('./transports.js').TransportContext} TransportContext */
/** @typedef {import('./transports.js').TransportHandle} TransportHandle */

/**
 * @typedef {object} StateDetail passed with every state change
 * @property {TransportName} transport the one in use or tried next
 * @property {number} [delay] ms until the next attempt
 * @property {number} [status] HTTP status behind the change, if any
 * @property {string} [reason] for people
 */

/**
 * @typedef {object} LiveClient
 * @property {ConnState} state the current connection state
 * @property {TransportName} transport the transport in use (or being tried)
 * @property {number} queued client messages waiting for a connection
 * @property {(channel: string) => void} subscribe adds a channel, now and after every reconnect
 * @property {(channel: string) => void} unsubscribe drops a channel
 * @property {(msg: object) => boolean} send true if sent now; otherwise queued
 *   (subscribe/unsubscribe update the channel set, pings are dropped)
 * @property {() => void} close stops for good
 */

/**
 * The WebSocket URL for `path` on the page's own origin, wss: under https:.
 * @param {{protocol: string, host: string}} loc usually window.location
 * @param {string} [path='/ws']
 * @returns {string}
 */
export function socketURL(loc, path = '/ws') {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}${path}`;
}

/**
 * The WebSocket URL for an http(s) base ('' or a path: the page's origin).
 * @param {string} base
 * @param {{protocol: string, host: string} | undefined} loc
 */
export function wsURLFor(base, loc) {
  if (/^https?:/i.test(base)) return `${base.replace(/^http/i, 'ws')}/ws`;
  return socketURL(loc ?? { protocol: 'http:', host: 'localhost' }, `${base}/ws`);
}

/** @returns {Env} */
function browserEnv() {
  const g = /** @type {any} */ (globalThis);
  // Wrapped so they are never called with a foreign `this` (Illegal invocation).
  return {
    WebSocket: g.WebSocket,
    EventSource: g.EventSource,
    fetch: (url, init) => g.fetch(url, init),
    AbortController: g.AbortController,
    setTimeout: (fn, ms) => g.setTimeout(fn, ms),
    clearTimeout: (id) => g.clearTimeout(id),
    now: () => Date.now(),
    random: () => Math.random(),
    isOnline: () => g.navigator?.onLine !== false,
    addEventListener: (type, fn) => g.addEventListener?.(type, fn),
    removeEventListener: (type, fn) => g.removeEventListener?.(type, fn),
    location: g.location,
    reportError: (err) => (typeof g.reportError === 'function' ? g.reportError(err) : console.error(err)),
  };
}

const noop = () => {};

/**
 * Connects to the hub and stays connected until close() is called.
 *
 * States, each reported once per change: "connecting" until the first open;
 * "live" while a transport works; then "reconnecting" while retrying with
 * backoffDelay (or the hub's Retry-After, if longer) between attempts;
 * "offline" while the browser reports no network or after failing for
 * OFFLINE_AFTER_MS, still retrying; "error" when retrying cannot help (an
 * HTTP 4xx other than 408/429, or no usable transport): it stops until the
 * channel set changes.
 *
 * Transport `auto` starts with WebSocket and moves down TRANSPORT_ORDER when
 * one fails FALLBACK_AFTER times in a row without ever opening, or at once
 * when the hub has no such endpoint. A transport that has opened is kept
 * through later failures. While on a fallback, auto tries the better ones in
 * the background (UPGRADE_FIRST_MS, then every UPGRADE_EVERY_MS) and switches
 * when one opens.
 *
 * Events reach onEvent once each, in order per channel; after a reconnect
 * every channel resumes where it stopped. onReset(channel) means the hub no
 * longer holds the missed events: reload what you derive from that channel.
 * For `fleet` a fresh snapshot follows through onEvent on every transport.
 *
 * @param {object} [opts]
 * @param {string} [opts.url] the hub's http(s) base, '' (default) for the page's origin
 * @param {TransportChoice} [opts.transport='auto']
 * @param {string[]} [opts.channels] subscribed from the start
 * @param {(ev: LiveEvent) => void} [opts.onEvent] every event, and hub errors as {type: "error", error}
 * @param {(channel: string) => void} [opts.onReset] history for `channel` was lost
 * @param {(state: ConnState, detail: StateDetail) => void} [opts.onState] on every state change
 * @param {Partial<Env>} [opts.env] overrides for tests
 * @returns {LiveClient}
 */
export function createLive({
  url = '',
  transport = 'auto',
  channels = [],
  onEvent = noop,
  onReset = noop,
  onState = noop,
  env = {},
} = {}) {
  const E = /** @type {Env} */ ({ ...browserEnv(), ...env });
  /** @type {readonly TransportName[]} */
  const order = transport === 'auto' ? TRANSPORT_ORDER : [transport];
  if (!order.every((t) => Object.hasOwn(TRANSPORTS, t))) throw new TypeError(`unknown transport ${JSON.stringify(transport)}`);
  const base = url.replace(/\/+$/, '');
  const wsURL = wsURLFor(base, E.location);

  /** @type {Set<string>} */
  const subs = new Set();
  const positions = createPositions();
  for (const ch of channels) {
    subs.add(ch);
    positions.add(ch);
  }
  /** @type {Map<string, string>} */
  const etags = new Map();
  /** @type {object[]} */
  const queue = [];

  let idx = 0; // into order
  let preOpenFails = 0; // consecutive failures of order[idx] before it opened
  /** @type {Set<TransportName>} */
  const worked = new Set();
  let upgrades = 0; // upgrade rounds so far

  /** @type {ConnState | null} */
  let state = null;
  let everOpen = false;
  let closed = false;
  let attempt = 0; // consecutive failures; reset by an open
  /** @type {number | null} when the current run of failures began; null while live */
  let failingSince = E.now();
  /** @type {TransportHandle | null} */
  let handle = null;
  let gen = 0; // bumped whenever the current handle is dropped
  let live = false; // the current handle has opened
  /** @type {unknown} */ let retryTimer = null;
  /** @type {unknown} */ let offlineTimer = null;
  /** @type {unknown} */ let upgradeTimer = null;
  /** @type {null | (() => void)} */ let cancelProbe = null;

  /**
   * Runs an app callback; what it throws is reported, and does not stop the
   * transport that was delivering (an async loop would die silently).
   * @template {unknown[]} A
   * @param {(...args: A) => void} fn
   * @param {A} args
   */
  function call(fn, ...args) {
    try {
      fn(...args);
    } catch (err) {
      E.reportError(err);
    }
  }

  /** @param {unknown} id @returns {null} */
  function clear(id) {
    if (id !== null) E.clearTimeout(id);
    return null;
  }

  /**
   * @param {ConnState} next
   * @param {Partial<StateDetail>} [detail]
   */
  function setState(next, detail = {}) {
    if (next === state) return;
    state = next;
    call(onState, next, { transport: order[idx], ...detail });
  }

  /** @returns {ConnState} */
  function failingState() {
    if (!E.isOnline()) return 'offline';
    if (failingSince !== null && E.now() - failingSince >= OFFLINE_AFTER_MS) return 'offline';
    return everOpen ? 'reconnecting' : 'connecting';
  }

  /** @param {LiveEvent} ev */
  function deliver(ev) {
    if (positions.accept(ev)) call(onEvent, ev);
  }

  /**
   * @param {string | undefined} channel
   * @param {number | undefined} id
   */
  function reset(channel, id) {
    const chans = channel === undefined ? [...subs] : [channel];
    for (const ch of chans) {
      if (id !== undefined) positions.reset(ch, id);
      call(onReset, ch);
    }
  }

  function flush() {
    const h = handle;
    if (!h?.duplex) return;
    while (queue.length > 0 && h === handle && h.send(queue[0])) queue.shift();
  }

  /**
   * The context for the current transport: every callback goes dead once
   * the handle is dropped, so late events of an old connection never count.
   * @param {number} my
   * @returns {TransportContext}
   */
  function contextFor(my) {
    const current = () => my === gen && !closed;
    return {
      env: E,
      base,
      wsURL,
      etags,
      channels: () => [...subs],
      since: (ch) => positions.since(ch),
      cursor: () => positions.cursor(subs),
      isFresh: (ch) => positions.isFresh(ch),
      opened() {
        if (current()) opened();
      },
      event(ev) {
        if (current()) deliver(ev);
      },
      advance(id, chans) {
        if (current()) positions.advance(id, chans);
      },
      reset(ch, id) {
        if (current()) reset(ch, id);
      },
      message(msg) {
        if (current()) call(onEvent, msg);
      },
      failed(f) {
        if (current()) failed(f);
      },
    };
  }

  function start() {
    retryTimer = null;
    const my = ++gen;
    live = false;
    const h = TRANSPORTS[order[idx]](contextFor(my));
    // A transport may fail inside its constructor, before we hold it.
    if (my === gen && !closed) handle = h;
    else h.close();
  }

  // Drops the current transport so that none of its late events reach us.
  function teardown() {
    gen++;
    live = false;
    upgradeTimer = clear(upgradeTimer);
    cancelProbe?.();
    const h = handle;
    handle = null;
    h?.close();
  }

  function opened() {
    const first = !live;
    live = true;
    attempt = 0;
    preOpenFails = 0;
    failingSince = null;
    offlineTimer = clear(offlineTimer);
    everOpen = true;
    worked.add(order[idx]);
    positions.carried(subs);
    flush();
    setState('live');
    if (first) scheduleUpgrade();
  }

  /** @param {Failure} f */
  function failed(f) {
    const name = order[idx];
    teardown();
    if (closed) return;
    const last = idx === order.length - 1;
    if (f.fatal || (f.unsupported && last)) {
      stopWith(f);
      return;
    }
    if (f.unsupported) {
      idx++;
      preOpenFails = 0;
    } else if (f.beforeOpen && !worked.has(name)) {
      if (++preOpenFails >= FALLBACK_AFTER && !last) {
        idx++;
        preOpenFails = 0;
      }
    } else {
      preOpenFails = 0;
    }
    if (failingSince === null) failingSince = E.now();
    const delay = nextDelay(attempt++, f.retryAfterMs, E.random);
    retryTimer = clear(retryTimer);
    retryTimer = E.setTimeout(start, delay);
    if (offlineTimer === null) {
      const left = Math.max(0, failingSince + OFFLINE_AFTER_MS - E.now());
      offlineTimer = E.setTimeout(() => {
        offlineTimer = null;
        if (!live && state !== 'error') setState(failingState());
      }, left);
    }
    setState(failingState(), { delay, reason: f.reason, ...(f.status ? { status: f.status } : {}) });
  }

  /** @param {Failure} f a problem retrying cannot fix */
  function stopWith(f) {
    retryTimer = clear(retryTimer);
    offlineTimer = clear(offlineTimer);
    setState('error', { reason: f.reason, ...(f.status ? { status: f.status } : {}) });
  }

  // After an error, a changed channel set is worth another try.
  function restart() {
    attempt = 0;
    preOpenFails = 0;
    failingSince = E.now();
    setState(everOpen ? 'reconnecting' : 'connecting');
    start();
  }

  function scheduleUpgrade() {
    if (idx === 0 || order.length === 1 || upgradeTimer !== null || cancelProbe) return;
    upgradeTimer = E.setTimeout(() => probeFrom(0), upgrades === 0 ? UPGRADE_FIRST_MS : UPGRADE_EVERY_MS);
  }

  // Tries order[j], then the next better one, without disturbing the
  // current connection; switches to the first that opens.
  /** @param {number} j */
  function probeFrom(j) {
    upgradeTimer = null;
    if (closed || !live) return;
    if (j >= idx) {
      upgrades++;
      scheduleUpgrade();
      return;
    }
    let done = false;
    /** @type {TransportHandle | null} */
    let p = null;
    const end = () => {
      done = true;
      cancelProbe = null;
      p?.close();
    };
    /** @param {boolean} ok */
    const finish = (ok) => {
      if (done) return;
      end();
      if (closed || !live) return;
      if (ok) switchTo(j);
      else probeFrom(j + 1);
    };
    cancelProbe = end;
    p = TRANSPORTS[order[j]]({
      env: E,
      base,
      wsURL,
      etags: new Map(),
      // A WebSocket proves itself by opening; the others need a channel set.
      channels: () => (order[j] === 'ws' ? [] : [...subs]),
      since: () => undefined,
      cursor: () => undefined,
      isFresh: () => false,
      opened: () => finish(true),
      failed: () => finish(false),
      event: noop,
      advance: noop,
      reset: noop,
      message: noop,
    });
    if (done) p.close();
  }

  /** @param {number} j */
  function switchTo(j) {
    teardown();
    idx = j;
    preOpenFails = 0;
    upgrades = 0;
    start(); // stays "live" unless this one fails
  }

  function onBrowserOnline() {
    if (closed || live || state === 'error') return;
    // The network is back: try now instead of sitting out a 30 s backoff.
    if (retryTimer !== null) {
      retryTimer = clear(retryTimer);
      setState(failingState());
      start();
    }
  }

  function onBrowserOffline() {
    if (closed || state === 'error') return;
    if (live) handle?.probe?.();
    else setState('offline');
  }

  /**
   * @param {string} channel
   * @param {boolean} on
   */
  function changed(channel, on) {
    if (state === 'error') {
      restart();
      return;
    }
    handle?.update(channel, on);
    if (on && live) positions.carried([channel]);
  }

  /** @param {string} channel */
  function subscribe(channel) {
    if (closed || typeof channel !== 'string' || channel === '' || subs.has(channel)) return;
    subs.add(channel);
    positions.add(channel);
    changed(channel, true);
  }

  /** @param {string} channel */
  function unsubscribe(channel) {
    if (closed || !subs.delete(channel)) return;
    positions.remove(channel);
    etags.delete(channel);
    changed(channel, false);
  }

  E.addEventListener('online', onBrowserOnline);
  E.addEventListener('offline', onBrowserOffline);
  setState(E.isOnline() ? 'connecting' : 'offline');
  start();

  return {
    get state() {
      return /** @type {ConnState} */ (state);
    },
    get transport() {
      return order[idx];
    },
    get queued() {
      return queue.length;
    },
    subscribe,
    unsubscribe,
    send(msg) {
      if (closed || msg === null || typeof msg !== 'object') return false;
      const m = /** @type {Record<string, unknown>} */ (msg);
      // Only the final channel set matters, and it is sent on every open.
      if (m.type === 'subscribe' || m.type === 'unsubscribe') {
        if (typeof m.channel !== 'string') return false;
        if (m.type === 'subscribe') subscribe(m.channel);
        else unsubscribe(m.channel);
        return live && !!handle?.duplex;
      }
      if (live && handle?.send(msg)) return true;
      if (m.type === 'ping') return false; // stale by the time it could go
      queue.push(msg);
      if (queue.length > QUEUE_LIMIT) queue.shift();
      return false;
    },
    close() {
      if (closed) return;
      closed = true;
      retryTimer = clear(retryTimer);
      offlineTimer = clear(offlineTimer);
      teardown();
      queue.length = 0;
      E.removeEventListener('online', onBrowserOnline);
      E.removeEventListener('offline', onBrowserOffline);
    },
  };
}
