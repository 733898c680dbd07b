import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytes, celsius, duration, MISSING, number, percent, relativeTime } from '../static/js/format.js';

/** Runs fn over [input, want] pairs, naming failures by input. */
function table(fn, cases) {
  for (const [input, want] of cases) {
    assert.equal(fn(...(Array.isArray(input) ? input : [input])), want, `input ${JSON.stringify(input)}`);
  }
}

test('missing values', () => {
  for (const fn of [number, percent, celsius, bytes, duration]) {
    for (const v of [undefined, null, NaN, Infinity, -Infinity, '12', {}]) {
      assert.equal(fn(v), MISSING, `${fn.name}(${String(v)})`);
    }
  }
  assert.equal(relativeTime(undefined, 1000), MISSING);
  assert.equal(relativeTime(0, 1000), MISSING);
});

test('percent', () => {
  table(percent, [
    [0, '0.0 %'],
    [12.5, '12.5 %'],
    [99.96, '100.0 %'],
    [3.14159, '3.1 %'],
    [100, '100.0 %'],
  ]);
});

test('celsius', () => {
  table(celsius, [
    [48.312, '48.3 °C'],
    [-5, '-5.0 °C'],
    [0, '0.0 °C'],
  ]);
});

test('number', () => {
  table(number, [
    [0.52, '0.52'],
    [1.5, '1.5'],
    [2, '2'],
    [0.123456, '0.12'],
    [1234.5, '1,234.5'],
    [-0.001, '0'],
    [[3.14159, 3], '3.142'],
  ]);
});

test('bytes uses binary prefixes', () => {
  table(bytes, [
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [10 * 1024 + 512, '10.5 KiB'],
    [123 * 1024 * 1024, '123 MiB'],
    [4 * 1024 ** 3, '4 GiB'],
    [3.82 * 1024 ** 3, '3.82 GiB'],
    [1024 * 1024 - 1, '1 MiB'], // 1023.999 KiB must not print as "1024 KiB"
    [2 * 1024 ** 4, '2 TiB'],
    [-2048, '-2 KiB'],
  ]);
});

test('duration keeps the two largest units', () => {
  table(duration, [
    [0, '0s'],
    [0.9, '0s'],
    [45, '45s'],
    [60, '1m'],
    [302, '5m 2s'],
    [3600, '1h'],
    [3 * 86400 + 4 * 3600 + 12 * 60 + 9, '3d 4h'],
    [86400 + 59, '1d'], // minutes and seconds are below the second unit
    [2 * 3600 + 10 * 60 + 5, '2h 10m'],
    [400 * 86400, '400d'],
    [-65, '-1m 5s'],
  ]);
});

test('relativeTime', () => {
  const now = 1_764_368_400_000;
  table(relativeTime, [
    [[now, now], 'just now'],
    [[now - 999, now], 'just now'],
    [[now + 5000, now], 'just now'], // clock skew, not the future
    [[now - 3000, now], '3s ago'],
    [[now - 59_999, now], '59s ago'],
    [[now - 60_000, now], '1m ago'],
    [[now - 2 * 3600_000 - 1, now], '2h ago'],
    [[now - 3 * 86400_000, now], '3d ago'],
  ]);
});

test('rate, durationMs and metric-aware formatting', async () => {
  const { rate, durationMs, formatMetric, metricLabel, metricUnit } = await import('../static/js/format.js');
  table(rate, [
    [1536, '1.5 KiB/s'],
    [0, '0 B/s'],
  ]);
  table(durationMs, [
    [450, '450 ms'],
    [-45, '-45 ms'],
    [302_000, '5m 2s'],
  ]);
  table(metricUnit, [
    ['cpu.percent', 'percent'],
    ['mem.used_percent', 'percent'],
    ['temp.soc', 'celsius'],
    ['net.eth0.rx_bytes_per_s', 'rate'],
    ['mem.total_bytes', 'bytes'],
    ['host.uptime_s', 'seconds'],
    ['load.1', 'number'],
  ]);
  table(formatMetric, [
    [['cpu.percent', 12.5], '12.5 %'],
    [['temp.soc', 48.31], '48.3 °C'],
    [['net.eth0.tx_bytes_per_s', 2048], '2 KiB/s'],
    [['host.uptime_s', 90_061], '1d 1h'],
    [['load.1', 0.456], '0.46'],
    [['cpu.percent', undefined], MISSING],
  ]);
  table(metricLabel, [
    ['cpu.percent', 'CPU'],
    ['net.wlan0.rx_bytes_per_s', 'wlan0 receive'],
    ['custom.thing', 'custom.thing'],
  ]);
});
