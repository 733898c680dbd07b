import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countGaps, countPoints, createRing, historyURL, maxDeltaFor, mergeRows, parseHistory, pushLive, refreshEvery, sparkPoints, toUPlot, withGaps } from '../static/js/series.js';

test('parseHistory: raw single metric, bucketed, and series shapes', () => {
  const cases = [
    {
      name: 'raw single',
      resp: { device: 'pi', metric: 'cpu.percent', resolution: 'raw', step: 0, columns: ['ts', 'value'], points: [[2000, 13], [1000, 12.5]], gaps: [{ from: 1000, to: 2000 }] },
      want: { 'cpu.percent': { rows: [[1000, 12.5, null, null], [2000, 13, null, null]], bucketed: false, step: 0, gaps: [{ from: 1000, to: 2000 }] } },
    },
    {
      name: 'bucketed single',
      resp: { metric: 'temp.soc', resolution: '1m', step: 60000, columns: ['ts', 'avg', 'min', 'max'], points: [[0, 50, 48, 52]] },
      want: { 'temp.soc': { rows: [[0, 50, 48, 52]], bucketed: true, step: 60000, gaps: [] } },
    },
    {
      name: 'several metrics',
      resp: { series: [{ metric: 'a', columns: ['ts', 'value'], points: [[1, 2]] }, { metric: 'b', columns: ['ts', 'avg', 'min', 'max'], step: 10, points: [[1, 2, 1, 3], ['x', 1]] }] },
      want: { a: { rows: [[1, 2, null, null]], bucketed: false, step: 0, gaps: [] }, b: { rows: [[1, 2, 1, 3]], bucketed: true, step: 10, gaps: [] } },
    },
    { name: 'garbage', resp: null, want: {} },
    { name: 'bad gaps dropped', resp: { metric: 'a', points: [], gaps: [{ from: 5, to: 1 }, 'x'] }, want: { a: { rows: [], bucketed: false, step: 0, gaps: [] } } },
  ];
  for (const c of cases) {
    const got = Object.fromEntries([...parseHistory(c.resp)].map(([k, v]) => [k, { rows: v.rows, bucketed: v.bucketed, step: v.step, gaps: v.gaps }]));
    assert.deepEqual(got, c.want, c.name);
  }
});

test('withGaps inserts nulls inside reported gaps and long silences', () => {
  const r = (/** @type {number} */ ts) => [ts, 1, null, null];
  const cases = [
    { name: 'no gaps', rows: [r(0), r(1000), r(2000)], gaps: [], max: 2500, want: [0, 1000, 2000] },
    { name: 'reported gap', rows: [r(0), r(1000), r(9000)], gaps: [{ from: 1000, to: 9000 }], max: Infinity, want: [0, 1000, 'gap', 9000] },
    { name: 'leading gap ignored', rows: [r(5000), r(6000)], gaps: [{ from: 0, to: 5000 }], max: Infinity, want: [5000, 6000] },
    { name: 'distance rule', rows: [r(0), r(1000), r(10_000)], gaps: [], max: 2500, want: [0, 1000, 'gap', 10_000] },
    { name: 'empty', rows: [], gaps: [{ from: 0, to: 1 }], max: 1, want: [] },
  ];
  for (const c of cases) {
    const got = withGaps(c.rows, c.gaps, c.max).map((row) => (row[1] === null ? 'gap' : row[0]));
    assert.deepEqual(got, c.want, c.name);
  }
});

test('mergeRows: history wins up to its end, live appended after, range trimmed', () => {
  const hist = [[1000, 1, null, null], [2000, 2, null, null]];
  const live = [[1500, 9, null, null], [2000, 9, null, null], [3000, 3, null, null]];
  const got = mergeRows(hist, live, 1500).map((r) => [r[0], r[1]]);
  assert.deepEqual(got, [[2000, 2], [3000, 3]], 'got merged rows');
  assert.deepEqual(mergeRows([], live, 0).length, 3, 'no history: all live rows');
});

