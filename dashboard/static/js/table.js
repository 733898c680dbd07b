// What the device table shows and in which order: sorting, filtering,
// searching and the state badge. Pure: the overview view only applies it.

/** @typedef {import('./fleet.js').Device} Device */

/** Reboots this recent are flagged in the table. */
export const REBOOT_FLAG_MS = 10 * 60_000;

/**
 * Sortable columns: key → how to read the value. Metric keys are the metric
 * names so the chromedp test and links can name them plainly.
 * @type {Record<string, (d: Device) => string | number | undefined>}
 */
const SORT_VALUE = {
  id: (d) => d.id,
  state: (d) => STATE_RANK[d.state] ?? 9,
  last_seen: (d) => d.last_seen,
  'cpu.percent': (d) => d.metrics['cpu.percent'],
  'mem.used_percent': (d) => d.metrics['mem.used_percent'],
  'load.1': (d) => d.metrics['load.1'],
  'temp.soc': (d) => d.metrics['temp.soc'],
  'host.uptime_s': (d) => d.metrics['host.uptime_s'],
};
export const SORT_KEYS = Object.freeze(Object.keys(SORT_VALUE));

// Worst first when sorting by state ascending is less useful than healthy
// first matching the badge order an operator reads left to right.
const STATE_RANK = { online: 0, stale: 1, offline: 2 };

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/**
 * @typedef {{key: string, dir: 'asc'|'desc'}} Sort
 */

/**
 * The sort after a click on `key`: the same column flips direction; a new
 * metric column starts highest first (what an operator looks for).
 * @param {Sort} cur
 * @param {string} key
 * @returns {Sort}
 */
export function nextSort(cur, key) {
  if (cur.key === key) return { key, dir: cur.dir === 'asc' ? 'desc' : 'asc' };
  const textual = key === 'id' || key === 'state';
  return { key, dir: textual ? 'asc' : 'desc' };
}

/**
 * Orders devices; missing values always sort last, ties by id.
 * @param {Device[]} devices
 * @param {Sort} sort
 * @returns {Device[]} a new array
 */
export function sortBy(devices, sort) {
  const get = SORT_VALUE[sort.key] ?? SORT_VALUE.id;
  const sign = sort.dir === 'desc' ? -1 : 1;
  const keyed = devices.map((d) => ({ d, v: get(d) }));
  keyed.sort((a, b) => {
    const am = a.v === undefined;
    const bm = b.v === undefined;
    if (am !== bm) return am ? 1 : -1;
    let c = 0;
    if (!am) c = typeof a.v === 'string' ? collator.compare(a.v, /** @type {string} */ (b.v)) : /** @type {number} */ (a.v) - /** @type {number} */ (b.v);
    if (c === 0) return collator.compare(a.d.id, b.d.id);
    return c * sign;
  });
  return keyed.map((k) => k.d);
}

/**
 * @typedef {{state?: string, tag?: string, query?: string}} Filter
 * tag is "key=value"; query matches the id and tag values, case-insensitively.
 */

/**
 * @param {Device[]} devices
 * @param {Filter} f
 * @returns {Device[]}
 */
export function filterDevices(devices, f) {
  const q = (f.query ?? '').trim().toLowerCase();
  const [tk, tv] = f.tag ? splitTag(f.tag) : [null, null];
  if (!f.state && !tk && !q) return devices;
  return devices.filter((d) => {
    if (f.state && d.state !== f.state) return false;
    if (tk !== null && d.tags[tk] !== tv) return false;
    if (q && !searchText(d).includes(q)) return false;
    return true;
  });
}

/** @param {string} tag @returns {[string, string]} */
function splitTag(tag) {
  const i = tag.indexOf('=');
  return i < 0 ? [tag, ''] : [tag.slice(0, i), tag.slice(i + 1)];
}

/** @param {Device} d */
function searchText(d) {
  const tags = Object.entries(d.tags).map(([k, v]) => `${k}=${v}`);
  return [d.id, d.state, d.reason ?? '', ...tags].join(' ').toLowerCase();
}

/**
 * Every distinct tag in the fleet as "key=value", sorted, for the filter.
 * @param {Device[]} devices
 * @returns {string[]}
 */
export function tagOptions(devices) {
  const set = new Set();
  for (const d of devices) for (const [k, v] of Object.entries(d.tags)) set.add(`${k}=${v}`);
  return [...set].sort(collator.compare);
}

/**
 * The state badge: text, colour key and the reboot flag.
 * @param {Device} d
 * @param {number} hubNow hub clock, Unix ms
 * @returns {{state: string, reason: string | null, text: string, rebooted: boolean}}
 */
export function badgeFor(d, hubNow) {
  const rebooted = d.rebooted_at !== undefined && hubNow - d.rebooted_at < REBOOT_FLAG_MS && hubNow >= d.rebooted_at - 60_000;
  return {
    state: d.state,
    reason: d.reason ?? null,
    text: d.reason ? `${d.state} · ${d.reason}` : d.state,
    rebooted,
  };
}
