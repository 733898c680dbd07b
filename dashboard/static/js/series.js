// Time series for the charts and sparklines: history responses into rows,
// merging live readings in without duplicates, and gaps as null rows so
// uPlot breaks the line instead of drawing across missing time. Pure.

/** @type {(v: unknown) => v is number} */
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
/** @type {(v: unknown) => v is Record<string, any>} */
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A row: [ts ms, value (avg when bucketed), min, max]; min/max are null for
 * raw data and a whole row of nulls marks a gap.
 * @typedef {[number, number | null, number | null, number | null]} Row
 * @typedef {{from: number, to: number}} Gap
 * @typedef {object} Series
 * @property {string} metric
 * @property {Row[]} rows sorted by ts, no gap rows yet
 * @property {boolean} bucketed min/max bands exist
 * @property {number} step bucket width in ms, 0 when raw
 * @property {Gap[]} gaps as the hub reported them
 */

/** Ranges the device page offers: span, points asked for, live appends. */
export const RANGES = Object.freeze({
  '15m': { ms: 15 * 60_000, points: 1000, live: true },
  '1h': { ms: 60 * 60_000, points: 1200, live: true },
  '6h': { ms: 6 * 3600_000, points: 800, live: false },
  '24h': { ms: 24 * 3600_000, points: 800, live: false },
  '7d': { ms: 7 * 86400_000, points: 800, live: false },
  '30d': { ms: 30 * 86400_000, points: 800, live: false },
});

/**
 * How often a range that is not live is fetched again, so a wall screen
 * showing a day keeps moving: about one chart bucket (range / points), at
 * least a minute.
 * @param {keyof typeof RANGES} range
 * @returns {number} ms; 0 for the live ranges, which append readings
 */
export function refreshEvery(range) {
  const r = RANGES[range];
  if (!r || r.live) return 0;
  return Math.max(60_000, Math.round(r.ms / r.points));
}

/**
 * @param {string} device
 * @param {string[]} metrics
 * @param {keyof typeof RANGES} range
 * @returns {string} the history URL
 */
export function historyURL(device, metrics, range) {
  const r = RANGES[range] ?? RANGES['1h'];
  const q = new URLSearchParams();
  for (const m of metrics) q.append('metric', m);
  q.set('from', `-${Math.round(r.ms / 60_000)}m`);
  q.set('to', 'now');
  q.set('points', String(r.points));
  return `/api/v1/devices/${encodeURIComponent(device)}/history?${q}`;
}

/**
 * One metric's part of a history response (either shape).
 * @param {Record<string, any>} s
 * @param {string} metric
 * @returns {Series}
 */
function parseOne(s, metric) {
  const cols = Array.isArray(s.columns) ? s.columns : ['ts', 'value'];
  const bucketed = cols.length >= 4 && cols[2] === 'min' && cols[3] === 'max';
  /** @type {Row[]} */
  const rows = [];
  for (const p of Array.isArray(s.points) ? s.points : []) {
    if (!Array.isArray(p) || !isNum(p[0])) continue;
    const v = isNum(p[1]) ? p[1] : null;
    rows.push(bucketed ? [p[0], v, isNum(p[2]) ? p[2] : v, isNum(p[3]) ? p[3] : v] : [p[0], v, null, null]);
  }
  rows.sort((a, b) => a[0] - b[0]);
  /** @type {Gap[]} */
  const gaps = [];
  for (const g of Array.isArray(s.gaps) ? s.gaps : []) {
    if (isObject(g) && isNum(g.from) && isNum(g.to) && g.to > g.from) gaps.push({ from: g.from, to: g.to });
  }
  return { metric, rows, bucketed, step: isNum(s.step) ? s.step : 0, gaps };
}

/**
 * GET …/history in either shape (one metric, or "series") → series by metric.
 * @param {unknown} resp
 * @returns {Map<string, Series>}
 */
export function parseHistory(resp) {
  const out = new Map();
  if (!isObject(resp)) return out;
  if (Array.isArray(resp.series)) {
    for (const s of resp.series) if (isObject(s) && typeof s.metric === 'string') out.set(s.metric, parseOne(s, s.metric));
  } else if (typeof resp.metric === 'string') {
    out.set(resp.metric, parseOne(resp, resp.metric));
  }
  return out;
}

/**
 * Merges live rows into history: history is authoritative up to its last
 * timestamp (it holds replayed readings the live feed never saw); live rows
 * after it are appended. Duplicate timestamps keep the history row.
 * @param {Row[]} history sorted
 * @param {Row[]} live sorted
 * @param {number} from drop rows before this (ms)
 * @returns {Row[]}
 */
export function mergeRows(history, live, from) {
  const last = history.length ? history[history.length - 1][0] : -Infinity;
  const out = history.filter((r) => r[0] >= from);
  for (const r of live) if (r[0] > last && r[0] >= from) out.push(r);
  return out;
}

/**
 * Appends a live reading to a buffer in place, keeping it sorted and free
 * of duplicates (a resumed feed can replay readings) and at most `max` long.
 * @param {Row[]} buf
 * @param {number} ts
 * @param {number} v
 * @param {number} max
 * @returns {boolean} whether the buffer changed
 */
