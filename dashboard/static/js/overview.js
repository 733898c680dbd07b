// The fleet overview: headline cards and the device table. Rows are keyed
// by device id and updated in place; a row whose device object is unchanged
// (the model is immutable) only has its "last seen" age refreshed, so 500
// devices cost 500 comparisons per frame, not 500 rebuilds.

import { celsius, duration, formatMetric, number, percent, relativeTime, MISSING } from './format.js';
import { temperature } from './fleet.js';
import { badgeFor, filterDevices, nextSort, sortBy, tagOptions } from './table.js';
import { aggregate, cardsFor, createTrend, trendText } from './cards.js';
import { deviceHref } from './router.js';
import { createSparkline } from './sparkline.js';
import { h, setAttr, setHidden, setText } from './dom.js';

/** @typedef {import('./fleet.js').Device} Device */
/** @typedef {import('./table.js').Sort} Sort */
/** @typedef {ReturnType<typeof import('./store.js').createSparkStore>} SparkStore */

/**
 * @typedef {object} OverviewInput
 * @property {import('./fleet.js').Fleet} fleet
 * @property {Record<string, import('./cards.js').Agg> | null} hubMetrics
 * @property {{firing: number, critical: number}} alertCounts
 * @property {boolean} alertsKnown whether the alert list has loaded
 * @property {number} hubNow hub clock, Unix ms
 * @property {number} now local clock
 */

const CARD_KINDS = /** @type {const} */ ({ online: 'count', cpu: 'percent', memory: 'percent', hottest: 'celsius', alerts: 'count' });

/**
 * @param {Document} doc
 * @param {SparkStore} sparks
 * @param {() => void} invalidate asks for a render (filters changed)
 */
