// How the live client reaches the hub: the transport contract and the wire
// helpers every transport shares. The streaming transports (WebSocket,
// server-sent events) are in streams.js; long-poll and polling in polling.js.
// A transport knows its wire format and nothing else: live.js owns the
// connection state, backoff, fallback, the send queue and the resume
// positions, and hands every transport a context of callbacks. Browser
// globals come in through `env` only, so all of it runs under `node --test`
// with fakes.

/** A handshake (WebSocket, EventSource) that has not completed after this long is abandoned. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** How often an open WebSocket sends an application ping. */
export const PING_INTERVAL_MS = 15_000;
/** An open WebSocket with no message (pongs included) for this long is dead. */
export const DEAD_AFTER_MS = 35_000;
/** After the browser reports going offline, how long an open socket gets to prove itself. */
export const OFFLINE_PROBE_MS = 5_000;
/** How long the hub may hold a long-poll request (the `timeout` parameter). */
export const LONGPOLL_WAIT_S = 25;
/** A long-poll request with no answer after this long is abandoned. */
export const LONGPOLL_TIMEOUT_MS = LONGPOLL_WAIT_S * 1000 + 10_000;
/** Least time between two long-polls that came back empty before the hold ran out. */
export const LONGPOLL_MIN_GAP_MS = 1_000;
/** How often the polling transport asks for the fleet and each device. */
export const POLL_INTERVAL_MS = 5_000;
/** A plain HTTP request with no answer after this long is abandoned. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** The server's event types; anything else on a WebSocket goes to LiveContext.message. */
export const EVENT_TYPES = Object.freeze(['fleet', 'reading', 'status', 'alert']);

/**
 * @typedef {object} LiveEvent what the app receives through onEvent
 * @property {string} type fleet | reading | status | alert, "device" (a
 *   polled device snapshot) or "error" (the hub rejected a client message)
 * @property {string} [channel] fleet, alerts or device:<id>
 * @property {number} [id] the hub's event id; absent on polled snapshots
 * @property {any} [data] the payload: the fleet, a reading (with `device`), ...
 * @property {string} [error] on type "error"
 */

/**
 * @typedef {object} Failure why a transport stopped
 * @property {boolean} [beforeOpen] it never got through (counts towards falling back)
 * @property {number} [retryAfterMs] the hub's Retry-After: the least next delay
 * @property {number} [status] HTTP status, when there was one
 * @property {boolean} [unsupported] the hub has no such endpoint (404, 405, 501)
 * @property {boolean} [fatal] retrying cannot help (a 4xx other than 429)
 * @property {string} reason for people
 */

/**
 * @typedef {object} Env Browser globals, injectable for tests.
 * @property {new (url: string) => WebSocketLike} WebSocket
 * @property {new (url: string) => EventSourceLike} EventSource
 * @property {(url: string, init?: object) => Promise<ResponseLike>} fetch
 * @property {(new () => {signal: any, abort(): void}) | undefined} AbortController
 * @property {(fn: () => void, ms: number) => unknown} setTimeout
 * @property {(id: unknown) => void} clearTimeout
 * @property {() => number} now Unix milliseconds
 * @property {() => number} random in [0, 1)
 * @property {() => boolean} isOnline navigator.onLine
 * @property {(type: string, fn: () => void) => void} addEventListener on window
 * @property {(type: string, fn: () => void) => void} removeEventListener on window
 * @property {{protocol: string, host: string} | undefined} location the page's
 * @property {(err: unknown) => void} reportError for what app callbacks throw
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
 * @typedef {object} EventSourceLike
 * @property {() => void} close
 * @property {(type: string, fn: (ev: {data?: string, lastEventId?: string}) => void) => void} addEventListener
 * @property {null | ((ev: any) => void)} onopen
 * @property {null | ((ev: any) => void)} onerror
 */

/**
 * @typedef {object} ResponseLike
 * @property {number} status
 * @property {{get(name: string): string | null}} headers
 * @property {() => Promise<any>} json
 */

/**
 * @typedef {object} TransportContext what live.js gives a transport
 * @property {Env} env
 * @property {string} base http(s) origin and path prefix; '' for the page's own
 * @property {string} wsURL
 * @property {() => string[]} channels the current subscriptions
 * @property {(channel: string) => number | undefined} since where a WebSocket
 *   subscription resumes; undefined: subscribe afresh
 * @property {() => number | undefined} cursor where an SSE stream or a long-poll
 *   resumes; undefined: start afresh
 * @property {(channel: string) => boolean} isFresh not yet carried by any connection
 * @property {Map<string, string>} etags polling's ETag per channel, kept across reconnects
 * @property {() => void} opened the transport works (may be called again after a reopen)
 * @property {(ev: LiveEvent) => void} event an event, before duplicate filtering
 * @property {(id: number, channels: string[]) => void} advance the stream holds
 *   nothing more for these channels up to id
 * @property {(channel: string | undefined, id: number | undefined) => void} reset
 *   history lost (undefined channel: all of them)
 * @property {(msg: any) => void} message another server message, e.g. an error
 * @property {(f: Failure) => void} failed the transport stopped; no calls follow
 */

/**
 * @typedef {object} TransportHandle
 * @property {boolean} duplex can carry client messages
 * @property {(msg: object) => boolean} send true if sent now
 * @property {(channel: string, on: boolean) => void} update the channel set changed
 * @property {() => void} close stops silently: no callbacks afterwards
 * @property {() => void} [probe] the browser went offline: check the connection
 */

/** @type {(v: unknown) => v is Record<string, any>} */
export const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A non-negative safe integer from a number or a decimal string, else undefined.
 * @param {unknown} v
 * @returns {number | undefined}
 */
