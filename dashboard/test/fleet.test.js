import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyFleetDelta,
  applyReading,
  applyStatus,
  keyMetrics,
  normalizeFleet,
  summarize,
  temperature,
} from '../static/js/fleet.js';

const sample = {
  version: 7,
  ts: 1000,
  devices: [
    { id: 'pi-10', state: 'online', last_seen: 900, metrics: { 'cpu.percent': 12.5 }, tags: { site: 'home' } },
    { id: 'pi-2', state: 'offline', reason: 'lost', last_seen: 500, metrics: {} },
    { id: 'pi-3', state: 'stale', last_seen: 600, metrics: { 'temp.soc': 50 } },
  ],
  summary: { total: 3, online: 1, offline: 1, stale: 1 },
};

test('normalizeFleet sorts naturally and keeps the contract fields', () => {
  const f = normalizeFleet(sample);
  assert.equal(f.version, 7);
  assert.equal(f.ts, 1000);
  assert.deepEqual(f.devices.map((d) => d.id), ['pi-2', 'pi-3', 'pi-10']);
  assert.equal(f.devices[0].reason, 'lost');
  assert.deepEqual(f.devices[2].tags, { site: 'home' });
});

test('normalizeFleet rejects and cleans malformed input', () => {
  assert.equal(normalizeFleet(null), null);
  assert.equal(normalizeFleet({ devices: 'x' }), null);
  const f = normalizeFleet({
    devices: [
      null,
      { id: '' },
      { id: 42 },
      { id: 'a', state: 'exploded', reason: 'x', metrics: { ok: 1, bad: 'no', nan: null }, tags: { t: 1 } },
      { id: 'b', state: 'online', reason: 'lost' },
    ],
  });
  assert.deepEqual(f.devices, [
    { id: 'a', state: 'offline', reason: 'x', metrics: { ok: 1 }, tags: {} },
    { id: 'b', state: 'online', metrics: {}, tags: {} }, // reason only when offline
  ]);
});

test('summarize counts by state', () => {
  assert.deepEqual(summarize(normalizeFleet(sample).devices), { total: 3, online: 1, stale: 1, offline: 1 });
  assert.deepEqual(summarize([]), { total: 0, online: 0, stale: 0, offline: 0 });
});

test('temperature prefers temp.soc, else the first temp.*', () => {
  assert.equal(temperature({ 'temp.soc': 51, 'temp.a': 40 }), 51);
  assert.equal(temperature({ 'temp.nvme': 38, 'temp.cpu': 44 }), 44);
  assert.equal(temperature({ 'cpu.percent': 3 }), undefined);
});

test('keyMetrics picks the table columns', () => {
  const m = keyMetrics({
    id: 'x',
    state: 'online',
    tags: {},
    metrics: { 'cpu.percent': 1, 'mem.used_percent': 2, 'load.1': 3, 'temp.x': 4, 'host.uptime_s': 5 },
  });
  assert.deepEqual(m, { cpu: 1, mem: 2, memTotal: undefined, load1: 3, temp: 4, uptime: 5, count: 5 });
});

test('applyStatus updates a known device only', () => {
  const f = normalizeFleet(sample);
  const g = applyStatus(f, { device: 'pi-10', state: 'offline', reason: 'shutdown', ts: 950 });
  assert.notEqual(g, f);
  const d = g.devices.find((x) => x.id === 'pi-10');
  assert.equal(d.state, 'offline');
  assert.equal(d.reason, 'shutdown');
  assert.equal(d.last_seen, 950);
  assert.equal(f.devices[2].state, 'online', 'input untouched');

  const back = applyStatus(g, { device: 'pi-10', state: 'online' });
  assert.equal(back.devices[2].reason, undefined);
  assert.equal(applyStatus(f, { device: 'nope', state: 'online' }), f);
  assert.equal(applyStatus(f, 'junk'), f);
});

test('applyReading merges metrics and ignores older readings', () => {
  const f = normalizeFleet(sample);
  const g = applyReading(f, { device: 'pi-10', seq: 2, ts: 990, metrics: { 'cpu.percent': 80, 'load.1': 0.5 } });
  assert.deepEqual(g.devices[2].metrics, { 'cpu.percent': 80, 'load.1': 0.5 });
  assert.equal(g.devices[2].last_seen, 990);
  assert.equal(applyReading(g, { device: 'pi-10', ts: 10, metrics: { 'cpu.percent': 1 } }), g);
  assert.equal(applyReading(g, { device: 'pi-10', ts: 995 }), g, 'no metrics');
});

test('applyFleetDelta merges changed devices and keeps fresher readings', () => {
  const fleet = normalizeFleet({
    version: 1, ts: 1000, full: true,
    devices: [
      { id: 'a', state: 'online', last_seen: 2000, metrics: { 'cpu.percent': 5 }, tags: {} },
      { id: 'b', state: 'online', last_seen: 1000, metrics: {}, tags: {} },
    ],
  });
  const same = applyFleetDelta(fleet, { version: 2, ts: 3000, full: false, devices: [] });
  assert.equal(same, fleet, 'an empty delta changes nothing');
  const next = applyFleetDelta(fleet, {
    version: 3, ts: 4000, full: false,
    devices: [
      { id: 'a', state: 'stale', last_seen: 1500, metrics: { 'cpu.percent': 1 }, tags: {} },
      { id: 'c', state: 'online', last_seen: 3500, metrics: {}, tags: {} },
    ],
  });
  assert.deepEqual(next.devices.map((d) => [d.id, d.state]), [['a', 'stale'], ['b', 'online'], ['c', 'online']]);
  assert.equal(next.devices[0].metrics['cpu.percent'], 5, 'a reading newer than the delta wins');
  assert.equal(next.version, 3);
});
