// The fleet model: validating what the hub sends and deriving what the table
// shows. Pure functions (no DOM, no clock) so the rules are unit-testable.
// Inputs come from the network, so nothing here trusts their shape.

/**
 * @typedef {'online'|'stale'|'offline'} DeviceState
 * @typedef {object} Device
 * @property {string} id
 * @property {DeviceState} state
 * @property {string} [reason] lost | shutdown | timeout, only when offline
 * @property {number} [last_seen] Unix milliseconds
 * @property {Record<string, number>} metrics latest value per metric name
 * @property {Record<string, string>} tags
 * @property {number} [rebooted_at] Unix ms of the last reboot the hub saw
 * @property {number} [clock_skew_ms] device clock minus hub clock
 * @typedef {object} Summary
 * @property {number} total
 * @property {number} online
 * @property {number} stale
 * @property {number} offline
 * @typedef {object} Fleet
 * @property {number} version
 * @property {number} ts hub clock, Unix milliseconds
 * @property {Device[]} devices sorted by id
 */

const STATES = new Set(['online', 'stale', 'offline']);

/** @type {(v: unknown) => v is Record<string, any>} */
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
/** @type {(v: unknown) => v is number} */
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

// Natural order, so pi-2 sorts before pi-10; a stable order keeps rows from
// jumping around while an operator is reading them.
const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/**
 * Checks and cleans one device from the hub; null if it has no usable id.
 * Unknown states become "offline" rather than being shown as healthy.
 * @param {unknown} raw
 * @returns {Device | null}
 */
export function normalizeDevice(raw) {
  if (!isObject(raw) || typeof raw.id !== 'string' || raw.id === '') return null;
  /** @type {Record<string, number>} */
  const metrics = {};
  if (isObject(raw.metrics)) {
    for (const [k, v] of Object.entries(raw.metrics)) if (isNum(v)) metrics[k] = v;
  }
  /** @type {Record<string, string>} */
  const tags = {};
  if (isObject(raw.tags)) {
    for (const [k, v] of Object.entries(raw.tags)) if (typeof v === 'string') tags[k] = v;
  }
  const state = STATES.has(raw.state) ? raw.state : 'offline';
  /** @type {Device} */
  const d = { id: raw.id, state, metrics, tags };
  if (state === 'offline' && typeof raw.reason === 'string' && raw.reason) d.reason = raw.reason;
  if (isNum(raw.last_seen)) d.last_seen = raw.last_seen;
  if (isNum(raw.rebooted_at) && raw.rebooted_at > 0) d.rebooted_at = raw.rebooted_at;
  if (isNum(raw.clock_skew_ms)) d.clock_skew_ms = raw.clock_skew_ms;
  return d;
}

/**
 * Checks and cleans a fleet snapshot (GET /api/v1/fleet or a "fleet"
 * message); null if it is not one.
 * @param {unknown} raw
 * @returns {Fleet | null}
 */
export function normalizeFleet(raw) {
  if (!isObject(raw) || !Array.isArray(raw.devices)) return null;
  const byId = new Map();
  for (const item of raw.devices) {
    const d = normalizeDevice(item);
    if (d) byId.set(d.id, d);
  }
  return {
    version: isNum(raw.version) ? raw.version : 0,
    ts: isNum(raw.ts) ? raw.ts : 0,
    devices: sortDevices([...byId.values()]),
  };
}

/**
 * Merges a broadcast delta ("full": false: the devices whose state, reason
 * or tags changed) into the fleet. Readings keep the rows' metrics fresh.
 * @param {Fleet} fleet
 * @param {unknown} raw
 * @returns {Fleet} fleet itself if nothing changed, else a new Fleet
 */
export function applyFleetDelta(fleet, raw) {
  if (!isObject(raw) || !Array.isArray(raw.devices) || raw.devices.length === 0) return fleet;
  const byId = new Map(fleet.devices.map((d) => [d.id, d]));
  for (const item of raw.devices) {
    const d = normalizeDevice(item);
    if (!d) continue;
    const old = byId.get(d.id);
    // A delta's metrics may be older than readings already applied.
    byId.set(d.id, old && (old.last_seen ?? 0) > (d.last_seen ?? 0) ? { ...d, metrics: old.metrics, last_seen: old.last_seen } : d);
  }
  return {
    version: isNum(raw.version) ? raw.version : fleet.version,
    ts: isNum(raw.ts) ? raw.ts : fleet.ts,
    devices: sortDevices([...byId.values()]),
  };
}

