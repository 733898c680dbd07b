// The overview's headline cards and their trends. Pure: the hub's summary
// (or, from an older hub, the devices themselves) in, display values out.

import { celsius, percent, number, metricLabel, formatMetric } from './format.js';

/** @typedef {import('./fleet.js').Device} Device */
/**
 * @typedef {object} Agg one metric across the fleet
 * @property {number} count
 * @property {number} [avg]
 * @property {number} [max]
 * @property {string} [max_device]
 * @typedef {object} FleetSummary
 * @property {number} total
 * @property {number} online
 * @property {number} stale
 * @property {number} offline
 * @property {number} lost offline other than by a clean shutdown
 * @property {Record<string, Agg>} metrics
 */

/** @type {(v: unknown) => v is number} */
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
/** @type {(v: unknown) => v is Record<string, any>} */
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Metrics the cards read. */
export const CARD_METRICS = ['cpu.percent', 'mem.used_percent', 'temp.soc'];

/**
 * Aggregates computed here, for a hub that sends no summary and to keep the
 * counts in step with status messages applied between broadcasts.
 * @param {Device[]} devices
 * @returns {FleetSummary}
 */
export function aggregate(devices) {
  const s = { total: devices.length, online: 0, stale: 0, offline: 0, lost: 0, metrics: /** @type {Record<string, Agg>} */ ({}) };
  for (const d of devices) {
    s[d.state]++;
    // A clean shutdown is not a problem; a device that vanished is.
    if (d.state === 'offline' && d.reason !== 'shutdown') s.lost++;
  }
  for (const name of CARD_METRICS) {
    let count = 0;
    let sum = 0;
    let max = -Infinity;
    let maxDevice = '';
    for (const d of devices) {
      // Offline devices' last values are history, not the fleet's state now.
      if (d.state === 'offline') continue;
      const v = d.metrics[name];
      if (!isNum(v)) continue;
      count++;
      sum += v;
      if (v > max) {
        max = v;
        maxDevice = d.id;
      }
    }
    s.metrics[name] = count ? { count, avg: sum / count, max, max_device: maxDevice } : { count: 0 };
  }
  return s;
}

/**
 * The hub's metric aggregates from a fleet message, or null.
 * @param {unknown} raw the message's "summary"
 * @returns {Record<string, Agg> | null}
 */
export function parseSummaryMetrics(raw) {
  if (!isObject(raw) || !isObject(raw.metrics)) return null;
  /** @type {Record<string, Agg>} */
  const out = {};
  for (const [name, a] of Object.entries(raw.metrics)) {
    if (!isObject(a)) continue;
    /** @type {Agg} */
    const agg = { count: isNum(a.count) ? a.count : 0 };
    if (isNum(a.avg)) agg.avg = a.avg;
    if (isNum(a.max)) agg.max = a.max;
    if (typeof a.max_device === 'string') agg.max_device = a.max_device;
    out[name] = agg;
  }
  return out;
}

/**
 * @typedef {object} Card
 * @property {number | undefined} num the value trends are computed on
 * @property {string} text
 * @property {string} sub a second line
 * @property {string} [tone] ok | warn | bad, for colour
 * @property {string} [device] the device the card points at
 */

/**
 * @param {FleetSummary} s counts from the devices shown
 * @param {Record<string, Agg> | null} hubMetrics the hub's aggregates, preferred
 * @param {{firing: number, critical: number}} alerts
 * @returns {Record<'online'|'cpu'|'memory'|'hottest'|'alerts', Card>}
 */
export function cardsFor(s, hubMetrics, alerts) {
  const m = (/** @type {string} */ name) => hubMetrics?.[name] ?? s.metrics[name] ?? { count: 0 };
  const cpu = m('cpu.percent');
  const mem = m('mem.used_percent');
  const temp = m('temp.soc');
  const hot = isNum(temp.max) ? { a: temp, name: 'temp.soc' } : { a: cpu, name: 'cpu.percent' };
  const down = s.offline + s.stale;
  return {
    online: {
      num: s.online,
      text: `${s.online} / ${s.total}`,
      sub: down ? `${s.stale} stale · ${s.offline} offline` : 'all reporting',
      tone: s.total === 0 ? undefined : s.lost > 0 ? 'bad' : s.stale > 0 ? 'warn' : 'ok',
    },
    cpu: { num: cpu.avg, text: percent(cpu.avg), sub: cpu.count ? `average of ${cpu.count}` : 'no data' },
    memory: { num: mem.avg, text: percent(mem.avg), sub: mem.count ? `average of ${mem.count}` : 'no data' },
    hottest: {
      num: hot.a.max,
      text: hot.name === 'temp.soc' ? celsius(hot.a.max) : formatMetric(hot.name, hot.a.max),
      sub: hot.a.max_device ? `${hot.a.max_device} · ${metricLabel(hot.name)}` : 'no data',
      device: hot.a.max_device,
      tone: hot.name === 'temp.soc' && isNum(hot.a.max) ? (hot.a.max >= 80 ? 'bad' : hot.a.max >= 70 ? 'warn' : undefined) : undefined,
    },
    alerts: {
      num: alerts.firing,
      text: String(alerts.firing),
      sub: alerts.firing ? `${alerts.critical} critical` : 'none firing',
      tone: alerts.critical ? 'bad' : alerts.firing ? 'warn' : 'ok',
    },
  };
}

/**
 * A small history of card values for "vs 1 min ago", kept client-side.
 * Samples are taken at most every `every` ms so it stays tiny.
 * @param {{windowMs?: number, every?: number}} [opts]
 */
export function createTrend({ windowMs = 60_000, every = 5_000 } = {}) {
  /** @type {{t: number, v: Record<string, number | undefined>}[]} */
  const samples = [];
  return {
    /** @param {number} now @param {Record<string, number | undefined>} values */
    push(now, values) {
      const last = samples[samples.length - 1];
      if (last && now - last.t < every) return;
      samples.push({ t: now, v: { ...values } });
      // Keep a little more than one window so "1 min ago" always exists.
      while (samples.length > 2 && now - samples[1].t > windowMs * 1.5) samples.shift();
    },
    /**
     * current minus the value about one window ago; undefined until a
     * sample at least half a window old exists.
     * @param {number} now @param {string} key @param {number | undefined} current
     */
    delta(now, key, current) {
      if (!isNum(current)) return undefined;
      let best;
      for (const s of samples) {
        if (now - s.t < windowMs / 2) break;
        if (!best || Math.abs(now - s.t - windowMs) < Math.abs(now - best.t - windowMs)) best = s;
      }
      const old = best?.v[key];
      return isNum(old) ? current - old : undefined;
    },
  };
}

/**
 * @param {number | undefined} delta
 * @param {'percent'|'celsius'|'count'} kind
 * @returns {{dir: 'up'|'down'|'flat'|'none', text: string}}
 */
export function trendText(delta, kind) {
  if (!isNum(delta)) return { dir: 'none', text: '' };
  const eps = kind === 'count' ? 0.5 : 0.05;
  if (Math.abs(delta) < eps) return { dir: 'flat', text: '→ steady vs 1 min ago' };
  const arrow = delta > 0 ? '▲' : '▼';
  const sign = delta > 0 ? '+' : '−';
  const abs = Math.abs(delta);
  const amount = kind === 'percent' ? `${abs.toFixed(1)} pt` : kind === 'celsius' ? `${abs.toFixed(1)} °C` : number(abs, 0);
  return { dir: delta > 0 ? 'up' : 'down', text: `${arrow} ${sign}${amount} vs 1 min ago` };
}
