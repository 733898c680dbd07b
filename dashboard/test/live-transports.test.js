import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BACKOFF_START_MS,
  CONNECT_TIMEOUT_MS,
  LONGPOLL_TIMEOUT_MS,
  OFFLINE_AFTER_MS,
  POLL_INTERVAL_MS,
  UPGRADE_EVERY_MS,
  UPGRADE_FIRST_MS,
  backoffDelay,
} from '../static/js/live.js';
import { LONGPOLL_MIN_GAP_MS } from '../static/js/transports.js';
import { harness, settle } from './live-fakes.js';

const FLEET = { version: 1, ts: 1, devices: [] };

/** The harness's backoff (its random source returns 0.5). @param {number} attempt */
const wait = (attempt) => backoffDelay(attempt, () => 0.5);

// ---- auto: fallback and upgrade ----

test('auto falls back WS → SSE → long-poll → poll when each fails before opening', async () => {
  const h = harness();
  const client = h.create({ transport: 'auto' });
  assert.equal(client.transport, 'ws');
  h.socket.drop();
  h.advance(wait(0));
  assert.equal(h.sockets.length, 2, 'WebSocket gets a second chance');
  h.socket.drop();
  assert.equal(client.transport, 'sse');
  h.advance(wait(1));
  assert.equal(h.sockets.length, 2);
  assert.equal(h.sources.length, 1);
  assert.equal(h.source.url, 'http://hub/events?channels=fleet');
  h.source.fail();
  assert.ok(h.source.closed, 'we reconnect, not EventSource');
  h.advance(wait(2));
  assert.equal(h.sources.length, 2);
  h.advance(CONNECT_TIMEOUT_MS); // hangs: a failure too
  assert.equal(client.transport, 'longpoll');
  h.advance(wait(3));
  assert.equal(h.fetches.length, 1);
  assert.equal(h.request.path, '/api/v1/poll');
  h.request.fail();
  await settle();
  h.advance(wait(4));
  assert.equal(h.fetches.length, 2);
  h.request.fail();
  await settle();
  assert.equal(client.transport, 'poll');
  assert.deepEqual(h.states, ['connecting'], 'never open yet: connecting throughout');
  h.advance(wait(5));
  assert.equal(h.request.url, 'http://hub/api/v1/fleet');
  h.request.respond(200, FLEET, { ETag: '"v1"' });
  await settle();
  assert.equal(client.state, 'live');
  assert.equal(h.details.at(-1).transport, 'poll');
  assert.deepEqual(h.events, [{ type: 'fleet', channel: 'fleet', data: FLEET }]);
});

test('auto stays on a transport that worked, through later failures', async () => {
  const h = harness();
  const client = h.create({ transport: 'auto' });
  h.socket.accept();
  for (let i = 0; i < 6; i++) {
    h.socket.drop();
    h.advance(30_000);
  }
  assert.equal(client.transport, 'ws');
  assert.equal(h.sources.length, 0);
  assert.equal(h.fetches.length, 0);
});

test('auto keeps SSE once it opens and upgrades to WebSocket when that works again', () => {
  const h = harness();
  const client = h.create({ transport: 'auto' });
  h.socket.drop();
  h.advance(wait(0));
  h.socket.drop();
  h.advance(wait(1));
  h.source.open();
  assert.equal(client.transport, 'sse');
  assert.equal(client.state, 'live');
  h.source.emit('fleet', FLEET, 500);
  h.source.fail();
  h.advance(wait(0));
  assert.equal(client.transport, 'sse', 'still SSE after it worked once');
  assert.equal(h.source.query.lastEventId, '500');
  h.source.open();

  // The first upgrade try: WebSocket still blocked, SSE undisturbed.
  h.advance(UPGRADE_FIRST_MS);
  assert.equal(h.sockets.length, 3);
  h.socket.drop();
  assert.equal(client.transport, 'sse');
  assert.equal(client.state, 'live');
  assert.ok(!h.source.closed);

  // Five minutes on, it works: switch, resuming where SSE stopped.
  h.source.emit('status', { device: 'a' }, 510);
  h.advance(UPGRADE_EVERY_MS);
  assert.equal(h.sockets.length, 4);
  h.socket.accept();
  assert.ok(h.sockets[3].readyState === 3, 'the probe socket is closed');
  assert.ok(h.source.closed, 'SSE is closed');
  assert.equal(client.transport, 'ws');
  assert.equal(h.sockets.length, 5);
  h.socket.accept();
  assert.deepEqual(h.socket.sent, [{ type: 'subscribe', channel: 'fleet', since: 510 }]);
  assert.deepEqual(h.states, ['connecting', 'live', 'reconnecting', 'live'], 'no flicker while switching');
});