/**
 * @param {Device[]} devices
 * @returns {Device[]} a new array sorted by id
 */
export function sortDevices(devices) {
  return [...devices].sort((a, b) => collator.compare(a.id, b.id) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Counts devices by state. Computed from the devices shown, so the summary
 * line always agrees with the table even after a status message.
 * @param {Device[]} devices
 * @returns {Summary}
 */
export function summarize(devices) {
  const s = { total: devices.length, online: 0, stale: 0, offline: 0 };
  for (const d of devices) s[d.state]++;
  return s;
}

/**
 * The device's temperature: temp.soc, else the first temp.* by name.
 * @param {Record<string, number>} metrics
 * @returns {number | undefined}
 */
export function temperature(metrics) {
  if (isNum(metrics['temp.soc'])) return metrics['temp.soc'];
  const names = Object.keys(metrics).filter((k) => k.startsWith('temp.') && isNum(metrics[k]));
  names.sort();
  return names.length ? metrics[names[0]] : undefined;
}

/**
 * The values the table shows for a device; undefined where not reported.
 * @param {Device} device
 * @returns {{cpu?: number, mem?: number, memTotal?: number, load1?: number, temp?: number, uptime?: number, count: number}}
 */
export function keyMetrics(device) {
  const m = device.metrics;
  return {
    cpu: m['cpu.percent'],
    mem: m['mem.used_percent'],
    memTotal: m['mem.total_bytes'],
    load1: m['load.1'],
    temp: temperature(m),
    uptime: m['host.uptime_s'],
    count: Object.keys(m).length,
  };
}

/**
 * Applies a "status" message to the fleet. Unknown devices are left for the
 * next fleet snapshot, which carries their full row.
 * @param {Fleet} fleet
 * @param {unknown} data {device, state, reason?, last_seen? | ts?}
 * @returns {Fleet} fleet itself if nothing changed, else a new Fleet
 */
export function applyStatus(fleet, data) {
  if (!isObject(data) || typeof data.device !== 'string') return fleet;
  return updateDevice(fleet, data.device, (d) => {
    const next = { ...d };
    if (STATES.has(data.state)) next.state = data.state;
    delete next.reason;
    if (next.state === 'offline' && typeof data.reason === 'string' && data.reason) next.reason = data.reason;
    const seen = isNum(data.last_seen) ? data.last_seen : isNum(data.ts) ? data.ts : undefined;
    if (seen !== undefined && (next.last_seen === undefined || seen > next.last_seen)) next.last_seen = seen;
    return next;
  });
}

/**
 * Merges a "reading" message (device:<id> channels) into the fleet.
 * @param {Fleet} fleet
 * @param {unknown} data {device, seq, ts, metrics}
 * @returns {Fleet}
 */
export function applyReading(fleet, data) {
  if (!isObject(data) || typeof data.device !== 'string' || !isObject(data.metrics)) return fleet;
  return updateDevice(fleet, data.device, (d) => {
    // Readings can arrive out of order after an agent reconnects; an older
    // one must not overwrite newer values.
    if (isNum(data.ts) && isNum(d.last_seen) && data.ts < d.last_seen) return d;
    const metrics = { ...d.metrics };
    for (const [k, v] of Object.entries(data.metrics)) if (isNum(v)) metrics[k] = v;
    return { ...d, metrics, last_seen: isNum(data.ts) ? data.ts : d.last_seen };
  });
}

/**
 * @param {Fleet} fleet
 * @param {string} id
 * @param {(d: Device) => Device} fn returns d itself for "no change"
 * @returns {Fleet}
 */
function updateDevice(fleet, id, fn) {
  const i = fleet.devices.findIndex((d) => d.id === id);
  if (i < 0) return fleet;
  const next = fn(fleet.devices[i]);
  if (next === fleet.devices[i]) return fleet;
  const devices = fleet.devices.slice();
  devices[i] = next;
  return { ...fleet, devices };
}
