import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BACKOFF_CAP_MS,
  BACKOFF_START_MS,
  CONNECT_TIMEOUT_MS,
  DEAD_AFTER_MS,
  OFFLINE_AFTER_MS,
  PING_INTERVAL_MS,
  backoffDelay,
  connect,
  socketURL,
} from '../static/js/live.js';

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

test('socketURL follows the page scheme', () => {
  assert.equal(socketURL({ protocol: 'http:', host: 'hub.local:8080' }), 'ws://hub.local:8080/ws');
  assert.equal(socketURL({ protocol: 'https:', host: 'hub.example' }), 'wss://hub.example/ws');
  assert.equal(socketURL({ protocol: 'http:', host: 'h' }, '/x'), 'ws://h/x');
});

/** A fake clock, timer queue, network and WebSocket for the state machine. */
function harness({ online = true } = {}) {
  let now = 1_000_000;
  let nextId = 1;
  const timers = new Map();
  const listeners = new Map();
  const sockets = [];
  const env = {
    now: () => now,
    random: () => 0.5,
    isOnline: () => h.online,
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    addEventListener(type, fn) {
      listeners.set(type, fn);
    },
    removeEventListener(type, fn) {
      if (listeners.get(type) === fn) listeners.delete(type);
    },
    WebSocket: class {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.sent = [];
        this.onopen = this.onmessage = this.onclose = this.onerror = null;
        sockets.push(this);
      }
      send(s) {
        this.sent.push(JSON.parse(s));
      }
      close() {
        this.readyState = 3;
      }
      // Test helpers playing the server's part.
      accept() {
        this.readyState = 1;
        this.onopen?.();
      }
      push(msg) {
        this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
      }
      drop() {
        this.readyState = 3;
        this.onerror?.();
        this.onclose?.();
      }
    },
  };
  const h = {
    env,
    online,
    sockets,
    states: [],
    messages: [],
    get socket() {
      return sockets[sockets.length - 1];
    },
    get now() {
      return now;
    },
    /** Advances the clock, firing due timers in order. */
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let due = null;
        for (const [id, t] of timers) if (t.at <= end && (!due || t.at < due[1].at)) due = [id, t];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = end;
    },
    fire(type) {
      listeners.get(type)?.();
    },
    connect(opts = {}) {
      return connect({
        url: 'ws://hub/ws',
        channels: ['fleet'],
        onMessage: (m) => h.messages.push(m),
        onState: (s) => h.states.push(s),
        env,
        ...opts,
      });
    },
    timers,
    listeners,
  };
  return h;
}

test('connects, subscribes and reports live', () => {
  const h = harness();
  h.connect();
  assert.deepEqual(h.states, ['connecting']);
  assert.equal(h.socket.url, 'ws://hub/ws');
  h.socket.accept();
  assert.deepEqual(h.states, ['connecting', 'live']);
  assert.deepEqual(h.socket.sent, [{ type: 'subscribe', channel: 'fleet' }]);
});

test('forwards messages except pong and garbage', () => {
  const h = harness();
  h.connect();
  h.socket.accept();
  h.socket.push({ type: 'pong' });
  h.socket.push('not json');
  h.socket.push('42');
  h.socket.push({ type: 'fleet', data: { devices: [] } });
  assert.deepEqual(h.messages, [{ type: 'fleet', data: { devices: [] } }]);
});

test('reconnects with backoff and resubscribes', () => {
  const h = harness();
  const client = h.connect();
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

test('unsubscribe is sent and not repeated after reconnect', () => {
  const h = harness();
  const client = h.connect({ channels: ['fleet', 'device:a'] });
  h.socket.accept();
  client.unsubscribe('device:a');
  assert.deepEqual(h.socket.sent.at(-1), { type: 'unsubscribe', channel: 'device:a' });
  h.socket.drop();
  h.advance(BACKOFF_START_MS);
  h.socket.accept();
  assert.deepEqual(h.socket.sent, [{ type: 'subscribe', channel: 'fleet' }]);
});

test('pings every 15 s and keeps a chatty connection', () => {
  const h = harness();
  h.connect();
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
  const client = h.connect();
  h.socket.accept();
  const first = h.socket;
  h.advance(DEAD_AFTER_MS - 1);
  assert.equal(client.state, 'live');
  h.advance(1);
  assert.equal(first.readyState, 3, 'dead socket closed');
  assert.equal(client.state, 'reconnecting');
  // Late events from the dead socket are ignored.
  first.push({ type: 'fleet', data: {} });
  assert.deepEqual(h.messages, []);
  h.advance(BACKOFF_START_MS);
  assert.equal(h.sockets.length, 2);
});

test('a handshake that hangs is abandoned', () => {
  const h = harness();
  h.connect();
  h.advance(CONNECT_TIMEOUT_MS);
  assert.equal(h.sockets[0].readyState, 3);
  h.advance(BACKOFF_START_MS);
  assert.equal(h.sockets.length, 2);
  assert.deepEqual(h.states, ['connecting'], 'never live yet, so still connecting');
});

test('offline after failing for 60 s, and keeps retrying', () => {
  const h = harness();
  const client = h.connect();
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
});

test('browser offline and online events', () => {
  const h = harness();
  const client = h.connect();
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
  const client = h.connect();
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
  h.connect();
  assert.deepEqual(h.states, ['offline']);
  assert.equal(h.sockets.length, 1, 'tries anyway');
});

test('a constructor that throws counts as a failed attempt', () => {
  const h = harness();
  let calls = 0;
  const Real = h.env.WebSocket;
  h.env.WebSocket = class extends Real {
    constructor(url) {
      if (calls++ === 0) throw new SyntaxError('bad url');
      super(url);
    }
  };
  h.connect();
  assert.equal(h.sockets.length, 0);
  h.advance(BACKOFF_START_MS);
  assert.equal(h.sockets.length, 1);
});

test('close stops everything', () => {
  const h = harness();
  const client = h.connect();
  h.socket.accept();
  client.close();
  assert.equal(h.socket.readyState, 3);
  assert.equal(h.timers.size, 0, 'no timers left');
  assert.equal(h.listeners.size, 0, 'no listeners left');
  h.advance(10 * BACKOFF_CAP_MS);
  assert.equal(h.sockets.length, 1);
  assert.equal(client.send({ type: 'ping' }), false);
});
