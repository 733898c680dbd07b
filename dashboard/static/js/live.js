// Live client for the hub's WebSocket at /ws: keeps one connection up,
// resubscribes after every reconnect, and reports an honest connection state.
// No DOM access beyond globals injected through `env`, so the whole state
// machine runs under `node --test` with a fake socket and clock.

/** First reconnect delay, before jitter. */
export const BACKOFF_START_MS = 500;
/** Longest reconnect delay, jitter included. */
export const BACKOFF_CAP_MS = 30_000;
/** How often an open connection sends an application ping. */
export const PING_INTERVAL_MS = 15_000;
/** An open connection with no message (pongs included) for this long is dead. */
export const DEAD_AFTER_MS = 35_000;
/** A handshake that has not completed after this long is abandoned. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Failing for longer than this is reported as offline, not reconnecting. */
export const OFFLINE_AFTER_MS = 60_000;
/** After the browser reports going offline, how long an open socket gets to prove itself. */
export const OFFLINE_PROBE_MS = 5_000;

/** @typedef {'connecting'|'live'|'reconnecting'|'offline'} ConnState */

/**
 * @typedef {object} Env Browser globals, injectable for tests.
 * @property {new (url: string) => WebSocketLike} WebSocket
 * @property {(fn: () => void, ms: number) => unknown} setTimeout
 * @property {(id: unknown) => void} clearTimeout
 * @property {() => number} now Unix milliseconds
 * @property {() => number} random in [0, 1)
 * @property {() => boolean} isOnline navigator.onLine
 * @property {(type: string, fn: () => void) => void} addEventListener on window
 * @property {(type: string, fn: () => void) => void} removeEventListener on window
 */

/**
 * @typedef {object} WebSocketLike
 * @property {number} readyState
 * @property {(data: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {null | ((ev: any) => void)} onopen
 * @property {null | ((ev: any) => void)} onmessage
 * @property {null | ((ev: any) => void)} onclose
 * @property {null | ((ev: any) => void)} onerror
 */

/**
 * @typedef {object} LiveClient
 * @property {ConnState} state the current connection state
 * @property {(channel: string) => void} subscribe adds a channel, now and after every reconnect
 * @property {(channel: string) => void} unsubscribe
 * @property {(msg: object) => boolean} send sends JSON if the socket is open
 * @property {() => void} close stops for good
 */

const CONNECTING = 0;
const OPEN = 1;

/**
 * The reconnect delay after `attempt` consecutive failures: exponential from
 * BACKOFF_START_MS, ±20 % jitter so a hub restart is not met by every browser
 * at the same instant, capped at BACKOFF_CAP_MS.
 * @param {number} attempt failures so far, 0 for the first retry
 * @param {() => number} [rand=Math.random] returns a number in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, rand = Math.random) {
  // 2 ** 16 × 500 ms is already far past the cap; clamping keeps it finite.
  // NaN and negatives fail the comparison and count as the first attempt.
  const n = attempt > 0 ? Math.min(Math.floor(attempt), 16) : 0;
  const nominal = BACKOFF_START_MS * 2 ** n;
  let r = Number(rand());
  if (!(r >= 0)) r = 0;
  if (r > 1) r = 1;
  return Math.round(Math.min(BACKOFF_CAP_MS, nominal * (0.8 + 0.4 * r)));
}

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

/** @returns {Env} */
function browserEnv() {
  const g = globalThis;
  // Wrapped so they are never called with a foreign `this` (Illegal invocation).
  return {
    WebSocket: g.WebSocket,
    setTimeout: (fn, ms) => g.setTimeout(fn, ms),
    clearTimeout: (id) => g.clearTimeout(/** @type {any} */ (id)),
    now: () => Date.now(),
    random: () => Math.random(),
    isOnline: () => g.navigator?.onLine !== false,
    addEventListener: (type, fn) => g.addEventListener?.(type, fn),
    removeEventListener: (type, fn) => g.removeEventListener?.(type, fn),
  };
}

/**
 * Connects to the hub and stays connected until close() is called.
 *
 * States: "connecting" until the first open; "live" while open; then
 * "reconnecting" while retrying; "offline" while the browser reports no
 * network or after failing for OFFLINE_AFTER_MS. It keeps retrying in every
 * state but live, with backoffDelay between attempts.
 *
 * @param {object} opts
 * @param {string} opts.url ws: or wss: URL, see socketURL
 * @param {string[]} [opts.channels] subscribed on every open
 * @param {(msg: any) => void} [opts.onMessage] every parsed message except pong
 * @param {(state: ConnState) => void} [opts.onState] on every state change
 * @param {Partial<Env>} [opts.env] overrides for tests
 * @returns {LiveClient}
 */