export function createOverview(doc, sparks, invalidate) {
  const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (doc.getElementById(id));
  const els = {
    area: $('fleet-area'),
    table: $('fleet'),
    rows: $('rows'),
    empty: $('empty'),
    noMatch: $('no-match'),
    shown: $('shown'),
    search: /** @type {HTMLInputElement} */ ($('search')),
    state: /** @type {HTMLSelectElement} */ ($('state-filter')),
    tag: /** @type {HTMLSelectElement} */ ($('tag-filter')),
  };
  /** @type {Sort} */
  let sort = { key: 'id', dir: 'asc' };
  /** @type {Map<string, Row>} */
  const rows = new Map();
  const trend = createTrend();
  const cards = bindCards(doc);
  let tagKey = '';
  /** @type {{devices: Device[] | null, sortKey: string, filterKey: string, order: Device[]}} */
  const memo = { devices: null, sortKey: '', filterKey: '', order: [] };
  // Rows near the viewport. A fleet of 500 sends 500 readings a second;
  // only the dozen rows on screen need their cells and sparklines redrawn.
  // The others are brought up to date when they scroll into view.
  /** @type {Set<Element>} */
  const onScreen = new Set();
  const io = typeof IntersectionObserver === 'function'
    ? new IntersectionObserver((entries) => {
      let shown = false;
      for (const e of entries) {
        if (e.isIntersecting) {
          onScreen.add(e.target);
          shown = true;
        } else onScreen.delete(e.target);
      }
      if (shown) invalidate();
    }, { rootMargin: '300px 0px' })
    : null;

  for (const e of [els.search, els.state, els.tag]) e.addEventListener('input', invalidate);
  doc.getElementById('clear-filters')?.addEventListener('click', () => {
    els.search.value = '';
    els.state.value = '';
    els.tag.value = '';
    invalidate();
    els.search.focus();
  });
  doc.querySelector('.devices thead')?.addEventListener('click', (ev) => {
    const btn = /** @type {HTMLElement} */ (ev.target).closest('button[data-sort]');
    if (!btn) return;
    sort = nextSort(sort, /** @type {string} */ (btn.getAttribute('data-sort')));
    for (const th of doc.querySelectorAll('.devices thead th[data-col]')) {
      const col = th.getAttribute('data-col');
      setAttr(th, 'aria-sort', col === sort.key ? (sort.dir === 'asc' ? 'ascending' : 'descending') : null);
    }
    invalidate();
  });
  setAttr(/** @type {Element} */ (doc.querySelector('.devices thead th[data-col="id"]')), 'aria-sort', 'ascending');

  /** @param {OverviewInput} inp */
  function render(inp) {
    const { fleet, hubNow, now } = inp;
    const empty = fleet.devices.length === 0;
    setHidden(els.empty, !empty);
    setHidden(els.area, empty);

    const s = aggregate(fleet.devices);
    const c = cardsFor(s, inp.hubMetrics, inp.alertCounts);
    if (!inp.alertsKnown) c.alerts = { ...c.alerts, num: undefined, text: MISSING, sub: 'loading…', tone: undefined };
    trend.push(now, Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v.num])));
    for (const [key, card] of Object.entries(c)) {
      const t = trendText(trend.delta(now, key, card.num), CARD_KINDS[/** @type {keyof typeof CARD_KINDS} */ (key)]);
      cards.update(key, card, t);
    }
    if (empty) return;

    updateTagOptions(fleet.devices);
    const order = visible(fleet.devices);
    setHidden(els.noMatch, order.length > 0);
    setHidden(els.table, order.length === 0);
    setText(els.shown, order.length === fleet.devices.length ? `${order.length} devices` : `${order.length} of ${fleet.devices.length} devices`);
    renderRows(order, fleet.devices, hubNow);
  }

  /** Filtered and sorted devices, recomputed only when an input changed. @param {Device[]} devices */
  function visible(devices) {
    const filterKey = `${els.state.value}\u0000${els.tag.value}\u0000${els.search.value}`;
    const sortKey = `${sort.key}:${sort.dir}`;
    // Sorting by id keeps the fleet's own order, so readings need no re-sort.
    if (memo.devices !== devices || memo.filterKey !== filterKey || memo.sortKey !== sortKey) {
      const f = filterDevices(devices, { state: els.state.value, tag: els.tag.value, query: els.search.value });
      memo.order = sort.key === 'id' && sort.dir === 'asc' ? f : sortBy(f, sort);
      Object.assign(memo, { devices, filterKey, sortKey });
    }
    return memo.order;
  }

  /** @param {Device[]} devices */
  function updateTagOptions(devices) {
    const opts = tagOptions(devices);
    const key = opts.join('\n');
    if (key === tagKey) return;
    tagKey = key;
    const cur = els.tag.value;
    const all = h(doc, 'option', '', 'All');
    all.value = '';
    els.tag.replaceChildren(all, ...opts.map((t) => Object.assign(h(doc, 'option', '', t), { value: t })));
    els.tag.value = opts.includes(cur) ? cur : '';
  }

  /** @param {Device[]} order @param {Device[]} all @param {number} hubNow */
  function renderRows(order, all, hubNow) {
    let prev = null;
    for (const d of order) {
      let row = rows.get(d.id);
      if (!row) {
        row = createRow(doc, d.id);
        rows.set(d.id, row);
        io?.observe(row.tr);
      }
      // Every row gets its first content; later, only rows on screen.
      if (!io || row.device === null || onScreen.has(row.tr)) updateRow(row, d, hubNow, sparks);
      const want = prev ? prev.nextSibling : els.rows.firstChild;
      if (want !== row.tr) els.rows.insertBefore(row.tr, want);
      prev = row.tr;
    }
    // Rows filtered out leave the DOM; rows of departed devices are dropped.
    while (prev ? prev.nextSibling : els.rows.firstChild) /** @type {ChildNode} */ ((prev ? prev.nextSibling : els.rows.firstChild)).remove();
    if (rows.size > all.length) {
      const ids = new Set(all.map((d) => d.id));
      for (const [id, row] of rows) {
        if (ids.has(id)) continue;
        io?.unobserve(row.tr);
        onScreen.delete(row.tr);
        rows.delete(id);
      }
      sparks.prune(ids);
    }
  }

  return { render };
}

/**
 * @typedef {object} Row
 * @property {HTMLTableRowElement} tr
 * @property {Device | null} device the object last rendered
 * @property {HTMLElement} tags
 * @property {HTMLElement} badge
 * @property {HTMLElement} reboot
 * @property {Record<string, HTMLElement>} cells
 * @property {ReturnType<typeof createSparkline>} spark
 */

const METRIC_CELLS = ['cpu.percent', 'spark', 'mem.used_percent', 'load.1', 'temp.soc', 'host.uptime_s'];
/** @type {Record<string, string>} */
const CELL_LABELS = { 'cpu.percent': 'CPU', spark: 'CPU, last minute', 'mem.used_percent': 'Memory', 'load.1': 'Load 1', 'temp.soc': 'Temp', 'host.uptime_s': 'Uptime' };

