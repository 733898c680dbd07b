// The HTTP transports: long-poll on /api/v1/poll and plain polling of
// /api/v1/fleet and /api/v1/devices/{id}, for networks where neither a
// WebSocket nor an event stream gets through. See transports.js for the
// contract they implement.

import {
  LONGPOLL_MIN_GAP_MS,
  LONGPOLL_TIMEOUT_MS,
  POLL_INTERVAL_MS,
  REQUEST_TIMEOUT_MS,
  channelOf,
  eventId,
  fetchFleet,
  httpFailure,
  isObject,
  liveEvent,
  longPollURL,
  pollTarget,
  request,
  why,
} from './transports.js';

/** @typedef {import('./transports.js').TransportContext} TransportContext */
/** @typedef {import('./transports.js').TransportHandle} TransportHandle */
/** @typedef {import('./transports.js').ResponseLike} ResponseLike */
/** @typedef {import('./transports.js').Failure} Failure */

/**
 * Long-poll on /api/v1/poll: one request at a time, re-issued as soon as the
 * previous answers, each resuming from the `last_id` before it. The first
 * request, without `since`, only fixes the start point; the fleet snapshot
 * then comes from /api/v1/fleet, as it does after a reset.
 * @param {TransportContext} ctx
 * @returns {TransportHandle}
 */
export function longPollTransport(ctx) {
  const { env } = ctx;
  let dead = false;
  let opened = false;
  let round = 0;
  /** @type {{cancel(): void} | null} */ let req = null;
  /** @type {unknown} */ let gapTimer = null;

  /** @param {number} my */
  const stale = (my) => dead || my !== round;

  function cancel() {
    req?.cancel();
    req = null;
    if (gapTimer !== null) env.clearTimeout(gapTimer);
    gapTimer = null;
  }

  /** @param {Failure} f */
  function fail(f) {
    if (dead) return;
    dead = true;
    cancel();
    ctx.failed(f);
  }

  async function loop() {
    cancel();
    const my = ++round;
    const chans = ctx.channels();
    const since = ctx.cursor();
    let needFleet = chans.includes('fleet') && (since === undefined || ctx.isFresh('fleet'));
    const began = env.now();
    const r = request(env, longPollURL(ctx.base, chans, since), { Accept: 'application/json' }, LONGPOLL_TIMEOUT_MS);
    req = r;
    /** @type {ResponseLike} */ let res;
    /** @type {any} */ let body;
    try {
      res = await r.promise;
      if (stale(my)) return;
      if (res.status !== 200) {
        fail(httpFailure(res, env.now(), opened));
        return;
      }
      body = await res.json();
    } catch (err) {
      if (!stale(my)) fail({ beforeOpen: !opened, reason: why(err) });
      return;
    }
    if (stale(my)) return;
    req = null;
    if (!isObject(body)) {
      fail({ beforeOpen: !opened, reason: 'unexpected poll answer' });
      return;
    }
    if (!opened) {
      opened = true;
      ctx.opened();
      if (stale(my)) return;
    }
    const last = eventId(body.last_id);
    const events = Array.isArray(body.events) ? body.events : [];
    if (body.reset === true) {
      ctx.reset(undefined, last);
      needFleet = chans.includes('fleet');
    } else {
      for (const e of events) {
        if (!isObject(e) || typeof e.type !== 'string') continue;
        const channel = typeof e.channel === 'string' ? e.channel : channelOf(e.type, e.data);
        ctx.event(liveEvent(e.type, channel, eventId(e.id), e.data));
        if (stale(my)) return;
      }
    }
    if (last !== undefined) ctx.advance(last, chans);
    if (stale(my)) return;
    if (needFleet) {
      const got = await fetchFleet(ctx, (x) => (req = x));
      if (stale(my)) return;
      if (!got.ok) {
        fail(got.failure);
        return;
      }
    }
    // An empty answer well before the hold ran out means something between
    // us and the hub does not hold requests: do not spin.
    const quick = since !== undefined && events.length === 0 && body.reset !== true && env.now() - began < LONGPOLL_MIN_GAP_MS;
    if (quick) {
      gapTimer = env.setTimeout(() => {
        gapTimer = null;
        if (!stale(my)) loop();
      }, LONGPOLL_MIN_GAP_MS);
    } else {
      loop();
    }
  }

  loop();
  return {
    duplex: false,
    send: () => false,
    update() {
      // Re-issue at once with the new channel set; the old answer is ignored.
      if (!dead) loop();
    },
    close() {
      dead = true;
      cancel();
    },
  };
}

