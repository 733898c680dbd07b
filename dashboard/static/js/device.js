// The device page (#/device/<id>): charts from the history API with live
// readings appended in the live ranges, the inventory panel, its alerts and
// its timeline. After a reconnect the visible range is refetched and merged
// with the live buffer, so charts resume without a hole.

import { getJSON, errorText, isAbort, HTTPError } from './api.js';
import { createChart } from './charts.js';
import { DEFAULT_METRICS, inventoryRows, pickerMetrics, timeline } from './device-model.js';
import { RANGES, historyURL, maxDeltaFor, mergeRows, parseHistory, pushLive, refreshEvery, toUPlot, withGaps } from './series.js';
import { metricLabel, relativeTime } from './format.js';
import { badgeFor } from './table.js';
import { createAlertItem, updateAlertItem } from './alerts-view.js';
import { alertLists } from './alerts-model.js';
import { h, setAttr, setHidden, setText, syncList } from './dom.js';

/** @typedef {import('./series.js').Series} Series */
/** @typedef {import('./series.js').Row} Row */
/** @typedef {keyof typeof RANGES} RangeKey */

/** Live rows kept per metric: an hour and a bit at one reading a second. */
const LIVE_MAX = 4000;

/**
 * @param {Document} doc
 * @param {{invalidate: () => void, onAlerts: (raw: unknown) => void}} hooks
 */
