// Rendering: turns the page model into DOM updates. Rows are keyed by device
// id and updated in place, so a re-render touches only text that changed and
// never rebuilds the table (focus, selection and scroll position survive).
// Every value from the network goes in through textContent, never innerHTML.

import { bytes, celsius, duration, number, percent, relativeTime, MISSING } from './format.js';
import { keyMetrics, summarize } from './fleet.js';

/** @typedef {import('./live.js').ConnState} ConnState */
/** @typedef {import('./fleet.js').Fleet} Fleet */
/** @typedef {import('./fleet.js').Device} Device */

/**
 * @typedef {object} Model
 * @property {ConnState} conn
 * @property {Fleet | null} fleet latest snapshot, null before the first one
 * @property {number | null} receivedAt local clock when the fleet last changed
 * @property {{text: string, until: number} | null} notice
 */

const CONN_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  error: 'Not connected (error)',
};

// Column order of the cells after the row header; must match index.html.
const COLUMNS = ['state', 'seen', 'cpu', 'mem', 'load', 'temp', 'uptime', 'count'];
const NUMERIC = new Set(['cpu', 'mem', 'load', 'temp', 'uptime', 'count']);
/** How long a snapshot counts as current while the first connection is still being made. */
const FRESH_MS = 5_000;

/**
 * @param {Element} el
 * @param {string} text
 */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * @param {Element} el
 * @param {string} name
 * @param {string | null} value null removes the attribute
 */
function setAttr(el, name, value) {
  if (value === null) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) {
    el.setAttribute(name, value);
  }
}

/**
 * Binds to the elements of index.html.
 * @param {Document} doc
 * @returns {{render: (model: Model, now: number) => void}}
 */
export function createView(doc) {
  const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (doc.getElementById(id));
  const els = {
    conn: $('conn'),
    connText: $('conn-text'),
    updated: $('updated'),
    summary: $('summary'),
    notice: $('notice'),
    fleet: $('fleet'),
    rows: $('rows'),
    empty: $('empty'),
    loading: $('loading'),
  };
  const summary = createSummary(doc, els.summary);
  /** @type {Map<string, Row>} */
  const rows = new Map();

  /** @param {Model} model @param {number} now */
  function render(model, now) {
    const { conn, fleet, receivedAt } = model;
    const live = conn === 'live';
    // Values may be out of date whenever we are not live, except a fresh
    // HTTP snapshot during the first connect: dimming that would flash on
    // every page load.
    const stale =
      receivedAt !== null && !live && (conn !== 'connecting' || now - receivedAt > FRESH_MS);

    setAttr(els.conn, 'data-state', conn);
    setText(els.connText, CONN_TEXT[conn] ?? conn);

    if (receivedAt === null) {
      setText(els.updated, '\u00a0');
    } else {
      const age = relativeTime(receivedAt, now);
      setText(els.updated, stale ? `last update ${age}` : `updated ${age}`);
    }
    els.updated.classList.toggle('is-stale', stale);

    const notice = model.notice && model.notice.until > now ? model.notice.text : '';
    setText(els.notice, notice);
    els.notice.hidden = notice === '';

    els.loading.hidden = fleet !== null;
    if (fleet === null) {
      els.fleet.hidden = true;
      els.empty.hidden = true;
      summary.hide();
      return;
    }
    const empty = fleet.devices.length === 0;
    els.fleet.hidden = empty;
    els.empty.hidden = !empty;
    summary.update(summarize(fleet.devices));

    // Dimmed, the last-known values stay readable but visibly not current.
    els.fleet.classList.toggle('is-stale', stale);
    setAttr(els.fleet, 'aria-describedby', stale ? 'updated' : null);

    // Ages of last_seen are measured on the hub's clock (its ts plus time
    // elapsed here), so a browser with a skewed clock still shows "3s ago".
    const hubNow = fleet.ts > 0 && receivedAt !== null ? fleet.ts + (now - receivedAt) : now;
    renderRows(fleet.devices, hubNow);
  }

  /** @param {Device[]} devices @param {number} hubNow */
  function renderRows(devices, hubNow) {
    const seen = new Set();
    let prev = null;
    for (const d of devices) {
      seen.add(d.id);
      let row = rows.get(d.id);
      if (!row) {
        row = createRow(doc, d.id);
        rows.set(d.id, row);
      }
      updateRow(row, d, hubNow);
      // Keep DOM order equal to fleet order with the fewest moves.
      const want = /** @type {ChildNode | null} */ (prev ? prev.nextSibling : els.rows.firstChild);
      if (want !== row.tr) els.rows.insertBefore(row.tr, want);
      prev = row.tr;
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        rows.delete(id);
      }
    }
  }

  return { render };
}

