import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alertLists, firingCounts, normalizeAlert, reduceAlerts, toastFor, updateToasts, TOAST_MS, MAX_TOASTS } from '../static/js/alerts-model.js';

const mk = (over) => normalizeAlert({ id: 'a1', rule: 'cpu_hot', device: 'pi-1', metric: 'cpu.percent', severity: 'warning', state: 'firing', value: 90, threshold: 85, summary: 's', started_at: 100, updated_at: 100, ...over });

test('normalizeAlert rejects what is not an alert and cleans fields', () => {
  for (const raw of [null, 1, {}, { id: '' }, { id: 5 }]) assert.equal(normalizeAlert(raw), null, `input ${JSON.stringify(raw)}`);
  const got = normalizeAlert({ id: 'x', severity: 'bogus', state: 'bogus', value: 'n', started_at: 5 });
  assert.deepEqual(got, { id: 'x', rule: '', device: '', metric: '', severity: 'warning', state: 'firing', value: undefined, threshold: undefined, summary: '', started_at: 5, updated_at: 5 });
});

test('reduceAlerts: newer updates win, resolved is final, no-ops keep identity', () => {
  const cases = [
    { name: 'new alert', start: [], add: [mk()], want: { state: 'firing', severity: 'warning' } },
    { name: 'escalates', start: [mk()], add: [mk({ severity: 'critical', updated_at: 200 })], want: { state: 'firing', severity: 'critical' } },
    { name: 'older update ignored', start: [mk({ updated_at: 300, value: 95 })], add: [mk({ updated_at: 200, value: 91 })], want: { state: 'firing', severity: 'warning', value: 95 } },
    { name: 'resolves', start: [mk()], add: [mk({ state: 'resolved', updated_at: 50, resolved_at: 400 })], want: { state: 'resolved', severity: 'warning' } },
    { name: 'stale firing after resolve ignored', start: [mk({ state: 'resolved', updated_at: 400 })], add: [mk({ updated_at: 500 })], want: { state: 'resolved', severity: 'warning' } },
    { name: 'ack kept when a later update omits it', start: [mk({ acked_at: 150, updated_at: 150 })], add: [mk({ updated_at: 160, value: 99 })], want: { state: 'firing', severity: 'warning', acked_at: 150 } },
  ];
  for (const c of cases) {
    const map = reduceAlerts(reduceAlerts(new Map(), c.start), c.add);
    const a = map.get('a1');
    const got = Object.fromEntries(Object.keys(c.want).map((k) => [k, a[k]]));
    assert.deepEqual(got, c.want, c.name);
  }
  const m = reduceAlerts(new Map(), [mk()]);
  assert.equal(reduceAlerts(m, [mk()]), m, 'same alert again: map unchanged');
});

test('alertLists and firingCounts', () => {
  const map = reduceAlerts(new Map(), [
    mk({ id: 'w-old', started_at: 1 }),
    mk({ id: 'c', severity: 'critical', started_at: 2 }),
    mk({ id: 'w-new', started_at: 3 }),
    mk({ id: 'r1', state: 'resolved', resolved_at: 10 }),
    mk({ id: 'r2', state: 'resolved', resolved_at: 20, device: 'pi-2' }),
  ]);
  const got = alertLists(map);
  assert.deepEqual(got.firing.map((a) => a.id), ['c', 'w-new', 'w-old'], 'firing: critical first, then newest');
  assert.deepEqual(got.recent.map((a) => a.id), ['r2', 'r1'], 'recent: newest resolution first');
  assert.deepEqual(alertLists(map, { device: 'pi-2' }).recent.map((a) => a.id), ['r2'], 'by device');
  assert.deepEqual(firingCounts(map), { firing: 3, critical: 1 });
});

test('toastFor: new, escalated and resolved alerts toast; updates stay quiet', () => {
  const now = 1000;
  const cases = [
    { name: 'new warning', prev: undefined, next: mk(), want: { state: 'firing', until: now + TOAST_MS.warning } },
    { name: 'new critical sticks', prev: undefined, next: mk({ severity: 'critical' }), want: { state: 'firing', until: Infinity } },
    { name: 'escalation', prev: mk(), next: mk({ severity: 'critical' }), want: { state: 'firing', until: Infinity } },
    { name: 'value update', prev: mk(), next: mk({ value: 99 }), want: null },
    { name: 'resolved', prev: mk(), next: mk({ state: 'resolved' }), want: { state: 'resolved', until: now + TOAST_MS.resolved } },
    { name: 'resolved again', prev: mk({ state: 'resolved' }), next: mk({ state: 'resolved' }), want: null },
  ];
  for (const c of cases) {
    const t = toastFor(c.prev, c.next, now);
    assert.deepEqual(t && { state: t.state, until: t.until }, c.want, c.name);
  }
});

test('updateToasts: one per alert, expiry, cap keeps sticky ones', () => {
  const t = (id, until) => ({ id, state: 'firing', severity: 'warning', title: id, text: '', until });
  let list = updateToasts([], t('a', 100), 0);
  list = updateToasts(list, t('a', 200), 0);
  assert.deepEqual(list.map((x) => [x.id, x.until]), [['a', 200]], 'replaced, not duplicated');
  assert.deepEqual(updateToasts(list, null, 250), [], 'expired');
  assert.equal(updateToasts(list, null, 10), list, 'nothing changed: same array');
  let many = [t('sticky', Infinity)];
  for (let i = 0; i < MAX_TOASTS + 2; i++) many = updateToasts(many, t(`n${i}`, 1000), 0);
  assert.equal(many.length, MAX_TOASTS, 'capped');
  assert.equal(many[0].id, 'sticky', 'sticky toast survives the cap');
});