/**
 * Polling: every POLL_INTERVAL_MS, GET /api/v1/fleet and /api/v1/devices/{id}
 * for the subscribed channels, with If-None-Match; a 304 is no news. Emits
 * {type: "fleet"} and {type: "device"} snapshots without ids. The alerts
 * channel cannot be polled and is skipped.
 * @param {TransportContext} ctx
 * @returns {TransportHandle}
 */
export function pollTransport(ctx) {
  const { env } = ctx;
  let dead = false;
  let opened = false;
  let busy = false;
  let again = false;
  /** @type {unknown} */ let timer = null;
  /** @type {{cancel(): void}[]} */ let reqs = [];

  function cancel() {
    for (const r of reqs) r.cancel();
    reqs = [];
    if (timer !== null) env.clearTimeout(timer);
    timer = null;
  }

  /** @param {Failure} f */
  function fail(f) {
    if (dead) return;
    dead = true;
    cancel();
    ctx.failed(f);
  }

  /**
   * @param {string} channel
   * @param {{url: string, type: string}} target
   */
  async function one(channel, target) {
    const etag = ctx.etags.get(channel);
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json' };
    if (etag) headers['If-None-Match'] = etag;
    const r = request(env, target.url, headers, REQUEST_TIMEOUT_MS);
    reqs.push(r);
    try {
      const res = await r.promise;
      if (res.status === 304) return { channel };
      if (res.status === 404 && target.type === 'device') return { channel }; // no such device (yet)
      if (res.status !== 200) return { channel, failure: httpFailure(res, env.now(), opened) };
      const data = await res.json();
      return { channel, data, type: target.type, etag: res.headers?.get?.('ETag') ?? null };
    } catch (err) {
      return { channel, failure: /** @type {Failure} */ ({ beforeOpen: !opened, reason: why(err) }) };
    }
  }

  async function tick() {
    timer = null;
    busy = true;
    again = false;
    const jobs = [];
    for (const channel of ctx.channels()) {
      const target = pollTarget(ctx.base, channel);
      if (target) jobs.push(one(channel, target));
    }
    const results = await Promise.all(jobs);
    busy = false;
    reqs = [];
    if (dead) return;
    const bad = results.find((x) => x.failure);
    if (bad?.failure) {
      fail(bad.failure);
      return;
    }
    if (!opened) {
      opened = true;
      ctx.opened();
      if (dead) return;
    }
    const subscribed = new Set(ctx.channels());
    for (const x of results) {
      if (x.data === undefined || !subscribed.has(x.channel)) continue;
      if (x.etag) ctx.etags.set(x.channel, x.etag);
      else ctx.etags.delete(x.channel);
      ctx.event({ type: /** @type {string} */ (x.type), channel: x.channel, data: x.data });
      if (dead) return;
    }
    if (again) tick();
    else timer = env.setTimeout(tick, POLL_INTERVAL_MS);
  }

  tick();
  return {
    duplex: false,
    send: () => false,
    update(channel, on) {
      if (dead || !on) return;
      // A new channel is fetched now rather than at the next tick.
      if (busy) again = true;
      else {
        if (timer !== null) env.clearTimeout(timer);
        tick();
      }
    },
    close() {
      dead = true;
      cancel();
    },
  };
}