test('auto skips a transport the hub does not have (404) at once', async () => {
  const h = harness();
  const client = h.create({ transport: 'auto' });
  h.socket.drop();
  h.advance(wait(0));
  h.socket.drop();
  h.advance(wait(1));
  h.source.fail();
  h.advance(wait(2));
  h.source.fail();
  h.advance(wait(3));
  assert.equal(client.transport, 'longpoll');
  h.request.respond(404, { error: 'not found' });
  await settle();
  assert.equal(client.transport, 'poll');
  assert.notEqual(client.state, 'error');
});

// ---- SSE ----

test('SSE delivers events, drops duplicates and resumes with lastEventId', () => {
  const h = harness();
  const client = h.create({ transport: 'sse', channels: ['fleet', 'device:pi-1'] });
  assert.equal(h.source.url, 'http://hub/events?channels=fleet,device:pi-1');
  h.source.open();
  assert.equal(client.state, 'live');
  h.source.emit('fleet', FLEET, 100);
  h.source.emit('reading', { device: 'pi-1', metrics: {} }, 101);
  h.source.emit('reading', { device: 'pi-1', metrics: {} }, 101);
  h.source.emit('status', { device: 'pi-1', state: 'online' }, 102);
  h.source.emit('reading', 'not json', 103);
  assert.deepEqual(h.events, [
    { type: 'fleet', channel: 'fleet', id: 100, data: FLEET },
    { type: 'reading', channel: 'device:pi-1', id: 101, data: { device: 'pi-1', metrics: {} } },
    { type: 'status', channel: 'fleet', id: 102, data: { device: 'pi-1', state: 'online' } },
  ]);
  h.source.fail();
  assert.equal(client.state, 'reconnecting');
  h.advance(BACKOFF_START_MS);
  assert.deepEqual(h.source.query, { channels: 'fleet,device:pi-1', lastEventId: '102' });
  h.source.open();
  // The replay overlaps: only news gets through.
  h.source.emit('status', { device: 'pi-1', state: 'online' }, 102);
  h.source.emit('alert', { rule: 'x' }, 104);
  assert.deepEqual(
    h.events.map((e) => e.id),
    [100, 101, 102, 104],
  );
});

test('SSE reset, cut and a changed channel set', () => {
  const h = harness();
  const client = h.create({ transport: 'sse', channels: ['fleet'] });
  h.source.open();
  h.source.emit('fleet', FLEET, 10);
  client.subscribe('device:a');
  assert.ok(h.sources[0].closed, 'reopened with the new set');
  assert.deepEqual(h.source.query, { channels: 'fleet,device:a', lastEventId: '10' });
  h.source.open();
  assert.equal(h.fetches.length, 0, 'fleet is not new: no snapshot needed');
  assert.deepEqual(h.states, ['connecting', 'live']);

  h.source.emit('reset', { id: 5000 }, 5000);
  assert.deepEqual(h.resets, ['fleet', 'device:a'], 'a reset without a channel covers the stream');
  h.source.emit('fleet', { ...FLEET, version: 2 }, 5000);
  assert.equal(h.events.at(-1).data.version, 2, 'the snapshot after a reset is delivered');

  h.source.emit('cut', { reason: 'client too slow' });
  assert.equal(client.state, 'reconnecting');
  h.advance(BACKOFF_START_MS);
  assert.equal(h.source.query.lastEventId, '5000');
  h.source.open();
  // Older hubs say "error" before cutting.
  h.source.emit('error', { error: 'client too slow' });
  assert.equal(client.state, 'reconnecting');
  assert.match(h.details.at(-1).reason, /too slow/);
});

