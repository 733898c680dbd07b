// uPlot wrapper: one chart per metric. Colours come from the CSS custom
// properties so light and dark themes match the page; gaps stay gaps
// (spanGaps false) and bucketed history gets a min–max band.

import uPlot from '../vendor/uPlot.esm.js';
import { formatMetric, metricLabel, metricUnit } from './format.js';
import { countGaps, countPoints } from './series.js';
import { h, setAttr, setText } from './dom.js';

const HEIGHT = 180;

/** @param {Element} el @param {string} name @param {string} fallback */
function cssVar(el, name, fallback) {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}

/**
 * A short axis label: units only where they add information.
 * @param {string} metric @param {number} v
 */
function axisValue(metric, v) {
  const unit = metricUnit(metric);
  if (unit === 'percent') return `${Math.round(v)}%`;
  if (unit === 'celsius') return `${Math.round(v)}°`;
  return formatMetric(metric, v);
}

/**
 * @param {Document} doc
 * @param {string} metric
 * @param {boolean} bands draw min–max for bucketed data
 * @param {number} width
 * @param {() => [number, number]} window x range in seconds
 */
export function createChart(doc, metric, bands, width, window) {
  const wrap = h(doc, 'figure', 'chart');
  wrap.dataset.metric = metric;
  wrap.dataset.points = '0';
  const title = h(doc, 'figcaption', 'chart-title');
  const name = h(doc, 'span', 'chart-name', metricLabel(metric));
  const last = h(doc, 'span', 'chart-last');
  title.append(name, last);
  const plot = h(doc, 'div', 'chart-plot');
  const empty = h(doc, 'p', 'chart-empty', 'No data in this range.');
  empty.hidden = true;
  wrap.append(title, plot, empty);

  const root = doc.documentElement;
  const stroke = cssVar(root, '--chart-line', '#1f6f5c');
  const band = cssVar(root, '--chart-band', 'rgba(31,111,92,0.18)');
  const axis = cssVar(root, '--muted', '#5d6877');
  const grid = cssVar(root, '--border', '#e2e5e9');
  const fmt = (/** @type {unknown} */ u, /** @type {number | null} */ v) => (v === null || v === undefined ? '—' : formatMetric(metric, v));
  /** @type {uPlot.Series[]} */
  const series = [{}, { label: metricLabel(metric), stroke, width: 1.5, spanGaps: false, value: fmt, points: { show: false } }];
  if (bands) {
    const edge = { stroke: band, width: 1, spanGaps: false, value: fmt, points: { show: false } };
    series.push({ label: 'min', ...edge }, { label: 'max', ...edge });
  }
  const percentScale = metricUnit(metric) === 'percent';
  /** @type {uPlot.Options} */
  const opts = {
    width: Math.max(200, width),
    height: HEIGHT,
    // Room on the right so the last time label is not clipped.
    padding: [8, 28, 0, 0],
    series,
    bands: bands ? [{ series: [3, 2], fill: band }] : undefined,
    scales: {
      x: { time: true, range: () => window() },
      y: percentScale ? { range: (u, min, max) => [0, Math.max(100, max ?? 100)] } : { range: (u, min, max) => padRange(min, max) },
    },
    axes: [
      { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
      { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 56, values: (u, vals) => vals.map((v) => axisValue(metric, v)) },
    ],
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false } },
  };
  /** @type {uPlot | null} */
  let u = new uPlot(opts, [[], []].concat(bands ? [[], []] : []), plot);

  return {
    el: wrap,
    bands,
    /** @param {(number | null)[][]} data uPlot columns */
    setData(data) {
      if (!u) return;
      u.setData(/** @type {any} */ (data));
      const n = countPoints(data);
      wrap.dataset.points = String(n);
      // Holes between drawn points: a test checks that a reconnect leaves none.
      wrap.dataset.gaps = String(countGaps(data[1]));
      wrap.hidden = false;
      setAttr(wrap, 'data-empty', n === 0 ? 'true' : null);
      empty.hidden = n > 0;
      const vs = data[1];
      let lastV = null;
      for (let i = vs.length - 1; i >= 0; i--) if (vs[i] !== null) { lastV = vs[i]; break; }
      setText(last, lastV === null ? '' : formatMetric(metric, lastV));
    },
    /** @param {number} w */
    resize(w) {
      if (u && Math.abs(u.width - w) > 1) u.setSize({ width: Math.max(200, w), height: HEIGHT });
    },
    destroy() {
      u?.destroy();
      u = null;
      wrap.remove();
    },
  };
}

/** A little room above and below so flat lines are not glued to an edge. @param {number | null} min @param {number | null} max @returns {[number, number]} */
function padRange(min, max) {
  if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (min === max) return min === 0 ? [0, 1] : [min - Math.abs(min) * 0.1, max + Math.abs(max) * 0.1];
  const pad = (max - min) * 0.08;
  return [min >= 0 && min - pad < 0 ? 0 : min - pad, max + pad];
}
