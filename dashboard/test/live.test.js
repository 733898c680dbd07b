import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BACKOFF_CAP_MS,
  BACKOFF_START_MS,
  CONNECT_TIMEOUT_MS,
  DEAD_AFTER_MS,
  OFFLINE_AFTER_MS,
  PING_INTERVAL_MS,
  QUEUE_LIMIT,
  RETRY_AFTER_CAP_MS,
  backoffDelay,
  createLive,
  createPositions,
  nextDelay,
  socketURL,
  wsURLFor,
} from '../static/js/live.js';
import {
  channelOf,
  eventId,
  httpFailure,
  longPollURL,
  parseRetryAfter,
  pollTarget,
  sseURL,
} from '../static/js/transports.js';
import { harness } from './live-fakes.js';

// ---- pure parts ----

test('backoffDelay starts at 500 ms and doubles', () => {
  const mid = () => 0.5; // no jitter
  assert.equal(backoffDelay(0, mid), BACKOFF_START_MS);
  assert.equal(backoffDelay(1, mid), 1000);
  assert.equal(backoffDelay(2, mid), 2000);
  assert.equal(backoffDelay(5, mid), 16000);
});

test('backoffDelay is capped at 30 s, jitter included', () => {
  for (const attempt of [6, 7, 10, 50, 1e6, Infinity]) {
    for (const r of [0, 0.5, 0.999999]) {
      const d = backoffDelay(attempt, () => r);
      assert.ok(d <= BACKOFF_CAP_MS, `attempt ${attempt} rand ${r}: ${d}`);
      assert.ok(d >= BACKOFF_CAP_MS * 0.8 - 1 || attempt === 6, `attempt ${attempt} rand ${r}: ${d}`);
    }
  }
  assert.equal(backoffDelay(100, () => 0.5), BACKOFF_CAP_MS);
});

test('backoffDelay jitter spans ±20 %', () => {
  assert.equal(backoffDelay(0, () => 0), 400);
  assert.equal(backoffDelay(0, () => 0.999999), 600);
  assert.equal(backoffDelay(3, () => 0), 3200);
  // Bad attempts and bad random sources do not produce NaN or huge delays.
  assert.equal(backoffDelay(-3, () => 0.5), BACKOFF_START_MS);
  assert.equal(backoffDelay(NaN, () => 0.5), BACKOFF_START_MS);
  assert.equal(backoffDelay(0, () => NaN), 400);
  assert.equal(backoffDelay(0, () => 7), 600);
});

test('backoffDelay grows monotonically without jitter', () => {
  let prev = 0;
  for (let i = 0; i < 20; i++) {
    const d = backoffDelay(i, () => 0.5);
    assert.ok(d >= prev, `attempt ${i}: ${d} < ${prev}`);
    prev = d;
  }
});

test('nextDelay takes the longer of backoff and Retry-After, capped', () => {
  const mid = () => 0.5;
  assert.equal(nextDelay(0, undefined, mid), 500);
  assert.equal(nextDelay(0, 7000, mid), 7000);
  assert.equal(nextDelay(5, 7000, mid), 16000, 'a short Retry-After does not shorten the backoff');
  assert.equal(nextDelay(0, 0, mid), 500);
  assert.equal(nextDelay(0, -5, mid), 500);
  assert.equal(nextDelay(0, 86_400_000, mid), RETRY_AFTER_CAP_MS);
});

