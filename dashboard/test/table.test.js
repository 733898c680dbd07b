import { test } from 'node:test';
import assert from 'node:assert/strict';
import { badgeFor, filterDevices, nextSort, sortBy, tagOptions, REBOOT_FLAG_MS } from '../static/js/table.js';

const dev = (id, state, metrics = {}, tags = {}, extra = {}) => ({ id, state, metrics, tags, ...extra });
const fleet = [
  dev('pi-10', 'online', { 'cpu.percent': 50 }, { site: 'lab' }, { last_seen: 3 }),
  dev('pi-2', 'offline', { 'cpu.percent': 90 }, { site: 'home' }, { reason: 'lost', last_seen: 1 }),
  dev('pi-3', 'stale', {}, { site: 'lab', role: 'cam' }, { last_seen: 2 }),
];

test('sortBy: numbers, natural ids, missing values last in both directions', () => {
  const cases = [
    [{ key: 'id', dir: 'asc' }, ['pi-2', 'pi-3', 'pi-10']],
    [{ key: 'id', dir: 'desc' }, ['pi-10', 'pi-3', 'pi-2']],
    [{ key: 'cpu.percent', dir: 'desc' }, ['pi-2', 'pi-10', 'pi-3']],
    [{ key: 'cpu.percent', dir: 'asc' }, ['pi-10', 'pi-2', 'pi-3']],
    [{ key: 'state', dir: 'asc' }, ['pi-10', 'pi-3', 'pi-2']],
    [{ key: 'last_seen', dir: 'desc' }, ['pi-10', 'pi-3', 'pi-2']],
    [{ key: 'nonsense', dir: 'asc' }, ['pi-2', 'pi-3', 'pi-10']],
  ];
  for (const [sort, want] of cases) assert.deepEqual(sortBy(fleet, sort).map((d) => d.id), want, `sort ${JSON.stringify(sort)}`);
});

test('nextSort: same column flips, metrics start descending', () => {
  const cases = [
    [{ key: 'id', dir: 'asc' }, 'id', { key: 'id', dir: 'desc' }],
    [{ key: 'id', dir: 'asc' }, 'cpu.percent', { key: 'cpu.percent', dir: 'desc' }],
    [{ key: 'cpu.percent', dir: 'desc' }, 'cpu.percent', { key: 'cpu.percent', dir: 'asc' }],
    [{ key: 'cpu.percent', dir: 'desc' }, 'state', { key: 'state', dir: 'asc' }],
  ];
  for (const [cur, key, want] of cases) assert.deepEqual(nextSort(cur, key), want, `${JSON.stringify(cur)} + ${key}`);
});

test('filterDevices by state, tag and search', () => {
  const cases = [
    [{}, ['pi-10', 'pi-2', 'pi-3']],
    [{ state: 'online' }, ['pi-10']],
    [{ tag: 'site=lab' }, ['pi-10', 'pi-3']],
    [{ tag: 'site=lab', state: 'stale' }, ['pi-3']],
    [{ query: 'CAM' }, ['pi-3']],
    [{ query: ' pi-1 ' }, ['pi-10']],
    [{ query: 'lost' }, ['pi-2']],
    [{ query: 'nothing' }, []],
  ];
  for (const [f, want] of cases) assert.deepEqual(filterDevices(fleet, f).map((d) => d.id), want, `filter ${JSON.stringify(f)}`);
  assert.equal(filterDevices(fleet, {}), fleet, 'no filter: same array');
});

test('tagOptions lists distinct tags sorted', () => {
  assert.deepEqual(tagOptions(fleet), ['role=cam', 'site=home', 'site=lab']);
});

test('badgeFor: reason in text, reboot flag for ten minutes', () => {
  const now = 1_000_000_000;
  const cases = [
    [dev('a', 'online'), { text: 'online', reason: null, rebooted: false }],
    [dev('a', 'offline', {}, {}, { reason: 'lost' }), { text: 'offline · lost', reason: 'lost', rebooted: false }],
    [dev('a', 'online', {}, {}, { rebooted_at: now - 60_000 }), { text: 'online', reason: null, rebooted: true }],
    [dev('a', 'online', {}, {}, { rebooted_at: now - REBOOT_FLAG_MS - 1 }), { text: 'online', reason: null, rebooted: false }],
  ];
  for (const [d, want] of cases) {
    const b = badgeFor(d, now);
    assert.deepEqual({ text: b.text, reason: b.reason, rebooted: b.rebooted }, want, `device ${JSON.stringify(d)}`);
  }
});