test('SSE adding fleet to a resumed stream fetches its snapshot', async () => {
  const h = harness();
  const client = h.create({ transport: 'sse', channels: ['device:a'] });
  h.source.open();
  h.source.emit('reading', { device: 'a' }, 70);
  client.subscribe('fleet');
  assert.equal(h.source.query.lastEventId, '70');
  h.source.open();
  assert.equal(h.request.url, 'http://hub/api/v1/fleet');
  h.request.respond(200, FLEET);
  await settle();
  assert.deepEqual(h.events.at(-1), { type: 'fleet', channel: 'fleet', data: FLEET });
});

// ---- long-poll ----

test('long-poll starts afresh, fetches the fleet, then loops from last_id', async () => {
  const h = harness();
  const client = h.create({ transport: 'longpoll', channels: ['fleet', 'device:x'] });
  assert.equal(h.request.path, '/api/v1/poll');
  assert.deepEqual(h.request.query, { timeout: '25s', channels: 'fleet,device:x' });
  h.request.respond(200, { events: [], last_id: 40 });
  await settle();
  assert.equal(client.state, 'live');
  assert.equal(h.request.url, 'http://hub/api/v1/fleet', 'the start point, then the snapshot');
  h.request.respond(200, FLEET);
  await settle();
  assert.deepEqual(h.events, [{ type: 'fleet', channel: 'fleet', data: FLEET }]);
  assert.deepEqual(h.request.query, { since: '40', timeout: '25s', channels: 'fleet,device:x' });

  h.request.respond(200, {
    events: [
      { id: 41, type: 'reading', channel: 'device:x', data: { device: 'x' } },
      { id: 42, type: 'status', data: { device: 'x' } },
    ],
    last_id: 42,
  });
  await settle();
  assert.deepEqual(
    h.events.slice(1).map((e) => [e.type, e.channel, e.id]),
    [
      ['reading', 'device:x', 41],
      ['status', 'fleet', 42],
    ],
  );
  assert.equal(h.request.query.since, '42', 're-issued at once after events');
  assert.equal(h.pending.length, 1, 'one request at a time');

  // The hold ran out: an empty answer after 25 s, re-issued at once.
  h.advance(25_000);
  h.request.respond(200, { events: [], last_id: 42 });
  await settle();
  assert.equal(h.fetches.length, 5);
  assert.equal(h.request.query.since, '42');
});

test('long-poll abandons a request past its timeout and resumes after backoff', async () => {
  const h = harness();
  const client = h.create({ transport: 'longpoll' });
  h.request.respond(200, { events: [], last_id: 7 });
  await settle();
  h.request.respond(200, FLEET);
  await settle();
  const held = h.request;
  assert.equal(held.query.since, '7');
  h.advance(LONGPOLL_TIMEOUT_MS - 1);
  assert.equal(client.state, 'live');
  h.advance(1);
  await settle();
  assert.ok(held.aborted, 'the request was aborted');
  assert.equal(client.state, 'reconnecting');
  h.advance(BACKOFF_START_MS);
  assert.equal(h.request.query.since, '7');
  // A late answer to the abandoned request changes nothing.
  held.respond(200, { events: [{ id: 8, type: 'status', data: {} }], last_id: 8 });
  await settle();
  assert.equal(h.events.length, 1);
});