export function eventId(v) {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * The channel an event belongs to when the wire leaves it out: WebSocket
 * fleet and status events carry none, SSE events never do.
 * @param {string} type
 * @param {any} data
 * @returns {string | undefined}
 */
export function channelOf(type, data) {
  switch (type) {
    case 'fleet':
    case 'status':
      return 'fleet';
    case 'alert':
      return 'alerts';
    case 'reading':
      return isObject(data) && typeof data.device === 'string' && data.device ? `device:${data.device}` : undefined;
    default:
      return undefined;
  }
}

/**
 * The `channels` query value: comma-separated, each escaped, colons kept.
 * @param {string[]} channels
 */
export function channelsParam(channels) {
  return channels.map((c) => encodeURIComponent(c).replace(/%3A/gi, ':')).join(',');
}

/**
 * @param {string} base
 * @param {string[]} channels
 * @param {number} [lastEventId]
 */
export function sseURL(base, channels, lastEventId) {
  const q = `channels=${channelsParam(channels)}`;
  return `${base}/events?${q}${lastEventId === undefined ? '' : `&lastEventId=${lastEventId}`}`;
}

/**
 * @param {string} base
 * @param {string[]} channels
 * @param {number} [since]
 */
export function longPollURL(base, channels, since) {
  const s = since === undefined ? '' : `since=${since}&`;
  return `${base}/api/v1/poll?${s}timeout=${LONGPOLL_WAIT_S}s&channels=${channelsParam(channels)}`;
}

/**
 * Where polling finds a channel's state; null for channels it cannot poll (alerts).
 * @param {string} base
 * @param {string} channel
 * @returns {{url: string, type: string} | null}
 */
export function pollTarget(base, channel) {
  if (channel === 'fleet') return { url: `${base}/api/v1/fleet`, type: 'fleet' };
  if (channel.startsWith('device:') && channel.length > 7) {
    return { url: `${base}/api/v1/devices/${encodeURIComponent(channel.slice(7))}`, type: 'device' };
  }
  return null;
}

/**
 * A Retry-After header in milliseconds: delta-seconds or an HTTP date.
 * @param {string | null | undefined} value
 * @param {number} now Unix milliseconds
 * @returns {number | undefined} undefined when absent or unreadable
 */
export function parseRetryAfter(value, now) {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/^[A-Za-z]{3}, /.test(v)) return undefined; // an IMF-fixdate, e.g. "Wed, 01 May 2024 12:00:30 GMT"
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * How a transport fails on a non-success HTTP status.
 * @param {ResponseLike} res
 * @param {number} now
 * @param {boolean} opened whether this transport got through before
 * @returns {Failure}
 */
export function httpFailure(res, now, opened) {
  const status = res.status;
  const reason = `HTTP ${status}`;
  if (status === 404 || status === 405 || status === 501) return { beforeOpen: !opened, unsupported: true, status, reason };
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) return { fatal: true, status, reason };
  const retryAfterMs = parseRetryAfter(res.headers?.get?.('Retry-After'), now);
  return { beforeOpen: false, status, reason, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
}

/**
 * @param {string} type
 * @param {string | undefined} channel
 * @param {number | undefined} id
 * @param {any} data
 * @returns {LiveEvent}
 */
export function liveEvent(type, channel, id, data) {
  /** @type {LiveEvent} */
  const ev = { type };
  if (channel !== undefined) ev.channel = channel;
  if (id !== undefined) ev.id = id;
  ev.data = data;
  return ev;
}

/** @param {unknown} err */
export const why = (err) => (err instanceof Error ? err.message : String(err));

/**
 * A GET with a deadline, cancellable. The promise rejects on a network error
 * or the deadline; after cancel() nobody should care how it settles.
 * @param {Env} env
 * @param {string} url
 * @param {Record<string, string>} headers
 * @param {number} ms
 */
export function request(env, url, headers, ms) {
  const ctrl = env.AbortController ? new env.AbortController() : null;
  /** @type {unknown} */
  let timer = null;
  const promise = new Promise((resolve, reject) => {
    timer = env.setTimeout(() => {
      timer = null;
      ctrl?.abort();
      reject(new Error('timed out'));
    }, ms);
    /** @type {Promise<ResponseLike>} */
    let p;
    try {
      p = Promise.resolve(env.fetch(url, { headers, cache: 'no-store', ...(ctrl ? { signal: ctrl.signal } : {}) }));
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(resolve, reject)
      .finally(() => {
        if (timer !== null) env.clearTimeout(timer);
        timer = null;
      });
  });
  promise.catch(() => {}); // the caller may have cancelled and stopped listening
  return {
    /** @type {Promise<ResponseLike>} */ promise: /** @type {any} */ (promise),
    cancel() {
      if (timer !== null) env.clearTimeout(timer);
      timer = null;
      ctrl?.abort();
    },
  };
}

/**
 * Fetches the fleet over HTTP for a stream that has no snapshot of its own.
 * @param {TransportContext} ctx
 * @param {(r: {cancel(): void}) => void} track keeps the request for cancelling (harmless once done)
 * @returns {Promise<{ok: true} | {ok: false, failure: Failure}>}
 */
export async function fetchFleet(ctx, track) {
  const r = request(ctx.env, `${ctx.base}/api/v1/fleet`, { Accept: 'application/json' }, REQUEST_TIMEOUT_MS);
  track(r);
  try {
    const res = await r.promise;
    if (res.status !== 200) return { ok: false, failure: httpFailure(res, ctx.env.now(), true) };
    const data = await res.json();
    ctx.event({ type: 'fleet', channel: 'fleet', data });
    return { ok: true };
  } catch (err) {
    return { ok: false, failure: { beforeOpen: false, reason: `fleet snapshot: ${why(err)}` } };
  }
}
