// Coming back after a disconnect: how long to wait (jittered exponential
// backoff, the hub's Retry-After) and where to resume (per-channel event
// positions). Pure: no timers, no network.

/** First reconnect delay, before jitter. */
export const BACKOFF_START_MS = 500;
/** Longest reconnect delay, jitter included. */
export const BACKOFF_CAP_MS = 30_000;
/** A Retry-After longer than this is taken as this. */
export const RETRY_AFTER_CAP_MS = 10 * 60_000;

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
 * The delay before the next attempt: the backoff, or the hub's Retry-After
 * if that is longer (clamped to RETRY_AFTER_CAP_MS).
 * @param {number} attempt
 * @param {number | undefined} retryAfterMs
 * @param {() => number} [rand]
 */
export function nextDelay(attempt, retryAfterMs, rand = Math.random) {
  const b = backoffDelay(attempt, rand);
  if (!(typeof retryAfterMs === 'number' && retryAfterMs > 0)) return b;
  return Math.max(b, Math.min(retryAfterMs, RETRY_AFTER_CAP_MS));
}

/**
 * Resume positions. Ids are one sequence across channels, but a WebSocket
 * resubscription replays only its own channel, after live events of other
 * channels, so a connection is not in id order across channels. Hence one
 * position per channel: "every event of this channel up to here has been
 * delivered". An event at or below its channel's position is a duplicate and
 * dropped, except a fleet snapshot at exactly the position (snapshots are
 * idempotent, and one follows a reset at that id).
 *
 * A channel is fresh from subscribe() until a connection carries it; a fresh
 * WebSocket channel subscribes without `since`. When a connection takes it
 * on, its position is floored at the highest id seen: an event from before
 * the subscription is not owed to it. SSE and long-poll are one ordered
 * stream over their channels, so their ids advance all of them (`advance`)
 * and they resume from the lowest position (`cursor`); what that replays
 * twice is dropped here.
 */
export function createPositions() {
  /** @type {Map<string, number>} */
  const pos = new Map();
  /** @type {Set<string>} */
  const fresh = new Set();
  /** @type {number | undefined} */
  let top;

  /** @param {number} id */
  const raiseTop = (id) => {
    if (top === undefined || id > top) top = id;
  };

  return {
    /** The highest id seen. */
    get last() {
      return top;
    },
    /** @param {string} channel */
    position: (channel) => pos.get(channel),
    /** @param {string} channel subscribed: fresh until carried */
    add(channel) {
      fresh.add(channel);
    },
    /** @param {string} channel unsubscribed: forgotten */
    remove(channel) {
      fresh.delete(channel);
      pos.delete(channel);
    },
    /** @param {string} channel */
    isFresh: (channel) => fresh.has(channel),
    /** @param {Iterable<string>} channels now carried by a connection */
    carried(channels) {
      for (const ch of channels) {
        if (!fresh.delete(ch) || top === undefined) continue;
        const p = pos.get(ch);
        if (p === undefined || p < top) pos.set(ch, top);
      }
    },
    /**
     * Where a WebSocket subscription resumes; undefined: afresh.
     * @param {string} channel
     */
    since: (channel) => (fresh.has(channel) ? undefined : pos.get(channel)),
    /**
     * Where one stream over `channels` resumes: the lowest known position.
     * @param {Iterable<string>} channels
     * @returns {number | undefined}
     */
    cursor(channels) {
      /** @type {number | undefined} */
      let min;
      for (const ch of channels) {
        const p = fresh.has(ch) ? undefined : pos.get(ch);
        if (p !== undefined && (min === undefined || p < min)) min = p;
      }
      return min;
    },
    /**
     * Records an event; false if it is a duplicate or older than its channel's position.
     * @param {{type: string, channel?: string, id?: number}} ev
     */
    accept(ev) {
      const id = ev.id;
      if (typeof id !== 'number') return true; // polled snapshots carry no id
      if (ev.channel) {
        const p = pos.get(ev.channel);
        if (p !== undefined && (id < p || (id === p && ev.type !== 'fleet'))) return false;
        pos.set(ev.channel, id);
      }
      raiseTop(id);
      return true;
    },
    /**
     * @param {number} id
     * @param {Iterable<string>} channels a stream holds nothing more for them up to id
     */
    advance(id, channels) {
      for (const ch of channels) {
        const p = pos.get(ch);
        if (p === undefined || p < id) pos.set(ch, id);
      }
      raiseTop(id);
    },
    /**
     * History lost: the hub's id is adopted as is, even a lower one.
     * @param {string} channel
     * @param {number} id
     */
    reset(channel, id) {
      fresh.delete(channel);
      pos.set(channel, id);
      top = undefined;
      for (const p of pos.values()) raiseTop(p);
    },
  };
}
