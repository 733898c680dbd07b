// The two streaming transports, WebSocket and server-sent events, on the
// contract and wire helpers of transports.js; long-poll and polling are in
// polling.js.

import {
  CONNECT_TIMEOUT_MS,
  DEAD_AFTER_MS,
  EVENT_TYPES,
  OFFLINE_PROBE_MS,
  PING_INTERVAL_MS,
  channelOf,
  eventId,
  fetchFleet,
  isObject,
  liveEvent,
  sseURL,
  why,
} from './transports.js';

/** @typedef {import('./transports.js').Failure} Failure */
/** @typedef {import('./transports.js').WebSocketLike} WebSocketLike */
/** @typedef {import('./transports.js').EventSourceLike} EventSourceLike */
/** @typedef {import('./transports.js').TransportContext} TransportContext */
/** @typedef {import('./transports.js').TransportHandle} TransportHandle */

const WS_CONNECTING = 0;
const WS_OPEN = 1;

/**
 * WebSocket at ctx.wsURL: subscribes every channel on open (with `since`
 * where known), pings every PING_INTERVAL_MS, and gives up on a connection
 * silent for DEAD_AFTER_MS; a `cut` is an ordinary disconnect.
 * @param {TransportContext} ctx
 * @returns {TransportHandle}
 */
export function wsTransport(ctx) {
  const { env } = ctx;
  /** @type {WebSocketLike | null} */
  let sock = null;
  let opened = false;
  let dead = false;
  /** @type {unknown} */ let pingTimer = null;
  /** @type {unknown} */ let watchdog = null;

  function stop() {
    dead = true;
    if (pingTimer !== null) env.clearTimeout(pingTimer);
    if (watchdog !== null) env.clearTimeout(watchdog);
    pingTimer = watchdog = null;
    const s = sock;
    sock = null;
    if (!s) return;
    s.onopen = s.onmessage = s.onclose = s.onerror = null;
    if (s.readyState === WS_CONNECTING || s.readyState === WS_OPEN) {
      try {
        s.close();
      } catch {
        // already closing
      }
    }
  }

  /** @param {Failure} f */
  function fail(f) {
    if (dead) return;
    stop();
    ctx.failed(f);
  }

  // A connection that says nothing for `ms` is replaced: TCP can take many
  // minutes to notice a vanished peer (Wi-Fi drop, hub power loss).
  /** @param {number} ms */
  function arm(ms) {
    if (watchdog !== null) env.clearTimeout(watchdog);
    watchdog = env.setTimeout(() => {
      watchdog = null;
      fail({ beforeOpen: !opened, reason: opened ? 'no answer from the hub' : 'connect timed out' });
    }, ms);
  }

  /** @param {object} msg */
  function send(msg) {
    if (dead || !sock || sock.readyState !== WS_OPEN) return false;
    sock.send(JSON.stringify(msg));
    return true;
  }

  /** @param {string} channel */
  function subscribe(channel) {
    const since = ctx.since(channel);
    send(since === undefined ? { type: 'subscribe', channel } : { type: 'subscribe', channel, since });
  }

  function schedulePing() {
    pingTimer = env.setTimeout(() => {
      pingTimer = null;
      send({ type: 'ping' });
      schedulePing();
    }, PING_INTERVAL_MS);
  }

  /** @param {any} msg */
  function onMessage(msg) {
    switch (msg.type) {
      case 'pong':
      case 'subscribed':
      case 'unsubscribed':
        return;
      case 'reset':
        ctx.reset(typeof msg.channel === 'string' ? msg.channel : undefined, eventId(msg.id));
        return;
      case 'cut':
        fail({ beforeOpen: false, reason: `cut by the hub: ${String(msg.reason ?? '')}` });
        return;
      default:
        if (EVENT_TYPES.includes(msg.type)) {
          const channel = typeof msg.channel === 'string' ? msg.channel : channelOf(msg.type, msg.data);
          ctx.event(liveEvent(msg.type, channel, eventId(msg.id), msg.data));
        } else {
          ctx.message(msg);
        }
    }
  }

  try {
    sock = new env.WebSocket(ctx.wsURL);
  } catch (err) {
    // A malformed URL or a blocked port throws synchronously.
    fail({ beforeOpen: true, reason: why(err) });
    return { duplex: true, send, update() {}, close: stop };
  }
  arm(CONNECT_TIMEOUT_MS);
  sock.onopen = () => {
    opened = true;
    for (const channel of ctx.channels()) subscribe(channel);
    schedulePing();
    arm(DEAD_AFTER_MS);
    ctx.opened();
  };
  sock.onmessage = (ev) => {
    arm(DEAD_AFTER_MS);
    let msg;
    try {
      msg = JSON.parse(String(ev.data));
    } catch {
      return; // not ours to show; the next good message carries on
    }
    if (isObject(msg)) onMessage(msg);
  };
  // Browsers always follow error with close, so close alone drives retries.
  sock.onerror = () => {};
  sock.onclose = () => fail({ beforeOpen: !opened, reason: 'connection closed' });

  return {
    duplex: true,
    send,
    update(channel, on) {
      if (!opened) return; // every channel goes out on open
      if (on) subscribe(channel);
      else send({ type: 'unsubscribe', channel });
    },
    close: stop,
    probe() {
      // The socket may still work (a hub on the LAN with the uplink down),
      // so ask it instead of assuming: any reply re-arms the normal watchdog.
      if (!send({ type: 'ping' })) return;
      arm(OFFLINE_PROBE_MS);
    },
  };
}