test('pushLive keeps the buffer sorted, deduped and bounded', () => {
  const buf = [];
  const cases = [
    [1000, 1, true],
    [2000, 2, true],
    [2000, 2, false], // replayed after a resume
    [1500, 5, true], // out of order
    [3000, NaN, false],
    [3000, 3, true],
  ];
  for (const [ts, v, want] of cases) assert.equal(pushLive(buf, ts, v, 3), want, `push ${ts}`);
  assert.deepEqual(buf.map((r) => r[0]), [1500, 2000, 3000], 'got buffer');
});

test('toUPlot: seconds on x, bands from min/max, nulls kept', () => {
  const rows = [[1000, 10, 5, 15], [1500, null, null, null], [2000, 20, null, null]];
  assert.deepEqual(toUPlot(rows, true), [[1, 1.5, 2], [10, null, 20], [5, null, 20], [15, null, 20]]);
  assert.deepEqual(toUPlot(rows, false), [[1, 1.5, 2], [10, null, 20]]);
  assert.equal(countPoints(toUPlot(rows, false)), 2);
  assert.equal(countPoints([[]]), 0);
});

test('maxDeltaFor: 2.5 intervals raw, 2.5 buckets bucketed', () => {
  const cases = [
    [undefined, 1000, 2500],
    [{ step: 60_000 }, 1000, 150_000],
    [{ step: 0 }, 10_000, 25_000],
    [undefined, 0, 25_000],
  ];
  for (const [s, interval, want] of cases) assert.equal(maxDeltaFor(/** @type {any} */ (s), interval), want, `interval ${interval}`);
});

test('historyURL encodes the device and repeats metric', () => {
  const got = historyURL('pi a', ['cpu.percent', 'temp.soc'], '15m');
  assert.equal(got, '/api/v1/devices/pi%20a/history?metric=cpu.percent&metric=temp.soc&from=-15m&to=now&points=1000');
});

test('ring holds the newest values and ignores older readings', () => {
  const ring = createRing(3);
  for (const [v, ts] of [[1, 10], [2, 20], [9, 15], [3, 30], [4, 40]]) ring.push(v, ts);
  assert.deepEqual(ring.values(), [2, 3, 4]);
  const untimed = createRing(2);
  untimed.push(1);
  untimed.push(2);
  assert.deepEqual(untimed.values(), [1, 2], 'pushes without a timestamp are kept');
});

test('sparkPoints: newest at the right edge, percent scale clamped', () => {
  const cases = [
    [[], ''],
    [[50], '10,5'],
    [[0, 100], '5,9 10,1'],
    [[150], '10,1'],
  ];
  for (const [vals, want] of cases) assert.equal(sparkPoints(vals, 10, 10, 3), want, `values ${JSON.stringify(vals)}`);
});

test('countGaps counts holes between drawn points only', () => {
  const cases = [
    { values: [], want: 0 },
    { values: [1, 2, 3], want: 0 },
    { values: [null, null, 1, 2, null], want: 0 }, // before the first, after the last: not holes
    { values: [1, null, 2], want: 1 },
    { values: [1, null, null, 2, 3, null, 4], want: 2 },
    { values: [null, 1, undefined, 2], want: 1 },
  ];
  for (const { values, want } of cases) {
    const got = countGaps(values);
    assert.equal(got, want, `countGaps(${JSON.stringify(values)}) = ${got}, want ${want}`);
  }
});

test('refreshEvery: long ranges about once a bucket, at least a minute; live ranges never', () => {
  const cases = [
    { range: '15m', want: 0 },
    { range: '1h', want: 0 },
    { range: '6h', want: 60_000 }, // 27 s buckets: a minute
    { range: '24h', want: 108_000 },
    { range: '7d', want: 756_000 },
    { range: '30d', want: 3_240_000 },
    { range: 'nope', want: 0 },
  ];
  for (const { range, want } of cases) {
    const got = refreshEvery(/** @type {any} */ (range));
    assert.equal(got, want, `refreshEvery(${range}) = ${got}, want ${want}`);
  }
});