test('long-poll reset calls onReset and reloads the fleet', async () => {
  const h = harness();
  h.create({ transport: 'longpoll', channels: ['fleet', 'device:x'] });
  h.request.respond(200, { events: [], last_id: 7 });
  await settle();
  h.request.respond(200, FLEET);
  await settle();
  h.request.respond(200, { reset: true, last_id: 900, events: [] });
  await settle();
  assert.deepEqual(h.resets, ['fleet', 'device:x']);
  assert.equal(h.request.url, 'http://hub/api/v1/fleet');
  h.request.respond(200, { ...FLEET, version: 9 });
  await settle();
  assert.equal(h.events.at(-1).data.version, 9);
  assert.equal(h.request.query.since, '900');
});

test('long-poll drops duplicates and does not spin on early empty answers', async () => {
  const h = harness();
  h.create({ transport: 'longpoll', channels: ['device:x'] });
  h.request.respond(200, { events: [], last_id: 1 });
  await settle();
  h.request.respond(200, { events: [{ id: 2, type: 'reading', channel: 'device:x', data: {} }], last_id: 2 });
  await settle();
  h.request.respond(200, { events: [{ id: 2, type: 'reading', channel: 'device:x', data: {} }], last_id: 2 });
  await settle();
  assert.equal(h.events.length, 1);
  const n = h.fetches.length;
  h.request.respond(200, { events: [], last_id: 2 }); // at once: something is not holding
  await settle();
  assert.equal(h.fetches.length, n, 'waits before the next');
  h.advance(LONGPOLL_MIN_GAP_MS);
  assert.equal(h.fetches.length, n + 1);
});

test('long-poll honours Retry-After on 429 and 503', async () => {
  const h = harness();
  const client = h.create({ transport: 'longpoll' });
  h.request.respond(429, null, { 'Retry-After': '20' });
  await settle();
  assert.equal(client.state, 'connecting');
  assert.equal(h.details.length, 1, 'no change to report');
  h.advance(19_999);
  assert.equal(h.fetches.length, 1);
  h.advance(1);
  assert.equal(h.fetches.length, 2);
  h.request.respond(503, null, { 'Retry-After': '3' });
  await settle();
  h.advance(2_999);
  assert.equal(h.fetches.length, 2, 'Retry-After beats the shorter backoff');
  h.advance(1);
  assert.equal(h.fetches.length, 3);
  assert.equal(client.transport, 'longpoll', 'an answering hub is no reason to fall back');
});

test('a 4xx is an error: no more retries until the channel set changes', async () => {
  const h = harness();
  const client = h.create({ transport: 'longpoll', channels: ['fleet', 'device:bad name'] });
  h.request.respond(400, { error: 'unknown channel' });
  await settle();
  assert.equal(client.state, 'error');
  assert.equal(h.details.at(-1).status, 400);
  assert.equal(h.timers.size, 0, 'nothing scheduled');
  h.advance(10 * 60_000);
  assert.equal(h.fetches.length, 1);
  client.unsubscribe('device:bad name');
  assert.equal(client.state, 'connecting');
  assert.equal(h.fetches.length, 2);
  assert.equal(h.request.query.channels, 'fleet');
});

test('long-poll channel changes re-issue the request at once', async () => {
  const h = harness();
  const client = h.create({ transport: 'longpoll', channels: ['device:x'] });
  h.request.respond(200, { events: [], last_id: 3 });
  await settle();
  const held = h.request;
  client.subscribe('device:y');
  assert.ok(held.aborted);
  assert.deepEqual(h.request.query, { since: '3', timeout: '25s', channels: 'device:x,device:y' });
});

// ---- polling ----