/** SSE event names carrying live events. */
const SSE_EVENTS = EVENT_TYPES;

/**
 * Server-sent events from /events. The stream is one sequence in id order
 * over its channels, so each event id also advances every channel of the
 * stream. Reconnects are ours, not EventSource's: on any error the source is
 * closed and live.js decides when to open the next, with `lastEventId`.
 * Changing the channel set reopens the stream.
 * @param {TransportContext} ctx
 * @returns {TransportHandle}
 */
export function sseTransport(ctx) {
  const { env } = ctx;
  /** @type {EventSourceLike | null} */
  let es = null;
  let opened = false;
  let dead = false;
  /** @type {unknown} */ let timer = null;
  /** @type {{cancel(): void} | null} */ let snap = null;
  /** @type {string[]} */ let chans = [];

  function closeStream() {
    if (timer !== null) env.clearTimeout(timer);
    timer = null;
    snap?.cancel();
    snap = null;
    const s = es;
    es = null;
    if (!s) return;
    s.onopen = s.onerror = null;
    try {
      s.close();
    } catch {
      // nothing to close
    }
  }

  /** @param {Failure} f */
  function fail(f) {
    if (dead) return;
    dead = true;
    closeStream();
    ctx.failed(f);
  }

  /** @param {{data?: string, lastEventId?: string}} ev */
  function parse(ev) {
    try {
      return JSON.parse(String(ev.data));
    } catch {
      return undefined;
    }
  }

  function start() {
    closeStream();
    chans = ctx.channels();
    const cursor = ctx.cursor();
    // A fresh stream opens with the fleet snapshot; a resumed one does not,
    // so a channel new to us gets its snapshot over HTTP.
    const needFleet = cursor !== undefined && chans.includes('fleet') && ctx.isFresh('fleet');
    /** @type {EventSourceLike} */
    let src;
    try {
      src = new env.EventSource(sseURL(ctx.base, chans, cursor));
    } catch (err) {
      fail({ beforeOpen: !opened, reason: why(err) });
      return;
    }
    es = src;
    timer = env.setTimeout(() => {
      timer = null;
      fail({ beforeOpen: !opened, reason: 'connect timed out' });
    }, CONNECT_TIMEOUT_MS);
    src.onopen = () => {
      if (timer !== null) env.clearTimeout(timer);
      timer = null;
      opened = true;
      ctx.opened();
      if (needFleet && !dead && es === src) {
        fetchFleet(ctx, (r) => (snap = r)).then((r) => {
          if (!r.ok && !dead && es === src) fail(r.failure);
        });
      }
    };
    src.onerror = (ev) => {
      // A server event named "error" lands here too, with data; older hubs
      // send one just before cutting a client off.
      const server = ev && typeof ev.data === 'string';
      fail({ beforeOpen: !opened && !server, reason: server ? `hub: ${ev.data}` : 'stream failed' });
    };
    for (const type of SSE_EVENTS) {
      src.addEventListener(type, (ev) => {
        if (dead || es !== src) return;
        const data = parse(ev);
        if (data === undefined) return;
        const id = eventId(ev.lastEventId);
        const channel = isObject(data) && typeof data.channel === 'string' ? data.channel : channelOf(type, data);
        ctx.event(liveEvent(type, channel, id, data));
        if (id !== undefined && !dead && es === src) ctx.advance(id, chans);
      });
    }
    src.addEventListener('reset', (ev) => {
      if (dead || es !== src) return;
      const data = parse(ev);
      const id = eventId(isObject(data) ? data.id : undefined) ?? eventId(ev.lastEventId);
      ctx.reset(isObject(data) && typeof data.channel === 'string' ? data.channel : undefined, id);
    });
    src.addEventListener('cut', (ev) => {
      if (dead || es !== src) return;
      const data = parse(ev);
      fail({ beforeOpen: false, reason: `cut by the hub: ${isObject(data) ? String(data.reason ?? '') : ''}` });
    });
  }

  start();
  return {
    duplex: false,
    send: () => false,
    update() {
      if (!dead) start();
    },
    close() {
      dead = true;
      closeStream();
    },
  };
}