export function createDevicePage(doc, hooks) {
  const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (doc.getElementById(id));
  const els = {
    root: $('view-device'),
    title: $('device-title'),
    badge: $('device-badge'),
    reboot: $('device-reboot'),
    missing: $('device-missing'),
    charts: $('charts'),
    status: $('chart-status'),
    options: $('metric-options'),
    info: $('device-info'),
    alerts: $('device-alerts'),
    alertsEmpty: $('device-alerts-empty'),
    events: $('device-events'),
    eventsEmpty: $('device-events-empty'),
  };

  /** @type {string | null} */
  let id = null;
  /** @type {RangeKey} */
  let range = '1h';
  /** @type {string[]} */
  let selected = [...DEFAULT_METRICS];
  let userPicked = false;
  /** @type {Map<string, Series>} */
  let history = new Map();
  /** @type {[number, number]} */
  let histWindow = [0, 0];
  /** @type {Map<string, Row[]>} */
  let live = new Map();
  /** @type {Map<string, ReturnType<typeof createChart>>} */
  const charts = new Map();
  /** @type {any} */
  let info = null;
  /** @type {import('./device-model.js').TimelineEntry[]} */
  let events = [];
  let chartsDirty = false;
  let lastSecond = 0;
  let hubNow = Date.now();
  /** @type {AbortController | null} */
  let aborter = null;
  let historySeq = 0;
  let eventsTimer = 0;
  let refreshTimer = 0;
  let optionsKey = '';
  const alertCache = new Map();
  const eventCache = new Map();

  for (const btn of els.root.querySelectorAll('button[data-range]')) {
    btn.addEventListener('click', () => setRange(/** @type {RangeKey} */ (btn.getAttribute('data-range'))));
  }
  els.options.addEventListener('change', () => {
    const checked = [...els.options.querySelectorAll('input:checked')].map((i) => /** @type {HTMLInputElement} */ (i).value);
    userPicked = true;
    selected = checked;
    rebuildCharts();
    loadHistory();
  });
  const ro = new ResizeObserver(() => {
    const w = els.charts.clientWidth;
    for (const c of charts.values()) c.resize(chartWidth(w));
  });
  ro.observe(els.charts);
  // Theme switches change the CSS colours the charts were built with.
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    if (id) rebuildCharts();
  });

  /** @param {number} w */
  const chartWidth = (w) => (w >= 900 ? Math.floor((w - 16) / 2) : w);

  /** @param {RangeKey} r */
  function setRange(r) {
    if (!(r in RANGES) || r === range) return;
    range = r;
    for (const b of els.root.querySelectorAll('button[data-range]')) setAttr(b, 'aria-pressed', String(b.getAttribute('data-range') === r));
    loadHistory();
    scheduleRefresh();
  }

  /** The long ranges are fetched again now and then (the live ones append readings). */
  function scheduleRefresh() {
    clearInterval(refreshTimer);
    refreshTimer = 0;
    const every = refreshEvery(range);
    if (every > 0) refreshTimer = /** @type {any} */ (setInterval(loadHistory, every));
  }

  /** Opens a device (or re-opens after a route change). @param {string} next */
  function enter(next) {
    if (next === id) return;
    leave();
    id = next;
    els.root.dataset.device = next;
    setText(els.title, next);
    doc.title = `${next} · Fleetwatch`;
    setHidden(els.missing, true);
    info = null;
    events = [];
    history = new Map();
    live = new Map();
    optionsKey = '';
    if (!userPicked) selected = [...DEFAULT_METRICS];
    aborter = new AbortController();
    rebuildCharts();
    loadInfo();
    loadEvents();
    loadAlerts();
    loadHistory();
    scheduleRefresh();
  }

  function leave() {
    aborter?.abort();
    aborter = null;
    clearTimeout(eventsTimer);
    clearInterval(refreshTimer);
    refreshTimer = 0;
    for (const c of charts.values()) c.destroy();
    charts.clear();
    id = null;
  }

  async function loadInfo() {
    const want = id;
    try {
      const res = await getJSON(`/api/v1/devices/${encodeURIComponent(/** @type {string} */ (want))}`, { signal: aborter?.signal });
      if (want !== id) return;
      info = res;
      hooks.invalidate();
    } catch (err) {
      if (isAbort(err) || want !== id) return;
      if (err instanceof HTTPError && err.status === 404) {
        setText(els.missing, `No device “${want}” is known to this hub. It may have been removed, or the link is mistyped.`);
        setHidden(els.missing, false);
      }
    }
  }

  async function loadEvents() {
    const want = id;
    try {
      const res = await getJSON(`/api/v1/devices/${encodeURIComponent(/** @type {string} */ (want))}/events?limit=50`, { signal: aborter?.signal });
      if (want !== id) return;
      events = timeline(res);
      hooks.invalidate();
    } catch {
      // The timeline is secondary; its empty note stays.
    }
  }

  async function loadAlerts() {
    const want = id;
    try {
      const res = await getJSON(`/api/v1/alerts?state=all&device=${encodeURIComponent(/** @type {string} */ (want))}&limit=20`, { signal: aborter?.signal });
      if (want === id) hooks.onAlerts(res);
    } catch {
      // Live alerts still arrive; the list fills as they do.
    }
  }

  async function loadHistory() {
    if (!id) return;
    const want = id;
    const seq = ++historySeq;
    const metrics = selected.slice(0, 32);
    if (metrics.length === 0) {
      setText(els.status, 'Pick a metric to chart.');
      return;
    }
    setText(els.status, 'Loading history…');
    els.charts.setAttribute('aria-busy', 'true');
    try {
      const res = await getJSON(historyURL(want, metrics, range), { signal: aborter?.signal });
      if (want !== id || seq !== historySeq) return;
      history = parseHistory(res);
      histWindow = [typeof res.from === 'number' ? res.from : hubNow - RANGES[range].ms, typeof res.to === 'number' ? res.to : hubNow];
      // Band series exist only for bucketed data: rebuild when that changed.
      const needRebuild = metrics.some((m) => (history.get(m)?.bucketed ?? false) !== (charts.get(m)?.bands ?? false));
      if (needRebuild) rebuildCharts();
      setText(els.status, '');
      chartsDirty = true;
      hooks.invalidate();
    } catch (err) {
      if (isAbort(err) || want !== id || seq !== historySeq) return;
      setText(els.status, `Could not load history: ${errorText(err)}.`);
    } finally {
      if (seq === historySeq) els.charts.removeAttribute('aria-busy');
    }
  }

  function rebuildCharts() {
    for (const c of charts.values()) c.destroy();
    charts.clear();
    const w = chartWidth(els.charts.clientWidth || 800);
    for (const m of selected) {
      const c = createChart(doc, m, history.get(m)?.bucketed ?? false, w, xWindow);
      charts.set(m, c);
      els.charts.append(c.el);
    }
    chartsDirty = true;
  }

  /** The x range in seconds: sliding in the live ranges. @returns {[number, number]} */
  function xWindow() {
    const r = RANGES[range];
    if (r.live) return [(hubNow - r.ms) / 1000, hubNow / 1000];
    return [histWindow[0] / 1000, histWindow[1] / 1000];
  }

  function drawCharts() {
    const r = RANGES[range];
    const interval = typeof info?.interval_ms === 'number' ? info.interval_ms : 1000;
    for (const [m, c] of charts) {
      const s = history.get(m);
      const base = s?.rows ?? [];
      const rows = r.live ? mergeRows(base, live.get(m) ?? [], hubNow - r.ms) : base;
      const data = toUPlot(withGaps(rows, s?.gaps ?? [], maxDeltaFor(s, interval)), c.bands);
      c.setData(data);
    }
  }

  /** A live reading; only this device's matter. @param {any} data */
  function onReading(data) {
    if (!id || !data || data.device !== id || typeof data.metrics !== 'object') return;
    for (const [m, v] of Object.entries(data.metrics)) {
      if (typeof v !== 'number') continue;
      let buf = live.get(m);
      if (!buf) live.set(m, (buf = []));
      pushLive(buf, data.ts, v, LIVE_MAX);
    }
    if (RANGES[range].live) chartsDirty = true;
  }

  /** A status change: the timeline has a new entry. @param {any} data */
  function onStatus(data) {
    if (!id || !data || data.device !== id) return;
    clearTimeout(eventsTimer);
    eventsTimer = /** @type {any} */ (setTimeout(() => {
      loadEvents();
      loadInfo();
    }, 1000));
  }

  /** Back online: fill what the outage missed. */
  function onReconnect() {
    if (!id) return;
    loadHistory();
    loadEvents();
    loadAlerts();
  }

  /**
   * @param {{fleet: import('./fleet.js').Fleet | null, alerts: Map<string, import('./alerts-model.js').Alert>, hubNow: number, now: number}} inp
   */
  function render(inp) {
    if (!id) return;
    hubNow = inp.hubNow;
    const dev = inp.fleet?.devices.find((d) => d.id === id);
    if (dev) {
      const b = badgeFor(dev, hubNow);
      setAttr(els.badge, 'data-state', b.state);
      setAttr(els.badge, 'data-reason', b.reason);
      setText(els.badge, b.text);
      setHidden(els.reboot, !b.rebooted);
    } else {
      setText(els.badge, info?.state ?? '');
      setAttr(els.badge, 'data-state', info?.state ?? null);
    }
    renderOptions(dev);
    renderInfo(inventoryRows(info, dev, hubNow));

    const { firing, recent } = alertLists(inp.alerts, { device: id, recent: 10 });
    const list = [...firing, ...recent];
    syncList(els.alerts, list, (a) => a.id, () => createAlertItem(doc, false), (el, a) => updateAlertItem(el, a, inp.now, new Set()), alertCache);
    setHidden(els.alertsEmpty, list.length > 0);

    syncList(
      els.events,
      events,
      (e) => `${e.ts}:${e.type}:${e.text}`,
      () => {
        const li = h(doc, 'li', 'event');
        li.append(h(doc, 'time', 'event-time'), h(doc, 'span', 'event-text'));
        return li;
      },
      (li, e) => {
        setAttr(li, 'data-tone', e.tone);
        const [t, text] = /** @type {HTMLElement[]} */ ([...li.children]);
        setText(t, relativeTime(e.ts, hubNow));
        setAttr(t, 'datetime', new Date(e.ts).toISOString());
        setAttr(t, 'title', new Date(e.ts).toLocaleString());
        setText(text, e.text);
      },
      eventCache,
    );
    setHidden(els.eventsEmpty, events.length > 0);

    // Live ranges slide with the clock even between readings.
    const sec = Math.floor(inp.now / 1000);
    if (chartsDirty || (RANGES[range].live && sec !== lastSecond)) {
      chartsDirty = false;
      lastSecond = sec;
      drawCharts();
    }
  }

  /** @param {import('./fleet.js').Device | undefined} dev */
  function renderOptions(dev) {
    const names = new Set([...Object.keys(dev?.metrics ?? {}), ...Object.keys(info?.metrics ?? {})]);
    const opts = pickerMetrics(names);
    const key = opts.join('\n');
    if (key === optionsKey) return;
    optionsKey = key;
    // Defaults the device does not report would only draw empty charts.
    if (!userPicked && names.size > 0) {
      const next = DEFAULT_METRICS.filter((m) => names.has(m));
      if (next.join() !== selected.join()) {
        selected = next;
        rebuildCharts();
        loadHistory();
      }
    }
    const legend = els.options.querySelector('legend');
    els.options.replaceChildren(...(legend ? [legend] : []));
    for (const m of opts) {
      const label = h(doc, 'label', 'picker-option');
      const input = h(doc, 'input');
      input.type = 'checkbox';
      input.value = m;
      input.checked = selected.includes(m);
      label.append(input, h(doc, 'span', '', `${metricLabel(m)}`), h(doc, 'span', 'muted', m === metricLabel(m) ? '' : ` ${m}`));
      els.options.append(label);
    }
  }

  /** @type {string} */
  let infoKey = '';
  /** @param {[string, string, string?][]} rows */
  function renderInfo(rows) {
    const key = JSON.stringify(rows);
    if (key === infoKey) return;
    infoKey = key;
    const frag = doc.createDocumentFragment();
    for (const [label, value, title] of rows) {
      const dt = h(doc, 'dt', '', label);
      const dd = h(doc, 'dd', '', value);
      if (title) dd.title = title;
      frag.append(dt, dd);
    }
    els.info.replaceChildren(frag);
  }

  return { enter, leave, render, onReading, onStatus, onReconnect, get id() { return id; } };
}
