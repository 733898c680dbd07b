import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inventoryRows, pickerMetrics, timeline } from '../static/js/device-model.js';

test('timeline: newest first, wording per event type', () => {
  const got = timeline({
    events: [
      { ts: 1, type: 'state', state: 'online' },
      { ts: 3, type: 'state', state: 'offline', reason: 'lost', from: 'online' },
      { ts: 2, type: 'reboot', host_boot: 0 },
      { ts: 'x' },
    ],
  });
  assert.deepEqual(got.map((e) => [e.ts, e.text, e.tone]), [
    [3, 'online → offline (lost)', 'bad'],
    [2, 'Rebooted (host booted 1970-01-01 00:00:00 UTC)', 'warn'],
    [1, 'Online', 'ok'],
  ]);
  assert.deepEqual(timeline(null), []);
});

test('inventoryRows: fields present only, live row preferred', () => {
  const now = 100_000;
  const info = { state: 'online', hostname: 'h', model: 'Pi 4', os: 'linux', arch: 'arm64', agent_version: '1.2', interval_ms: 10_000, seq: 7, tags: { site: 'lab' } };
  const live = { id: 'a', state: 'offline', reason: 'lost', last_seen: 40_000, metrics: { 'host.uptime_s': 90_000 }, tags: { site: 'home' }, clock_skew_ms: -45 };
  const got = Object.fromEntries(inventoryRows(info, /** @type {any} */ (live), now).map(([k, v]) => [k, v]));
  assert.deepEqual(got, {
    State: 'offline · lost',
    'Last seen': '1m ago',
    Hostname: 'h',
    Model: 'Pi 4',
    System: 'linux · arm64',
    Agent: '1.2',
    Interval: '10s',
    Uptime: '1d 1h',
    'Clock skew': '−45 ms',
    Sequence: '7',
    Tags: 'site=home',
  });
  assert.deepEqual(inventoryRows(null, undefined, now), []);
});

test('pickerMetrics: defaults first, then by name', () => {
  assert.deepEqual(pickerMetrics(['z.x', 'load.1', 'a.b', 'cpu.percent']), ['cpu.percent', 'load.1', 'a.b', 'z.x']);
});