test('parseRetryAfter reads seconds and HTTP dates', () => {
  const now = Date.parse('2024-05-01T12:00:00Z');
  assert.equal(parseRetryAfter('7', now), 7000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Wed, 01 May 2024 12:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Wed, 01 May 2024 11:00:00 GMT', now), 0, 'a past date means now');
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter('-3', now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});

test('httpFailure sorts statuses', () => {
  /** @param {number} status @param {Record<string, string>} [hdr] */
  const res = (status, hdr = {}) => ({ status, headers: { get: (/** @type {string} */ n) => hdr[n] ?? null }, json: async () => null });
  assert.deepEqual(httpFailure(res(429, { 'Retry-After': '3' }), 0, false), { beforeOpen: false, status: 429, reason: 'HTTP 429', retryAfterMs: 3000 });
  assert.deepEqual(httpFailure(res(503), 0, true), { beforeOpen: false, status: 503, reason: 'HTTP 503' });
  assert.equal(httpFailure(res(500), 0, true).fatal, undefined);
  assert.equal(httpFailure(res(408), 0, true).fatal, undefined);
  for (const s of [400, 401, 403, 410, 422]) assert.equal(httpFailure(res(s), 0, true).fatal, true, `${s}`);
  for (const s of [404, 405, 501]) assert.equal(httpFailure(res(s), 0, false).unsupported, true, `${s}`);
});

test('socketURL follows the page scheme', () => {
  assert.equal(socketURL({ protocol: 'http:', host: 'hub.local:8080' }), 'ws://hub.local:8080/ws');
  assert.equal(socketURL({ protocol: 'https:', host: 'hub.example' }), 'wss://hub.example/ws');
  assert.equal(socketURL({ protocol: 'http:', host: 'h' }, '/x'), 'ws://h/x');
  assert.equal(wsURLFor('', { protocol: 'https:', host: 'h' }), 'wss://h/ws');
  assert.equal(wsURLFor('/fw', { protocol: 'http:', host: 'h' }), 'ws://h/fw/ws');
  assert.equal(wsURLFor('https://hub:8443', undefined), 'wss://hub:8443/ws');
  assert.equal(wsURLFor('http://hub', undefined), 'ws://hub/ws');
});

test('URLs for SSE, long-poll and polling', () => {
  assert.equal(sseURL('', ['fleet', 'device:pi 1']), '/events?channels=fleet,device:pi%201');
  assert.equal(sseURL('http://h', ['fleet'], 42), 'http://h/events?channels=fleet&lastEventId=42');
  assert.equal(longPollURL('', ['fleet', 'alerts']), '/api/v1/poll?timeout=25s&channels=fleet,alerts');
  assert.equal(longPollURL('', ['fleet'], 7), '/api/v1/poll?since=7&timeout=25s&channels=fleet');
  assert.deepEqual(pollTarget('', 'fleet'), { url: '/api/v1/fleet', type: 'fleet' });
  assert.deepEqual(pollTarget('', 'device:a/b'), { url: '/api/v1/devices/a%2Fb', type: 'device' });
  assert.equal(pollTarget('', 'alerts'), null);
  assert.equal(pollTarget('', 'device:'), null);
});

test('channelOf and eventId', () => {
  assert.equal(channelOf('fleet', {}), 'fleet');
  assert.equal(channelOf('status', { device: 'a' }), 'fleet');
  assert.equal(channelOf('alert', {}), 'alerts');
  assert.equal(channelOf('reading', { device: 'pi-1' }), 'device:pi-1');
  assert.equal(channelOf('reading', {}), undefined);
  assert.equal(channelOf('other', {}), undefined);
  assert.equal(eventId(5), 5);
  assert.equal(eventId('1714564800000000'), 1714564800000000, 'the hub’s clock-based ids fit');
  for (const bad of ['', '1e3', '-1', 1.5, -2, NaN, null, undefined, '9007199254740993']) assert.equal(eventId(bad), undefined, String(bad));
});

test('positions: duplicates and older ids are dropped per channel', () => {
  const p = createPositions();
  p.add('fleet');
  p.add('device:a');
  assert.equal(p.since('fleet'), undefined, 'fresh');
  p.carried(['fleet', 'device:a']);
  assert.equal(p.since('fleet'), undefined, 'nothing seen yet: still no position');
  assert.ok(p.accept({ type: 'fleet', channel: 'fleet', id: 10 }));
  assert.ok(p.accept({ type: 'reading', channel: 'device:a', id: 12 }));
  assert.ok(!p.accept({ type: 'reading', channel: 'device:a', id: 12 }), 'duplicate');
  assert.ok(!p.accept({ type: 'reading', channel: 'device:a', id: 11 }), 'older');
  // Another channel's replay may arrive after newer live events: not a duplicate.
  assert.ok(p.accept({ type: 'fleet', channel: 'fleet', id: 11 }));
  assert.ok(p.accept({ type: 'fleet', channel: 'fleet', id: 11 }), 'a fleet snapshot at the position is kept');
  assert.ok(!p.accept({ type: 'status', channel: 'fleet', id: 11 }));
  assert.ok(p.accept({ type: 'fleet', data: {} }), 'no id: polled snapshot');
  assert.equal(p.since('fleet'), 11);
  assert.equal(p.since('device:a'), 12);
  assert.equal(p.cursor(['fleet', 'device:a']), 11);
  assert.equal(p.last, 12);
});

test('positions: a fresh channel is floored at the last id once carried', () => {
  const p = createPositions();
  p.add('fleet');
  p.carried(['fleet']);
  p.accept({ type: 'fleet', channel: 'fleet', id: 50 });
  p.add('device:b');
  assert.equal(p.since('device:b'), undefined);
  assert.equal(p.cursor(['fleet', 'device:b']), 50, 'fresh channels do not hold the cursor back');
  p.carried(['device:b']);
  assert.equal(p.since('device:b'), 50);
  assert.ok(!p.accept({ type: 'reading', channel: 'device:b', id: 49 }), 'from before the subscription');
  p.advance(60, ['fleet', 'device:b']);
  assert.equal(p.since('fleet'), 60);
  assert.equal(p.since('device:b'), 60);
  p.remove('device:b');
  assert.equal(p.since('device:b'), undefined);
  // A reset adopts the hub's id, even a lower one (ids from a previous run).
  p.reset('fleet', 5);
  assert.equal(p.since('fleet'), 5);
  assert.equal(p.last, 5);
  assert.ok(p.accept({ type: 'fleet', channel: 'fleet', id: 5 }), 'the snapshot after a reset');
  assert.ok(p.accept({ type: 'status', channel: 'fleet', id: 6 }));
});

// ---- WebSocket state machine ----

test('connects, subscribes and reports live', () => {
  const h = harness();
  const client = h.create();
  assert.deepEqual(h.states, ['connecting']);
  assert.equal(client.transport, 'ws');
  assert.equal(h.socket.url, 'ws://hub/ws');
  h.socket.accept();
  assert.deepEqual(h.states, ['connecting', 'live']);
  assert.equal(h.details[1].transport, 'ws');
  assert.deepEqual(h.socket.sent, [{ type: 'subscribe', channel: 'fleet' }]);
});

test('the page origin is the default base', () => {
  const h = harness();
  h.env.location = { protocol: 'https:', host: 'fleet.example' };
  h.create({ url: '' });
  assert.equal(h.socket.url, 'wss://fleet.example/ws');
});

test('forwards events and hub errors, not pongs, acks or garbage', () => {
  const h = harness();
  h.create();
  h.socket.accept();
  h.socket.push({ type: 'pong' });
  h.socket.push({ type: 'subscribed', channel: 'fleet' });
  h.socket.push('not json');
  h.socket.push('42');
  h.socket.push({ type: 'fleet', id: 7, data: { devices: [] } });
  h.socket.push({ type: 'reading', channel: 'device:a', id: 8, data: { device: 'a' } });
  h.socket.push({ type: 'alert', id: 9, data: { rule: 'hot' } });
  h.socket.push({ type: 'error', error: 'bad message' });
  assert.deepEqual(h.events, [
    { type: 'fleet', channel: 'fleet', id: 7, data: { devices: [] } },
    { type: 'reading', channel: 'device:a', id: 8, data: { device: 'a' } },
    { type: 'alert', channel: 'alerts', id: 9, data: { rule: 'hot' } },
    { type: 'error', error: 'bad message' },
  ]);
});

test('reconnects with backoff and resubscribes', () => {
  const h = harness();
  const client = h.create();
  h.socket.accept();
  client.subscribe('device:pi-1');
  assert.deepEqual(h.socket.sent.at(-1), { type: 'subscribe', channel: 'device:pi-1' });

  h.socket.drop();
  assert.equal(client.state, 'reconnecting');
  assert.equal(h.sockets.length, 1, 'waits before retrying');
  h.advance(BACKOFF_START_MS - 1);
  assert.equal(h.sockets.length, 1);
  h.advance(1);
  assert.equal(h.sockets.length, 2);

  h.socket.drop(); // second failure waits twice as long
  h.advance(999);
  assert.equal(h.sockets.length, 2);
  h.advance(1);
  assert.equal(h.sockets.length, 3);

  h.socket.accept();
  assert.equal(client.state, 'live');
  assert.deepEqual(h.socket.sent, [
    { type: 'subscribe', channel: 'fleet' },
    { type: 'subscribe', channel: 'device:pi-1' },
  ]);

  // A successful open resets the backoff.
  h.socket.drop();
  h.advance(BACKOFF_START_MS);
  assert.equal(h.sockets.length, 4);
  assert.deepEqual(h.states, ['connecting', 'live', 'reconnecting', 'live', 'reconnecting']);
});

test('backoff grows with jitter and stays under the cap', () => {
  const h = harness();
  h.create();
  const rands = [0, 0.999, 0.3, 0.7];
  for (let i = 0; i < 12; i++) {
    h.rand = rands[i % rands.length];
    const n = h.sockets.length;
    h.socket.drop();
    let waited = 0;
    while (h.sockets.length === n) {
      h.advance(10);
      waited += 10;
    }
    assert.ok(waited <= BACKOFF_CAP_MS + 10, `attempt ${i} waited ${waited}`);
    assert.ok(Math.abs(waited - backoffDelay(i, () => rands[i % rands.length])) <= 10, `attempt ${i} waited ${waited}`);
  }
});

test('resubscribes with since after a reconnect and drops replayed duplicates', () => {
  const h = harness();
  const client = h.create({ channels: ['fleet', 'device:a'] });
  h.socket.accept();
  h.socket.push({ type: 'fleet', id: 100, data: { v: 1 } });
  h.socket.push({ type: 'reading', channel: 'device:a', id: 105, data: { device: 'a', n: 1 } });
  h.socket.push({ type: 'status', id: 106, data: { device: 'a' } });
  h.socket.drop();
  h.advance(BACKOFF_START_MS);
  h.socket.accept();
  assert.deepEqual(h.socket.sent, [
    { type: 'subscribe', channel: 'fleet', since: 106 },
    { type: 'subscribe', channel: 'device:a', since: 105 },
  ]);
  h.events.length = 0;
  // The hub replays each channel from its `since`; a duplicate is dropped and
  // an older id of one channel after a newer one of another is still news.
  h.socket.push({ type: 'status', id: 106, data: { device: 'a' } });
  h.socket.push({ type: 'fleet', id: 110, data: { v: 2 } });
  h.socket.push({ type: 'reading', channel: 'device:a', id: 105, data: { device: 'a', n: 1 } });
  h.socket.push({ type: 'reading', channel: 'device:a', id: 108, data: { device: 'a', n: 2 } });
  h.socket.push({ type: 'fleet', id: 109, data: { v: 0 } });
  assert.deepEqual(
    h.events.map((e) => e.id),
    [110, 108],
  );
  assert.equal(client.state, 'live');
});

test('a channel added while live subscribes afresh, and resumes after a reconnect', () => {
  const h = harness();
  const client = h.create();
  h.socket.accept();
  h.socket.push({ type: 'fleet', id: 200, data: {} });
  client.subscribe('device:b');
  assert.deepEqual(h.socket.sent.at(-1), { type: 'subscribe', channel: 'device:b' });
  h.socket.drop();
  h.advance(BACKOFF_START_MS);
  h.socket.accept();
  // Nothing arrived for device:b: it resumes from where it was subscribed.
  assert.deepEqual(h.socket.sent, [
    { type: 'subscribe', channel: 'fleet', since: 200 },
    { type: 'subscribe', channel: 'device:b', since: 200 },
  ]);
});

test('a channel added while disconnected subscribes afresh on the next open', () => {
  const h = harness();
  const client = h.create();
  h.socket.accept();
  h.socket.push({ type: 'fleet', id: 300, data: {} });
  h.socket.drop();
  client.subscribe('device:c');
  h.advance(BACKOFF_START_MS);
  h.socket.accept();
  assert.deepEqual(h.socket.sent, [
    { type: 'subscribe', channel: 'fleet', since: 300 },
    { type: 'subscribe', channel: 'device:c' },
  ]);
});

test('reset calls onReset and the fleet snapshot that follows is delivered', () => {
  const h = harness();
  h.create({ channels: ['fleet', 'device:a'] });
  h.socket.accept();
  h.socket.push({ type: 'fleet', id: 10, data: { v: 1 } });
  h.socket.push({ type: 'reading', channel: 'device:a', id: 11, data: { device: 'a' } });
  h.socket.drop();
  h.advance(BACKOFF_START_MS);
  h.socket.accept();
  h.events.length = 0;
  h.socket.push({ type: 'reset', channel: 'fleet', id: 9000 });
  h.socket.push({ type: 'fleet', id: 9000, data: { v: 2 } });
  h.socket.push({ type: 'reset', channel: 'device:a', id: 9000 });
  h.socket.push({ type: 'reading', channel: 'device:a', id: 9001, data: { device: 'a' } });
  assert.deepEqual(h.resets, ['fleet', 'device:a']);
  assert.deepEqual(
    h.events.map((e) => [e.type, e.id]),
    [
      ['fleet', 9000],
      ['reading', 9001],
    ],
  );
  assert.equal(h.states.at(-1), 'live', 'continues live');
  // The next resume starts from the reset point.
  h.socket.drop();
  h.advance(BACKOFF_START_MS);
  h.socket.accept();
  assert.deepEqual(h.socket.sent, [
    { type: 'subscribe', channel: 'fleet', since: 9000 },
    { type: 'subscribe', channel: 'device:a', since: 9001 },
  ]);
});

test('a cut is an ordinary disconnect: backoff, then resume', () => {
  const h = harness();
  const client = h.create();
  h.socket.accept();
  h.socket.push({ type: 'fleet', id: 42, data: {} });
  const first = h.socket;
  h.socket.push({ type: 'cut', reason: 'client too slow' });
  assert.equal(first.readyState, 3, 'closed by us');
  assert.equal(client.state, 'reconnecting');
  assert.match(h.details.at(-1).reason, /too slow/);
  h.advance(BACKOFF_START_MS);
  h.socket.accept();
  assert.deepEqual(h.socket.sent, [{ type: 'subscribe', channel: 'fleet', since: 42 }]);
});

test('unsubscribe is sent and not repeated after reconnect', () => {
  const h = harness();
  const client = h.create({ channels: ['fleet', 'device:a'] });
  h.socket.accept();
  client.unsubscribe('device:a');
  assert.deepEqual(h.socket.sent.at(-1), { type: 'unsubscribe', channel: 'device:a' });
  h.socket.drop();
  h.advance(BACKOFF_START_MS);
  h.socket.accept();
  assert.deepEqual(h.socket.sent, [{ type: 'subscribe', channel: 'fleet' }]);
});

test('queued messages are flushed after the resubscription, in order', () => {
  const h = harness();
  const client = h.create();
  assert.equal(client.send({ type: 'ack', n: 1 }), false, 'not open yet: queued');
  assert.equal(client.send({ type: 'ping' }), false, 'pings are not queued');
  assert.equal(client.send({ type: 'subscribe', channel: 'device:a' }), false);
  assert.equal(client.send({ type: 'subscribe', channel: 'device:b' }), false);
  assert.equal(client.send({ type: 'unsubscribe', channel: 'device:a' }), false);
  client.send({ type: 'ack', n: 2 });
  assert.equal(client.queued, 2);
  h.socket.accept();
  assert.deepEqual(h.socket.sent, [
    { type: 'subscribe', channel: 'fleet' },
    { type: 'subscribe', channel: 'device:b' },
    { type: 'ack', n: 1 },
    { type: 'ack', n: 2 },
  ]);
  assert.equal(client.queued, 0);
  assert.equal(client.send({ type: 'ack', n: 3 }), true, 'sent at once while live');
  assert.deepEqual(h.socket.sent.at(-1), { type: 'ack', n: 3 });

  h.socket.drop();
  client.send({ type: 'ack', n: 4 });
  h.advance(BACKOFF_START_MS);
  h.socket.accept();
  assert.deepEqual(h.socket.sent.at(-1), { type: 'ack', n: 4 }, 'flushed after a reconnect too');
});

test('the queue is bounded: the oldest messages go', () => {
  const h = harness();
  const client = h.create();
  for (let n = 0; n < QUEUE_LIMIT + 25; n++) client.send({ type: 'ack', n });
  assert.equal(client.queued, QUEUE_LIMIT);
  h.socket.accept();
  const acks = h.socket.sent.filter((/** @type {any} */ m) => m.type === 'ack');
  assert.equal(acks.length, QUEUE_LIMIT);
  assert.equal(acks[0].n, 25);
  assert.equal(acks.at(-1).n, QUEUE_LIMIT + 24);
});

test('pings every 15 s and keeps a chatty connection', () => {
  const h = harness();
  h.create();
  h.socket.accept();
  for (let i = 1; i <= 4; i++) {
    h.advance(PING_INTERVAL_MS);
    assert.deepEqual(h.socket.sent.at(-1), { type: 'ping' });
    h.socket.push({ type: 'pong' });
  }
  assert.equal(h.sockets.length, 1);
  assert.equal(h.states.at(-1), 'live');
});

test('a silent connection is closed and replaced after 35 s', () => {
  const h = harness();
  const client = h.create();
  h.socket.accept();
  const first = h.socket;
  h.advance(DEAD_AFTER_MS - 1);
  assert.equal(client.state, 'live');
  h.advance(1);
  assert.equal(first.readyState, 3, 'dead socket closed');
  assert.equal(client.state, 'reconnecting');
  // Late events from the dead socket are ignored.
  first.push({ type: 'fleet', id: 1, data: {} });
  assert.deepEqual(h.events, []);
  h.advance(BACKOFF_START_MS);
  assert.equal(h.sockets.length, 2);
});

test('a handshake that hangs is abandoned', () => {
  const h = harness();
  h.create();
  h.advance(CONNECT_TIMEOUT_MS);
  assert.equal(h.sockets[0].readyState, 3);
  h.advance(BACKOFF_START_MS);
  assert.equal(h.sockets.length, 2);
  assert.deepEqual(h.states, ['connecting'], 'never live yet, so still connecting');
});

test('offline after failing for 60 s, and keeps retrying', () => {
  const h = harness();
  const client = h.create();
  h.socket.accept();
  h.socket.drop();
  const start = h.now;
  while (h.now - start < OFFLINE_AFTER_MS - 1) {
    assert.equal(client.state, 'reconnecting');
    h.advance(100);
    if (h.socket.readyState === 0) h.socket.drop();
  }
  h.advance(1000);
  assert.equal(client.state, 'offline');
  const n = h.sockets.length;
  h.advance(BACKOFF_CAP_MS);
  assert.ok(h.sockets.length > n, 'still retrying while offline');
  while (h.socket.readyState !== 0) h.advance(100); // wait for an attempt in progress
  h.socket.accept();
  assert.equal(client.state, 'live');
  assert.deepEqual(h.states, ['connecting', 'live', 'reconnecting', 'offline', 'live'], 'each change once');
});

test('offline after 60 s even while each attempt hangs until its timeout', () => {
  const h = harness();
  const client = h.create();
  h.advance(OFFLINE_AFTER_MS - 1);
  assert.equal(client.state, 'connecting');
  h.advance(1);
  assert.equal(client.state, 'offline');
});

test('browser offline and online events', () => {
  const h = harness();
  const client = h.create();
  h.socket.accept();
  h.socket.drop();
  assert.equal(client.state, 'reconnecting');

  h.online = false;
  h.fire('offline');
  assert.equal(client.state, 'offline');
  h.advance(BACKOFF_START_MS); // retries anyway
  assert.equal(h.sockets.length, 2);
  h.socket.drop();
  assert.equal(client.state, 'offline');

  // Back online: retry immediately instead of waiting out the backoff.
  h.online = true;
  h.fire('online');
  assert.equal(h.sockets.length, 3);
  assert.equal(client.state, 'reconnecting');
  h.socket.accept();
  assert.equal(client.state, 'live');
});

test('going offline while live probes the socket instead of assuming', () => {
  const h = harness();
  const client = h.create();
  h.socket.accept();
  h.online = false;
  h.fire('offline');
  assert.deepEqual(h.socket.sent.at(-1), { type: 'ping' });
  assert.equal(client.state, 'live');
  h.socket.push({ type: 'pong' }); // the hub is on the LAN and still answers
  h.advance(10_000);
  assert.equal(client.state, 'live');

  h.fire('offline');
  h.advance(10_000); // this time no answer
  assert.equal(client.state, 'offline');
});

test('starts offline when the browser is offline', () => {
  const h = harness({ online: false });
  h.create();
  assert.deepEqual(h.states, ['offline']);
  assert.equal(h.sockets.length, 1, 'tries anyway');
});

test('a constructor that throws counts as a failed attempt', () => {
  const h = harness();
  let calls = 0;
  const Real = h.env.WebSocket;
  h.env.WebSocket = class extends Real {
    /** @param {string} url */
    constructor(url) {
      if (calls++ === 0) throw new SyntaxError('bad url');
      super(url);
    }
  };
  h.create();
  assert.equal(h.sockets.length, 0);
  h.advance(BACKOFF_START_MS);
  assert.equal(h.sockets.length, 1);
});

test('an unknown transport is refused', () => {
  const h = harness();
  assert.throws(() => h.create({ transport: 'carrier-pigeon' }), TypeError);
});

test('close stops everything', () => {
  const h = harness();
  const client = h.create();
  h.socket.accept();
  client.send({ type: 'x' });
  client.close();
  assert.equal(h.socket.readyState, 3);
  assert.equal(h.timers.size, 0, 'no timers left');
  assert.equal(h.listeners.size, 0, 'no listeners left');
  h.advance(10 * BACKOFF_CAP_MS);
  assert.equal(h.sockets.length, 1);
  assert.equal(client.send({ type: 'ping' }), false);
  assert.equal(client.send({ type: 'x' }), false);
  assert.equal(client.queued, 0);
});

test('createLive without options uses browser globals lazily', () => {
  // Nothing is touched beyond what env provides: a full fake env suffices.
  const h = harness();
  const client = createLive({ env: h.env });
  assert.equal(client.transport, 'ws');
  assert.equal(h.socket.url, 'ws://hub/ws');
  client.close();
});
