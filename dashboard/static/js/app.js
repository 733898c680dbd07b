// Entry point: loads the fleet once over HTTP for the first paint, then
// follows it live (WebSocket, or whatever transport gets through). Messages
// only update the model; the DOM is updated at most once per animation frame,
// however many messages arrive.

import { createLive } from './live.js';
import { applyFleetDelta, applyReading, applyStatus, normalizeFleet } from './fleet.js';
import { createView } from './view.js';

const FLEET_URL = '/api/v1/fleet';
const FETCH_TIMEOUT_MS = 5_000;
const HUB_ERROR_SHOWN_MS = 15_000;

/** @type {import('./view.js').Model} */
const model = {
  conn: 'connecting',
  fleet: null,
  receivedAt: null,
  notice: null,
};

const view = createView(document);
let frame = 0;

function scheduleRender() {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    view.render(model, Date.now());
  });
}

/** @param {import('./fleet.js').Fleet} fleet */
function setFleet(fleet) {
  model.fleet = fleet;
  model.receivedAt = Date.now();
  scheduleRender();
}

/** @param {string} text @param {number} [ms] how long to show it */
function showNotice(text, ms = Infinity) {
  model.notice = { text, until: Date.now() + ms };
  scheduleRender();
}

async function loadFleet() {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await fetch(FLEET_URL, { headers: { Accept: 'application/json' }, signal: ctrl.signal });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const fleet = normalizeFleet(await res.json());
    if (!fleet) throw new Error('unexpected response');
    setFleet(fleet);
  } catch (err) {
    // Not fatal: subscribing sends a full snapshot as soon as a connection is up.
    const why = err instanceof Error && err.name === 'AbortError' ? 'timed out' : String(err instanceof Error ? err.message : err);
    showNotice(`Could not load the fleet (${why}); waiting for live updates.`);
  } finally {
    clearTimeout(timer);
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
      if (model.notice?.until === Infinity) model.notice = null; // the load error is moot now
      follow(fleet);
      if (fleet !== model.fleet || !delta) setFleet(fleet);
      return;
    }
    case 'status':
    case 'reading': {
      if (!model.fleet) return;
      const next = msg.type === 'status' ? applyStatus(model.fleet, msg.data) : applyReading(model.fleet, msg.data);
      if (next !== model.fleet) setFleet(next);
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

async function main() {
  scheduleRender();
  await loadFleet();
  live = createLive({
    transport: 'auto',
    channels: ['fleet'],
    onEvent,
    // A reset of `fleet` is followed by a fresh snapshot through onEvent;
    // nothing else here derives from a channel's history.
    onReset() {},
    onState(state, detail) {
      model.conn = state;
      if (state === 'error') showNotice(`Live updates stopped: ${detail.reason ?? 'the hub refused'}.`);
      scheduleRender();
    },
  });
  if (model.fleet) follow(model.fleet);
  // Relative times ("3s ago") age without any message arriving.
  setInterval(scheduleRender, 1000);
}

main();
