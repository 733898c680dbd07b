// What the device page says about a device: inventory rows and timeline
// entries from the hub's JSON. Pure, so wording is tested without a DOM.

import { duration, durationMs, relativeTime, MISSING } from './format.js';

/** @type {(v: unknown) => v is number} */
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
/** @type {(v: unknown) => v is Record<string, any>} */
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (/** @type {unknown} */ v) => (typeof v === 'string' && v !== '' ? v : undefined);

/** Metrics charted when a device page opens, if the device reports them. */
export const DEFAULT_METRICS = ['cpu.percent', 'mem.used_percent', 'temp.soc', 'load.1'];

/**
 * The inventory panel: [label, value, title?] rows, missing fields left out.
 * @param {unknown} info GET /api/v1/devices/{id}
 * @param {import('./fleet.js').Device | undefined} live the fleet's row, fresher
 * @param {number} hubNow
 * @returns {[string, string, string?][]}
 */
export function inventoryRows(info, live, hubNow) {
  const i = isObject(info) ? info : {};
  /** @type {[string, string, string?][]} */
  const rows = [];
  const add = (/** @type {string} */ label, /** @type {string | undefined} */ value, /** @type {string | undefined} */ title) => {
    if (value !== undefined && value !== MISSING) rows.push(title ? [label, value, title] : [label, value]);
  };
  const state = live?.state ?? str(i.state);
  const reason = live ? live.reason : str(i.reason);
  add('State', state && (reason ? `${state} · ${reason}` : state));
  const seen = live?.last_seen ?? (isNum(i.last_seen) ? i.last_seen : undefined);
  add('Last seen', seen ? relativeTime(seen, hubNow) : undefined, seen ? new Date(seen).toISOString() : undefined);
  add('Hostname', str(i.hostname));
  add('Model', str(i.model));
  const os = [str(i.os), str(i.platform), str(i.arch)].filter(Boolean).join(' · ');
  add('System', os || undefined);
  add('Agent', str(i.agent_version));
  add('Interval', isNum(i.interval_ms) ? durationMs(i.interval_ms) : undefined);
  add('Agent started', isNum(i.started) ? relativeTime(i.started, hubNow) : undefined, isNum(i.started) ? new Date(i.started).toISOString() : undefined);
  const uptime = live?.metrics['host.uptime_s'];
  if (isNum(uptime)) add('Uptime', duration(uptime));
  else if (isNum(i.host_boot)) add('Uptime', duration((hubNow - i.host_boot) / 1000));
  const skew = live?.clock_skew_ms;
  if (isNum(skew)) add('Clock skew', `${skew > 0 ? '+' : skew < 0 ? '−' : ''}${durationMs(Math.abs(skew))}`);
  add('Boot', str(i.boot));
  add('Sequence', isNum(i.seq) ? String(i.seq) : undefined);
  const tags = live?.tags ?? (isObject(i.tags) ? i.tags : {});
  const tagText = Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(', ');
  add('Tags', tagText || undefined);
  return rows;
}

/**
 * @typedef {{ts: number, type: string, text: string, tone: string}} TimelineEntry
 */

/**
 * @param {unknown} resp GET /api/v1/devices/{id}/events
 * @returns {TimelineEntry[]} newest first
 */
export function timeline(resp) {
  const events = isObject(resp) && Array.isArray(resp.events) ? resp.events : [];
  /** @type {TimelineEntry[]} */
  const out = [];
  for (const e of events) {
    if (!isObject(e) || !isNum(e.ts)) continue;
    out.push({ ts: e.ts, type: str(e.type) ?? 'event', ...describe(e) });
  }
  out.sort((a, b) => b.ts - a.ts);
  return out;
}

/** @param {Record<string, any>} e @returns {{text: string, tone: string}} */
function describe(e) {
  if (e.type === 'reboot') {
    return { text: isNum(e.host_boot) ? `Rebooted (host booted ${new Date(e.host_boot).toISOString().slice(0, 19).replace('T', ' ')} UTC)` : 'Rebooted', tone: 'warn' };
  }
  const state = str(e.state) ?? 'unknown';
  const to = e.reason ? `${state} (${e.reason})` : state;
  const text = str(e.from) ? `${e.from} → ${to}` : `${to[0].toUpperCase()}${to.slice(1)}`;
  const tone = state === 'online' ? 'ok' : state === 'stale' ? 'warn' : e.reason === 'shutdown' ? 'idle' : 'bad';
  return { text, tone };
}

/**
 * Metrics offered by the picker: everything numeric the device reports,
 * defaults first, then by name.
 * @param {Iterable<string>} names
 * @returns {string[]}
 */
export function pickerMetrics(names) {
  const set = new Set(names);
  const rest = [...set].filter((n) => !DEFAULT_METRICS.includes(n)).sort();
  return [...DEFAULT_METRICS.filter((n) => set.has(n)), ...rest];
}
