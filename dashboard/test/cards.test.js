import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregate, cardsFor, createTrend, parseSummaryMetrics, trendText } from '../static/js/cards.js';

const dev = (id, state, metrics, reason) => ({ id, state, metrics, tags: {}, ...(reason ? { reason } : {}) });

test('aggregate: counts, averages and the max device, offline values left out', () => {
  const s = aggregate([
    dev('a', 'online', { 'cpu.percent': 10, 'temp.soc': 50 }),
    dev('b', 'stale', { 'cpu.percent': 30, 'temp.soc': 70 }),
    dev('c', 'offline', { 'cpu.percent': 99, 'temp.soc': 90 }, 'lost'),
    dev('d', 'offline', {}, 'shutdown'),
  ]);
  assert.deepEqual([s.total, s.online, s.stale, s.offline, s.lost], [4, 1, 1, 2, 1], 'got counts');
  assert.deepEqual(s.metrics['cpu.percent'], { count: 2, avg: 20, max: 30, max_device: 'b' });
  assert.deepEqual(s.metrics['mem.used_percent'], { count: 0 });
});

test('parseSummaryMetrics keeps numeric fields only', () => {
  const cases = [
    [undefined, null],
    [{ total: 1 }, null],
    [{ metrics: { 'cpu.percent': { count: 2, avg: 5, max: 9, max_device: 'x', p95: 8 }, bad: 3 } }, { 'cpu.percent': { count: 2, avg: 5, max: 9, max_device: 'x' } }],
  ];
  for (const [raw, want] of cases) assert.deepEqual(parseSummaryMetrics(raw), want, `input ${JSON.stringify(raw)}`);
});

test('cardsFor: hub aggregates preferred, hottest falls back to CPU', () => {
  const s = aggregate([dev('a', 'online', { 'cpu.percent': 10 }), dev('b', 'online', { 'cpu.percent': 30, 'mem.used_percent': 40 })]);
  const c = cardsFor(s, null, { firing: 2, critical: 1 });
  const got = Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v.text]));
  assert.deepEqual(got, { online: '2 / 2', cpu: '20.0 %', memory: '40.0 %', hottest: '30.0 %', alerts: '2' });
  assert.equal(c.hottest.device, 'b');
  assert.equal(c.alerts.tone, 'bad');
  const hub = { 'temp.soc': { count: 1, avg: 61, max: 81.25, max_device: 'z' } };
  const h = cardsFor(s, hub, { firing: 0, critical: 0 });
  assert.deepEqual([h.hottest.text, h.hottest.device, h.hottest.tone, h.alerts.tone], ['81.3 °C', 'z', 'bad', 'ok']);
});

test('trend compares with the sample about a minute ago', () => {
  const tr = createTrend({ windowMs: 60_000, every: 5_000 });
  assert.equal(tr.delta(0, 'cpu', 10), undefined, 'no history yet');
  for (let t = 0; t <= 90_000; t += 1_000) tr.push(t, { cpu: t / 1000 });
  // Sampled every 5 s: the sample nearest 60 s before 90 s is at 30 s.
  assert.equal(tr.delta(90_000, 'cpu', 100), 70);
  assert.equal(tr.delta(90_000, 'cpu', undefined), undefined);
});

test('trendText', () => {
  const cases = [
    [[undefined, 'percent'], { dir: 'none', text: '' }],
    [[0.01, 'percent'], { dir: 'flat', text: '→ steady vs 1 min ago' }],
    [[2.345, 'percent'], { dir: 'up', text: '▲ +2.3 pt vs 1 min ago' }],
    [[-1.5, 'celsius'], { dir: 'down', text: '▼ −1.5 °C vs 1 min ago' }],
    [[3, 'count'], { dir: 'up', text: '▲ +3 vs 1 min ago' }],
  ];
  for (const [args, want] of cases) assert.deepEqual(trendText(...args), want, `input ${JSON.stringify(args)}`);
});