/**
 * @typedef {object} Row
 * @property {HTMLTableRowElement} tr
 * @property {HTMLElement} tags
 * @property {HTMLElement} badge
 * @property {HTMLElement} memTotal
 * @property {Record<string, HTMLElement>} cells
 */

/** @param {Document} doc @param {string} id @returns {Row} */
function createRow(doc, id) {
  const tr = doc.createElement('tr');
  const th = doc.createElement('th');
  th.scope = 'row';
  th.className = 'device';
  const name = doc.createElement('span');
  name.className = 'device-id';
  name.textContent = id;
  const tags = doc.createElement('span');
  tags.className = 'device-tags';
  th.append(name, tags);
  tr.append(th);

  /** @type {Record<string, HTMLElement>} */
  const cells = {};
  for (const col of COLUMNS) {
    const td = doc.createElement('td');
    td.className = NUMERIC.has(col) ? `col-${col} num` : `col-${col}`;
    tr.append(td);
    cells[col] = td;
  }
  const badge = doc.createElement('span');
  badge.className = 'badge';
  cells.state.append(badge);

  // Memory shows the percentage with the total underneath when reported.
  const memValue = doc.createElement('span');
  const memTotal = doc.createElement('span');
  memTotal.className = 'sub';
  cells.mem.append(memValue, memTotal);
  cells.mem = memValue;
  return { tr, tags, badge, memTotal, cells };
}

/** @param {Row} row @param {Device} d @param {number} hubNow */
function updateRow(row, d, hubNow) {
  const tagText = Object.entries(d.tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(' · ');
  setText(row.tags, tagText);

  setAttr(row.badge, 'data-state', d.state);
  setAttr(row.badge, 'data-reason', d.reason ?? null);
  setText(row.badge, d.reason ? `${d.state} · ${d.reason}` : d.state);

  const m = keyMetrics(d);
  const c = row.cells;
  setText(c.seen, d.last_seen ? relativeTime(d.last_seen, hubNow) : MISSING);
  setAttr(c.seen, 'title', d.last_seen ? new Date(d.last_seen).toLocaleString() : null);
  setText(c.cpu, percent(m.cpu));
  setText(c.mem, percent(m.mem));
  setText(row.memTotal, m.memTotal === undefined ? '' : `of ${bytes(m.memTotal)}`);
  setText(c.load, number(m.load1, 2));
  setText(c.temp, celsius(m.temp));
  setText(c.uptime, duration(m.uptime));
  setText(c.count, String(m.count));
}

/**
 * The "3 devices · 2 online · 0 stale · 1 offline" line, built once.
 * @param {Document} doc
 * @param {HTMLElement} root
 */
function createSummary(doc, root) {
  /** @type {Record<string, {n: HTMLElement, label: HTMLElement}>} */
  const parts = {};
  for (const key of ['total', 'online', 'stale', 'offline']) {
    const item = doc.createElement('span');
    item.className = `sum sum-${key}`;
    const n = doc.createElement('strong');
    const label = doc.createElement('span');
    item.append(n, label);
    root.append(item);
    parts[key] = { n, label };
  }
  return {
    hide() {
      root.hidden = true;
    },
    /** @param {import('./fleet.js').Summary} s */
    update(s) {
      root.hidden = false;
      for (const [key, { n, label }] of Object.entries(parts)) {
        setText(n, String(s[/** @type {keyof typeof s} */ (key)]));
        setText(label, key === 'total' ? (s.total === 1 ? ' device' : ' devices') : ` ${key}`);
      }
    },
  };
}
