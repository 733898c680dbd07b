import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deviceHref, parseRoute } from '../static/js/router.js';

test('parseRoute', () => {
  const cases = [
    ['', { name: 'overview' }],
    ['#/', { name: 'overview' }],
    ['#/alerts', { name: 'alerts' }],
    ['#/device/pi-1', { name: 'device', id: 'pi-1' }],
    ['#/device/pi%20a', { name: 'device', id: 'pi a' }],
    ['#/device/', { name: 'overview' }],
    ['#/device/%E0%A4%A', { name: 'overview' }],
    ['#/nope', { name: 'overview' }],
  ];
  for (const [hash, want] of cases) assert.deepEqual(parseRoute(hash), want, `hash ${hash}`);
});

test('deviceHref round-trips through parseRoute', () => {
  for (const id of ['pi-1', 'pi a', 'x/y', 'ü']) {
    assert.deepEqual(parseRoute(deviceHref(id)), { name: 'device', id }, `id ${id}`);
  }
  assert.equal(deviceHref('sim-001'), '#/device/sim-001');
});
