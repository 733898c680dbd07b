// Entry point: loads the fleet and alerts over HTTP for the first paint, then
// follows them live (WebSocket, or whatever transport gets through).
// Messages only update the model; the DOM is updated at most once per
// animation frame, however many messages arrive.

import { createLive } from './live.js';
import { applyFleetDelta, applyReading, applyStatus, normalizeFleet } from './fleet.js';
import { parseSummaryMetrics } from './cards.js';
import { firingCounts, normalizeAlert, reduceAlerts, toastFor, updateToasts } from './alerts-model.js';
import { getJSON, errorText, HTTPError } from './api.js';
import { parseRoute } from './router.js';
import { createShell } from './view.js';
import { createOverview } from './overview.js';
import { createDevicePage } from './device.js';
import { createAlertsView } from './alerts-view.js';
import { createSparkStore } from './store.js';

const FLEET_URL = '/api/v1/fleet';
const HUB_ERROR_SHOWN_MS = 15_000;
const ACK_NOTICE_MS = 6_000;

const model = {
  /** @type {import('./live.js').ConnState} */
  conn: 'connecting',
  /** @type {import('./fleet.js').Fleet | null} */
  fleet: null,
  /** @type {number | null} local clock when the fleet last changed */
  receivedAt: null,
  /** hub clock minus local clock, from the last fleet message */
  hubOffset: 0,
  /** @type {Record<string, import('./cards.js').Agg> | null} */
  hubMetrics: null,
  /** @type {string | null} */
  loadError: null,
  /** @type {{text: string, until: number} | null} */
  notice: null,
  /** @type {Map<string, import('./alerts-model.js').Alert>} */
  alerts: new Map(),
  alertsStatus: { loaded: false, error: /** @type {string | null} */ (null) },
  /** @type {import('./alerts-model.js').Toast[]} */
  toasts: [],
  /** @type {Set<string>} */
  pendingAcks: new Set(),
  route: parseRoute(location.hash),
};

const sparks = createSparkStore();
const shell = createShell(document);
const overview = createOverview(document, sparks, scheduleRender);
const device = createDevicePage(document, { invalidate: scheduleRender, onAlerts: mergeAlertList });
const alertsView = createAlertsView(document, ack);
alertsView.onDismiss((id) => {
  model.toasts = model.toasts.filter((t) => t.id !== id);
  scheduleRender();
});

let frame = 0;
function scheduleRender() {
  if (frame) return;
  frame = requestAnimationFrame(render);
}

// Readings re-render at most this often. Each device reports about once a
// second, so 4 renders a second keep every value current; rendering on
// every frame of a 500-device fleet only burns the main thread.
const READING_RENDER_MS = 250;
let lastRender = 0;
let readingTimer = 0;

function scheduleReadingRender() {
  if (frame || readingTimer) return;
  const wait = lastRender + READING_RENDER_MS - performance.now();
  if (wait <= 0) {
    scheduleRender();
    return;
  }
  readingTimer = /** @type {any} */ (setTimeout(() => {
    readingTimer = 0;
    scheduleRender();
  }, wait));
}

function render() {
  frame = 0;
  lastRender = performance.now();
  const now = Date.now();
  const hubNow = now + model.hubOffset;
  model.toasts = updateToasts(model.toasts, null, now);
  shell.render(
    {
      conn: model.conn,
      receivedAt: model.receivedAt,
      hasFleet: model.fleet !== null,
      loadError: model.loadError,
      notice: model.notice,
      route: model.route.name,
    },
    now,
  );
  const counts = firingCounts(model.alerts);
  alertsView.renderCount(counts);
  alertsView.renderToasts(model.toasts);
  if (model.route.name === 'overview' && model.fleet) {
    overview.render({ fleet: model.fleet, hubMetrics: model.hubMetrics, alertCounts: counts, alertsKnown: model.alertsStatus.loaded, hubNow, now });
    firstFleetMark();
  } else if (model.route.name === 'alerts') {
    alertsView.render(model.alerts, model.alertsStatus, now, model.pendingAcks);
  } else if (model.route.name === 'device') {
    device.render({ fleet: model.fleet, alerts: model.alerts, hubNow, now });
  }
}