test('polling sends If-None-Match and treats 304 as no change', async () => {
  const h = harness();
  const client = h.create({ transport: 'poll', channels: ['fleet', 'device:pi-1', 'alerts'] });
  assert.deepEqual(
    h.fetches.map((r) => r.url),
    ['http://hub/api/v1/fleet', 'http://hub/api/v1/devices/pi-1'],
  );
  assert.equal(h.fetches[0].headers['If-None-Match'], undefined);
  h.fetches[0].respond(200, FLEET, { ETag: '"f1"' });
  h.fetches[1].respond(200, { id: 'pi-1' }, { ETag: '"d1"' });
  await settle();
  assert.equal(client.state, 'live');
  assert.deepEqual(h.events, [
    { type: 'fleet', channel: 'fleet', data: FLEET },
    { type: 'device', channel: 'device:pi-1', data: { id: 'pi-1' } },
  ]);
  h.advance(POLL_INTERVAL_MS - 1);
  assert.equal(h.fetches.length, 2);
  h.advance(1);
  assert.equal(h.fetches.length, 4);
  assert.equal(h.fetches[2].headers['If-None-Match'], '"f1"');
  assert.equal(h.fetches[3].headers['If-None-Match'], '"d1"');
  h.fetches[2].respond(304);
  h.fetches[3].respond(200, { id: 'pi-1', state: 'stale' }, { ETag: '"d2"' });
  await settle();
  assert.equal(h.events.length, 3, 'the 304 brought nothing');
  h.advance(POLL_INTERVAL_MS);
  assert.equal(h.fetches[5].headers['If-None-Match'], '"d2"');
});

test('polling survives failures, honours Retry-After, and keeps ETags across reconnects', async () => {
  const h = harness();
  const client = h.create({ transport: 'poll' });
  h.request.respond(200, FLEET, { ETag: '"f1"' });
  await settle();
  h.advance(POLL_INTERVAL_MS);
  h.request.respond(503, null, { 'Retry-After': '12' });
  await settle();
  assert.equal(client.state, 'reconnecting');
  h.advance(11_999);
  assert.equal(h.fetches.length, 2);
  h.advance(1);
  assert.equal(h.fetches.length, 3);
  assert.equal(h.request.headers['If-None-Match'], '"f1"');
  h.request.respond(304);
  await settle();
  assert.equal(client.state, 'live');
  h.advance(POLL_INTERVAL_MS);
  h.request.respond(401, null);
  await settle();
  assert.equal(client.state, 'error');
});

test('polling fetches a newly subscribed device at once; a missing one is no error', async () => {
  const h = harness();
  const client = h.create({ transport: 'poll' });
  h.request.respond(200, FLEET);
  await settle();
  client.subscribe('device:new');
  assert.deepEqual(
    h.pending.map((r) => r.path),
    ['/api/v1/fleet', '/api/v1/devices/new'],
  );
  h.pending[0].respond(304);
  h.pending[0].respond(404, { error: 'no such device' });
  await settle();
  assert.equal(client.state, 'live');
});

test('offline after 60 s of failing long-polls, live again when one answers', async () => {
  const h = harness();
  const client = h.create({ transport: 'longpoll' });
  h.request.respond(200, { events: [], last_id: 1 });
  await settle();
  h.request.respond(200, FLEET);
  await settle();
  h.request.fail();
  await settle();
  const start = h.now;
  while (h.now - start < OFFLINE_AFTER_MS) {
    h.advance(500);
    for (const r of h.pending) r.fail();
    await settle();
  }
  assert.equal(client.state, 'offline');
  while (h.pending.length === 0) h.advance(500);
  h.request.respond(200, { events: [], last_id: 1 });
  await settle();
  assert.equal(client.state, 'live');
  assert.deepEqual(h.states, ['connecting', 'live', 'reconnecting', 'offline', 'live']);
});

test('a throwing app callback is reported and the loop goes on', async () => {
  const h = harness();
  /** @type {unknown[]} */
  const reported = [];
  h.env.reportError = (/** @type {unknown} */ err) => reported.push(err);
  h.create({
    transport: 'longpoll',
    channels: ['device:x'],
    onEvent: () => {
      throw new Error('app bug');
    },
  });
  h.request.respond(200, { events: [], last_id: 1 });
  await settle();
  h.request.respond(200, { events: [{ id: 2, type: 'reading', channel: 'device:x', data: {} }], last_id: 2 });
  await settle();
  assert.equal(reported.length, 1);
  assert.equal(h.request.query.since, '2', 'polled on');
});