/** @param {Document} doc @param {string} id @returns {Row} */
function createRow(doc, id) {
  const tr = h(doc, 'tr');
  tr.dataset.device = id;
  const th = h(doc, 'th', 'device');
  th.scope = 'row';
  const a = h(doc, 'a', 'device-id', id);
  a.href = deviceHref(id);
  const tags = h(doc, 'span', 'device-tags');
  th.append(a, tags);
  const stateTd = h(doc, 'td', 'col-state');
  const badge = h(doc, 'span', 'badge');
  const reboot = h(doc, 'span', 'badge badge-reboot', 'rebooted');
  reboot.hidden = true;
  stateTd.append(badge, reboot);
  const seen = h(doc, 'td', 'col-seen');
  seen.dataset.label = 'Last seen';
  tr.append(th, stateTd, seen);
  /** @type {Record<string, HTMLElement>} */
  const cells = { seen };
  const spark = createSparkline(doc);
  for (const m of METRIC_CELLS) {
    const td = h(doc, 'td', m === 'spark' ? 'col-spark' : 'num');
    if (m === 'spark') td.append(spark.el);
    else td.dataset.metric = m;
    // Phone layout labels each cell (CSS ::before); not part of textContent.
    td.dataset.label = CELL_LABELS[m];
    tr.append(td);
    cells[m] = td;
  }
  return { tr, device: null, tags, badge, reboot, cells, spark };
}

/** @param {Row} row @param {Device} d @param {number} hubNow @param {SparkStore} sparks */
function updateRow(row, d, hubNow, sparks) {
  const c = row.cells;
  setText(c.seen, d.last_seen ? relativeTime(d.last_seen, hubNow) : MISSING);
  const b = badgeFor(d, hubNow);
  setHidden(row.reboot, !b.rebooted);
  const s = sparks.get(d.id);
  row.spark.draw(s.values, s.version);
  if (row.device === d) return;
  row.device = d;
  setAttr(row.tr, 'data-state', d.state);
  setText(row.tags, Object.entries(d.tags).map(([k, v]) => `${k}=${v}`).join(' · '));
  setAttr(row.badge, 'data-state', b.state);
  setAttr(row.badge, 'data-reason', b.reason);
  setText(row.badge, b.text);
  if (d.rebooted_at) setAttr(row.reboot, 'title', `Rebooted ${new Date(d.rebooted_at).toLocaleString()}`);
  setAttr(c.seen, 'title', d.last_seen ? new Date(d.last_seen).toLocaleString() : null);
  const m = d.metrics;
  setText(c['cpu.percent'], percent(m['cpu.percent']));
  setText(c['mem.used_percent'], percent(m['mem.used_percent']));
  setAttr(c['mem.used_percent'], 'title', m['mem.total_bytes'] ? `of ${formatMetric('mem.total_bytes', m['mem.total_bytes'])}` : null);
  setText(c['load.1'], number(m['load.1'], 2));
  setText(c['temp.soc'], celsius(temperature(m)));
  setText(c['host.uptime_s'], duration(m['host.uptime_s']));
}

/** @param {Document} doc */
function bindCards(doc) {
  /** @type {Record<string, {root: HTMLElement, value: HTMLElement, trend: HTMLElement, sub: HTMLElement, link: HTMLAnchorElement | null}>} */
  const byKey = {};
  for (const root of doc.querySelectorAll('#cards [data-card]')) {
    const r = /** @type {HTMLElement} */ (root);
    byKey[/** @type {string} */ (r.dataset.card)] = {
      root: r,
      value: /** @type {HTMLElement} */ (r.querySelector('.value')),
      trend: /** @type {HTMLElement} */ (r.querySelector('.trend')),
      sub: /** @type {HTMLElement} */ (r.querySelector('.card-sub')),
      link: r.querySelector('.card-link'),
    };
  }
  return {
    /**
     * @param {string} key
     * @param {import('./cards.js').Card} card
     * @param {{dir: string, text: string}} t
     */
    update(key, card, t) {
      const e = byKey[key];
      if (!e) return;
      setText(e.value, card.text);
      setAttr(e.root, 'data-tone', card.tone ?? null);
      setText(e.trend, t.text);
      setAttr(e.trend, 'data-dir', t.dir);
      if (e.link) {
        setText(e.link, card.sub);
        if (key === 'hottest') {
          setAttr(e.link, 'href', card.device ? deviceHref(card.device) : '#/');
          setAttr(e.link, 'tabindex', card.device ? null : '-1');
        }
      } else {
        setText(e.sub, card.sub);
      }
    },
  };
}