let marked = false;
/**
 * User Timing marks, so "paints first within a second" can be measured:
 * the first fleet rendered into the DOM, and the frame after it, by when
 * the browser has painted it.
 */
function firstFleetMark() {
  if (marked) return;
  marked = true;
  performance.mark('fleetwatch:first-fleet-render');
  requestAnimationFrame(() => performance.mark('fleetwatch:first-fleet-paint'));
}

/** @param {import('./fleet.js').Fleet} fleet */
function setFleet(fleet) {
  model.fleet = fleet;
  model.receivedAt = Date.now();
  model.loadError = null;
  scheduleRender();
}

/** A full snapshot or a delta's envelope: the hub clock and aggregates. @param {any} data */
function noteFleetMessage(data) {
  if (typeof data?.ts === 'number' && data.ts > 0) model.hubOffset = data.ts - Date.now();
  const m = parseSummaryMetrics(data?.summary);
  if (m) model.hubMetrics = m;
}

/** @param {string} text @param {number} [ms] how long to show it */
function showNotice(text, ms = Infinity) {
  model.notice = { text, until: Date.now() + ms };
  scheduleRender();
}

async function loadFleet() {
  try {
    const raw = await getJSON(FLEET_URL, { timeout: 5_000 });
    const fleet = normalizeFleet(raw);
    if (!fleet) throw new Error('unexpected response');
    noteFleetMessage(raw);
    seedSparks(fleet);
    setFleet(fleet);
  } catch (err) {
    // Not fatal: subscribing sends a full snapshot as soon as a connection is up.
    if (!model.fleet) model.loadError = `${errorText(err)}. Waiting for live updates…`;
    scheduleRender();
  }
}

/** The first sparkline point is the snapshot's value. @param {import('./fleet.js').Fleet} fleet */
function seedSparks(fleet) {
  for (const d of fleet.devices) sparks.push(d.id, d.metrics['cpu.percent'], d.last_seen);
}

/** @param {unknown} raw {"alerts": [...]} */
function mergeAlertList(raw) {
  const list = raw && typeof raw === 'object' && Array.isArray(/** @type {any} */ (raw).alerts) ? /** @type {any} */ (raw).alerts : [];
  const next = reduceAlerts(model.alerts, list.map(normalizeAlert).filter(Boolean));
  if (next !== model.alerts) {
    model.alerts = next;
    scheduleRender();
  }
}

async function loadAlerts() {
  try {
    const [firing, all] = await Promise.all([getJSON('/api/v1/alerts?state=firing&limit=500'), getJSON('/api/v1/alerts?state=all&limit=50')]);
    mergeAlertList(firing);
    mergeAlertList(all);
    model.alertsStatus = { loaded: true, error: null };
  } catch (err) {
    model.alertsStatus = { loaded: model.alertsStatus.loaded, error: errorText(err) };
  }
  scheduleRender();
}

/** @param {string} id */
async function ack(id) {
  if (model.pendingAcks.has(id)) return;
  model.pendingAcks.add(id);
  scheduleRender();
  try {
    const res = await getJSON(`/api/v1/alerts/${encodeURIComponent(id)}/ack`, { method: 'POST' });
    mergeAlertList({ alerts: [res] });
  } catch (err) {
    if (err instanceof HTTPError && err.status === 409) showNotice('That alert has already resolved.', ACK_NOTICE_MS);
    else if (err instanceof HTTPError && err.status === 404) showNotice('That alert no longer exists.', ACK_NOTICE_MS);
    else showNotice(`Could not acknowledge: ${errorText(err)}.`, ACK_NOTICE_MS);
    loadAlerts();
  } finally {
    model.pendingAcks.delete(id);
    scheduleRender();
  }
}

