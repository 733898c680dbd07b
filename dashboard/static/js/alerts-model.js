// Alerts on the client: a map by id fed by the REST list and live "alert"
// messages, the lists the panel shows, and when a toast pops. Pure.

/**
 * @typedef {object} Alert
 * @property {string} id
 * @property {string} rule
 * @property {string} device
 * @property {string} metric
 * @property {'warning'|'critical'} severity
 * @property {'firing'|'resolved'} state
 * @property {number | undefined} value
 * @property {number | undefined} threshold
 * @property {string} summary
 * @property {number} started_at
 * @property {number} updated_at
 * @property {number} [resolved_at]
 * @property {number} [acked_at]
 */

/** @type {(v: unknown) => v is number} */
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
/** @type {(v: unknown) => v is Record<string, any>} */
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (/** @type {unknown} */ v) => (typeof v === 'string' ? v : '');

/** Resolved alerts kept in memory; firing ones are always kept. */
export const KEEP_RESOLVED = 200;

/**
 * @param {unknown} raw
 * @returns {Alert | null}
 */
export function normalizeAlert(raw) {
  if (!isObject(raw) || typeof raw.id !== 'string' || raw.id === '') return null;
  /** @type {Alert} */
  const a = {
    id: raw.id,
    rule: str(raw.rule),
    device: str(raw.device),
    metric: str(raw.metric),
    severity: raw.severity === 'critical' ? 'critical' : 'warning',
    state: raw.state === 'resolved' ? 'resolved' : 'firing',
    value: isNum(raw.value) ? raw.value : undefined,
    threshold: isNum(raw.threshold) ? raw.threshold : undefined,
    summary: str(raw.summary),
    started_at: isNum(raw.started_at) ? raw.started_at : 0,
    updated_at: isNum(raw.updated_at) ? raw.updated_at : isNum(raw.started_at) ? raw.started_at : 0,
  };
  if (isNum(raw.resolved_at) && raw.resolved_at > 0) a.resolved_at = raw.resolved_at;
  if (isNum(raw.acked_at) && raw.acked_at > 0) a.acked_at = raw.acked_at;
  return a;
}

/**
 * Folds alerts into the map. An update older than what is held is ignored
 * (the REST list and the live feed race), except that resolving is final.
 * @param {Map<string, Alert>} map
 * @param {Alert[]} alerts
 * @returns {Map<string, Alert>} map itself when nothing changed
 */
export function reduceAlerts(map, alerts) {
  let next = map;
  for (const a of alerts) {
    const old = next.get(a.id);
    if (old && !newer(old, a)) continue;
    if (next === map) next = new Map(map);
    // An ack arrives as its own update; a later live update may omit it.
    next.set(a.id, old?.acked_at && !a.acked_at ? { ...a, acked_at: old.acked_at } : a);
  }
  if (next !== map) trim(next);
  return next;
}

/** @param {Alert} old @param {Alert} a */
function newer(old, a) {
  if (old.state === 'resolved' && a.state === 'firing') return false;
  if (old.state === 'firing' && a.state === 'resolved') return true;
  if (a.updated_at !== old.updated_at) return a.updated_at > old.updated_at;
  return a.severity !== old.severity || a.acked_at !== old.acked_at || a.value !== old.value;
}

/** @param {Map<string, Alert>} map */
function trim(map) {
  const resolved = [...map.values()].filter((a) => a.state === 'resolved');
  if (resolved.length <= KEEP_RESOLVED) return;
  resolved.sort((a, b) => endTime(a) - endTime(b));
  for (const a of resolved.slice(0, resolved.length - KEEP_RESOLVED)) map.delete(a.id);
}

/** @param {Alert} a */
const endTime = (a) => a.resolved_at ?? a.updated_at;

/**
 * The panel's two lists: firing (critical first, newest first) and recent
 * resolved ones (newest resolution first).
 * @param {Map<string, Alert>} map
 * @param {{device?: string, recent?: number}} [opts]
 * @returns {{firing: Alert[], recent: Alert[]}}
 */
export function alertLists(map, { device, recent = 50 } = {}) {
  const firing = [];
  const done = [];
  for (const a of map.values()) {
    if (device !== undefined && a.device !== device) continue;
    (a.state === 'firing' ? firing : done).push(a);
  }
  firing.sort((a, b) => sevRank(b) - sevRank(a) || b.started_at - a.started_at || cmp(a.id, b.id));
  done.sort((a, b) => endTime(b) - endTime(a) || cmp(a.id, b.id));
  return { firing, recent: done.slice(0, recent) };
}

/** @param {Alert} a */
const sevRank = (a) => (a.severity === 'critical' ? 1 : 0);
/** @param {string} a @param {string} b */
const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * @param {Map<string, Alert>} map
 * @returns {{firing: number, critical: number}}
 */
export function firingCounts(map) {
  let firing = 0;
  let critical = 0;
  for (const a of map.values()) {
    if (a.state !== 'firing') continue;
    firing++;
    if (a.severity === 'critical') critical++;
  }
  return { firing, critical };
}

/**
 * @typedef {object} Toast
 * @property {string} id the alert's id: one toast per alert
 * @property {'firing'|'resolved'} state
 * @property {'warning'|'critical'} severity
 * @property {string} title
 * @property {string} text
 * @property {number} until Unix ms it hides at; Infinity stays until dismissed
 */

/** How long toasts stay (ms). */
export const TOAST_MS = { resolved: 8_000, warning: 15_000 };
export const MAX_TOASTS = 5;

/**
 * Whether a live alert update deserves a toast: a new firing alert, one
 * that escalated, or one that resolved. Value updates of an alert already
 * shown stay quiet. Critical firing toasts stay until dismissed.
 * @param {Alert | undefined} prev what was known before
 * @param {Alert} next
 * @param {number} now
 * @returns {Toast | null}
 */
export function toastFor(prev, next, now) {
  const title = `${next.device || 'fleet'} · ${next.rule}`;
  if (next.state === 'firing') {
    const fresh = !prev || prev.state !== 'firing' || (prev.severity === 'warning' && next.severity === 'critical');
    if (!fresh) return null;
    return {
      id: next.id,
      state: 'firing',
      severity: next.severity,
      title,
      text: next.summary || `${next.metric} ${next.severity}`,
      until: next.severity === 'critical' ? Infinity : now + TOAST_MS.warning,
    };
  }
  if (prev && prev.state === 'resolved') return null;
  return {
    id: next.id,
    state: 'resolved',
    severity: next.severity,
    title,
    text: next.summary || 'Back to normal',
    until: now + TOAST_MS.resolved,
  };
}

/**
 * Adds a toast (replacing the same alert's) and drops expired ones; past
 * MAX_TOASTS the oldest non-sticky ones go first.
 * @param {Toast[]} toasts newest last
 * @param {Toast | null} toast
 * @param {number} now
 * @returns {Toast[]}
 */
export function updateToasts(toasts, toast, now) {
  let out = toasts.filter((t) => t.until > now && (!toast || t.id !== toast.id));
  if (toast) out.push(toast);
  while (out.length > MAX_TOASTS) {
    const i = out.findIndex((t) => t.until !== Infinity);
    out.splice(i < 0 ? 0 : i, 1);
  }
  return out.length === toasts.length && out.every((t, i) => t === toasts[i]) ? toasts : out;
}