export function pushLive(buf, ts, v, max) {
  if (!isNum(ts) || !isNum(v)) return false;
  /** @type {Row} */
  const row = [ts, v, null, null];
  const n = buf.length;
  if (n === 0 || buf[n - 1][0] < ts) buf.push(row);
  else {
    // Rare: out of order. Find its place; an equal ts is a replay.
    let i = n - 1;
    while (i >= 0 && buf[i][0] > ts) i--;
    if (i >= 0 && buf[i][0] === ts) return false;
    buf.splice(i + 1, 0, row);
  }
  if (buf.length > max) buf.splice(0, buf.length - max);
  return true;
}

/**
 * Inserts a null row wherever time is missing: inside a gap the hub
 * reported, or where consecutive rows are further apart than maxDelta.
 * @param {Row[]} rows sorted
 * @param {Gap[]} gaps
 * @param {number} maxDelta ms; Infinity disables the distance rule
 * @returns {Row[]}
 */
export function withGaps(rows, gaps, maxDelta) {
  /** @type {Row[]} */
  const out = [];
  for (let i = 0; i < rows.length; i++) {
    if (i > 0) {
      const a = rows[i - 1][0];
      const b = rows[i][0];
      if (b - a > maxDelta || gaps.some((g) => coversGap(g, a, b))) {
        out.push([a + (b - a) / 2, null, null, null]);
      }
    }
    out.push(rows[i]);
  }
  return out;
}

/**
 * A reported gap splits a and b only when it lies between them (it may
 * touch either end), not when it merely overlaps one bucket's edge.
 * @param {Gap} g @param {number} a @param {number} b
 */
function coversGap(g, a, b) {
  return g.from >= a && g.to <= b;
}

/**
 * Rows → uPlot's columnar data: x in seconds, then the value, then min and
 * max when bands are drawn.
 * @param {Row[]} rows
 * @param {boolean} bands
 * @returns {(number | null)[][]}
 */
export function toUPlot(rows, bands) {
  const xs = new Array(rows.length);
  const vs = new Array(rows.length);
  const lo = bands ? new Array(rows.length) : null;
  const hi = bands ? new Array(rows.length) : null;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    xs[i] = r[0] / 1000;
    vs[i] = r[1];
    if (lo && hi) {
      lo[i] = r[2] ?? r[1];
      hi[i] = r[3] ?? r[1];
    }
  }
  return lo && hi ? [xs, vs, lo, hi] : [xs, vs];
}

/**
 * Holes in a series: runs of nulls between two drawn points (leading and
 * trailing nulls are not holes).
 * @param {(number | null | undefined)[]} values
 * @returns {number}
 */
export function countGaps(values) {
  let gaps = 0;
  let seen = false;
  let inGap = false;
  for (const v of values) {
    if (v === null || v === undefined) {
      if (seen) inGap = true;
      continue;
    }
    if (inGap) gaps++;
    inGap = false;
    seen = true;
  }
  return gaps;
}

/**
 * @param {(number | null)[][]} data uPlot data
 * @returns {number} non-null values of the main series
 */
export function countPoints(data) {
  let n = 0;
  for (const v of data[1] ?? []) if (v !== null && v !== undefined) n++;
  return n;
}

/**
 * The largest distance between rows that is not a gap: two reporting
 * intervals for raw data (as the hub defines gaps), two buckets otherwise.
 * @param {Series | undefined} s
 * @param {number} intervalMs the device's reporting interval
 */
export function maxDeltaFor(s, intervalMs) {
  const interval = isNum(intervalMs) && intervalMs > 0 ? intervalMs : 10_000;
  return Math.max(2.5 * interval, s && s.step > 0 ? 2.5 * s.step : 0);
}

/**
 * A fixed-size ring of recent values (sparklines).
 * @param {number} size
 */
export function createRing(size) {
  /** @type {number[]} */
  const vals = [];
  let lastTs = -Infinity;
  return {
    /** @param {number} v @param {number} [ts] readings older than the newest are ignored */
    push(v, ts) {
      if (!isNum(v)) return false;
      if (ts !== undefined) {
        if (ts <= lastTs) return false;
        lastTs = ts;
      }
      vals.push(v);
      if (vals.length > size) vals.shift();
      return true;
    },
    values: () => vals,
  };
}

/**
 * An SVG polyline "points" string for a sparkline: newest on the right,
 * y scaled to [0, 100] for percentages so rows compare at a glance.
 * @param {number[]} values
 * @param {number} w
 * @param {number} h
 * @param {number} slots how many values fill the width
 * @returns {string}
 */
export function sparkPoints(values, w, h, slots) {
  if (values.length === 0) return '';
  const step = w / Math.max(1, slots - 1);
  const x0 = w - (values.length - 1) * step;
  const pad = 1;
  return values
    .map((v, i) => {
      const y = h - pad - (Math.min(100, Math.max(0, v)) / 100) * (h - 2 * pad);
      return `${round1(x0 + i * step)},${round1(y)}`;
    })
    .join(' ');
}

/** @param {number} n */
const round1 = (n) => Math.round(n * 10) / 10;