/** @param {import('./live.js').LiveEvent} msg an event or hub message */
function onEvent(msg) {
  switch (msg.type) {
    case 'fleet': {
      // Broadcasts are deltas (the devices whose state changed); a full
      // snapshot comes on connect and after a reset.
      const delta = isDelta(msg.data);
      const fleet = delta ? (model.fleet ? applyFleetDelta(model.fleet, msg.data) : null) : normalizeFleet(msg.data);
      if (!fleet) return;
      noteFleetMessage(msg.data);
      if (model.notice?.until === Infinity) model.notice = null; // the load error is moot now
      if (!delta) seedSparks(fleet);
      follow(fleet);
      if (fleet !== model.fleet || !delta) setFleet(fleet);
      else scheduleRender(); // aggregates may have moved
      return;
    }
    case 'status':
    case 'reading': {
      const data = /** @type {any} */ (msg.data);
      if (msg.type === 'reading') {
        sparks.push(data?.device, data?.metrics?.['cpu.percent'], data?.ts);
        device.onReading(data);
      } else {
        device.onStatus(data);
      }
      if (!model.fleet) return;
      if (msg.type === 'status') {
        const next = applyStatus(model.fleet, data);
        if (next !== model.fleet) setFleet(next);
        return;
      }
      const next = applyReading(model.fleet, data);
      if (next !== model.fleet) {
        model.fleet = next;
        model.receivedAt = Date.now();
        model.loadError = null;
      }
      scheduleReadingRender();
      return;
    }
    case 'alert': {
      const a = normalizeAlert(msg.data);
      if (!a) return;
      const prev = model.alerts.get(a.id);
      const next = reduceAlerts(model.alerts, [a]);
      if (next === model.alerts) return;
      model.alerts = next;
      model.toasts = updateToasts(model.toasts, toastFor(prev, a, Date.now()), Date.now());
      scheduleRender();
      return;
    }
    case 'error':
      showNotice(`Hub: ${String(msg.error ?? 'unknown error')}`, HUB_ERROR_SHOWN_MS);
      return;
    default:
      // Polled "device" snapshots and types added by later hubs need nothing here.
      return;
  }
}

/** @param {unknown} data */
const isDelta = (data) => typeof data === 'object' && data !== null && /** @type {any} */ (data).full === false;

/** The device channels subscribed: each row's readings keep it fresh. */
const following = new Set();
/** @type {import('./live.js').LiveClient | null} */
let live = null;

/** @param {import('./fleet.js').Fleet} fleet */
function follow(fleet) {
  if (!live) return;
  for (const d of fleet.devices) {
    if (following.has(d.id)) continue;
    following.add(d.id);
    live.subscribe(`device:${d.id}`);
  }
}

function onRoute() {
  const prev = model.route;
  model.route = parseRoute(location.hash);
  if (model.route.name === 'device') device.enter(model.route.id);
  else {
    device.leave();
    document.title = model.route.name === 'alerts' ? 'Alerts · Fleetwatch' : 'Fleetwatch';
  }
  if (prev.name !== model.route.name || (prev.name === 'device' && model.route.name === 'device' && prev.id !== model.route.id)) {
    window.scrollTo(0, 0);
    // Moves screen readers and keyboard users to the new view.
    document.getElementById('main')?.focus({ preventScroll: true });
  }
  scheduleRender();
}

async function main() {
  window.addEventListener('hashchange', onRoute);
  document.getElementById('retry')?.addEventListener('click', () => {
    model.loadError = null;
    scheduleRender();
    loadFleet();
  });
  if (model.route.name === 'device') device.enter(model.route.id);
  scheduleRender();
  loadAlerts();
  await loadFleet();
  let wasLive = false;
  let dropped = false;
  live = createLive({
    transport: 'auto',
    channels: ['fleet', 'alerts'],
    onEvent,
    // A reset of `fleet` is followed by a fresh snapshot through onEvent;
    // a reset of `alerts` means missed alerts: reload the list.
    onReset(channel) {
      if (channel === 'alerts') loadAlerts();
    },
    onState(state, detail) {
      model.conn = state;
      if (state === 'error') showNotice(`Live updates stopped: ${detail.reason ?? 'the hub refused'}.`);
      if (state === 'live') {
        // After a drop the charts refetch their range so no hole remains.
        if (wasLive && dropped) {
          device.onReconnect();
          loadAlerts();
        }
        wasLive = true;
        dropped = false;
      } else if (wasLive) {
        dropped = true;
      }
      scheduleRender();
    },
  });
  if (model.fleet) follow(model.fleet);
  // Relative times ("3s ago") age and toasts expire without any message.
  setInterval(scheduleRender, 1000);
}

main();