export function connect({ url, channels = [], onMessage = () => {}, onState = () => {}, env = {} }) {
  const E = { ...browserEnv(), ...env };
  const subs = new Set(channels);

  /** @type {WebSocketLike | null} */
  let ws = null;
  /** @type {ConnState | null} */
  let state = null;
  let everOpen = false;
  let closed = false;
  let attempt = 0; // consecutive failures; reset by a successful open
  /** @type {number | null} when the current run of failures began; null while live */
  let failingSince = E.now();
  /** @type {unknown} */ let retryTimer = null;
  /** @type {unknown} */ let pingTimer = null;
  /** @type {unknown} */ let watchdog = null;
  /** @type {unknown} */ let offlineTimer = null;

  /** @param {ConnState} next */
  function setState(next) {
    if (next === state) return;
    state = next;
    onState(next);
  }

  /** @param {unknown} id @returns {null} */
  function clear(id) {
    if (id !== null) E.clearTimeout(id);
    return null;
  }

  // A connection that says nothing for `ms` is closed and replaced: TCP can
  // take many minutes to notice a vanished peer (Wi-Fi drop, hub power loss).
  /** @param {number} ms */
  function armWatchdog(ms) {
    watchdog = clear(watchdog);
    watchdog = E.setTimeout(() => {
      watchdog = null;
      fail();
    }, ms);
  }

  function schedulePing() {
    pingTimer = clear(pingTimer);
    pingTimer = E.setTimeout(() => {
      pingTimer = null;
      send({ type: 'ping' });
      schedulePing();
    }, PING_INTERVAL_MS);
  }

  /** @returns {ConnState} */
  function failingState() {
    if (!E.isOnline()) return 'offline';
    if (failingSince !== null && E.now() - failingSince >= OFFLINE_AFTER_MS) return 'offline';
    return everOpen ? 'reconnecting' : 'connecting';
  }

  function open() {
    retryTimer = null;
    let sock;
    try {
      sock = new E.WebSocket(url);
    } catch {
      // A malformed URL or a blocked port throws synchronously; treat it like
      // any failed attempt so the state machine stays in one place.
      fail();
      return;
    }
    ws = sock;
    armWatchdog(CONNECT_TIMEOUT_MS);
    sock.onopen = () => {
      attempt = 0;
      failingSince = null;
      offlineTimer = clear(offlineTimer);
      everOpen = true;
      for (const channel of subs) send({ type: 'subscribe', channel });
      schedulePing();
      armWatchdog(DEAD_AFTER_MS);
      setState('live');
    };
    sock.onmessage = (ev) => {
      armWatchdog(DEAD_AFTER_MS);
      let msg;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return; // not ours to show; the next good message carries on
      }
      if (msg === null || typeof msg !== 'object' || msg.type === 'pong') return;
      onMessage(msg);
    };
    // Browsers always follow error with close, so close alone drives retries.
    sock.onerror = () => {};
    sock.onclose = () => fail();
  }

  // Drops the current socket so that none of its late events reach us.
  function teardown() {
    watchdog = clear(watchdog);
    pingTimer = clear(pingTimer);
    const sock = ws;
    ws = null;
    if (!sock) return;
    sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
    if (sock.readyState === CONNECTING || sock.readyState === OPEN) {
      try {
        sock.close();
      } catch {
        // already closing
      }
    }
  }

  function fail() {
    teardown();
    if (closed) return;
    if (failingSince === null) failingSince = E.now();
    retryTimer = clear(retryTimer);
    retryTimer = E.setTimeout(open, backoffDelay(attempt++, E.random));
    if (offlineTimer === null) {
      const left = Math.max(0, failingSince + OFFLINE_AFTER_MS - E.now());
      offlineTimer = E.setTimeout(() => {
        offlineTimer = null;
        if (state !== 'live') setState(failingState());
      }, left);
    }
    setState(failingState());
  }

  /** @param {object} msg */
  function send(msg) {
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  function onBrowserOnline() {
    if (closed || state === 'live') return;
    // The network is back: try now instead of sitting out a 30 s backoff.
    if (retryTimer !== null) {
      retryTimer = clear(retryTimer);
      setState(failingState());
      open();
    }
  }

  function onBrowserOffline() {
    if (closed) return;
    if (state === 'live') {
      // The socket may still work (a hub on the LAN with the uplink down), so
      // ask it instead of assuming: a reply re-arms the normal watchdog.
      send({ type: 'ping' });
      armWatchdog(OFFLINE_PROBE_MS);
    } else {
      setState('offline');
    }
  }

  E.addEventListener('online', onBrowserOnline);
  E.addEventListener('offline', onBrowserOffline);
  setState(E.isOnline() ? 'connecting' : 'offline');
  open();

  return {
    get state() {
      return /** @type {ConnState} */ (state);
    },
    subscribe(channel) {
      if (subs.has(channel)) return;
      subs.add(channel);
      send({ type: 'subscribe', channel });
    },
    unsubscribe(channel) {
      if (!subs.delete(channel)) return;
      send({ type: 'unsubscribe', channel });
    },
    send,
    close() {
      if (closed) return;
      closed = true;
      retryTimer = clear(retryTimer);
      offlineTimer = clear(offlineTimer);
      teardown();
      E.removeEventListener('online', onBrowserOnline);
      E.removeEventListener('offline', onBrowserOffline);
    },
  };
}
