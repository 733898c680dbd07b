// The page shell: connection indicator, "updated Xs ago", the stale flag,
// notices, loading and error states, and which view the route shows.
// The views themselves live in overview.js, device.js and alerts-view.js.

import { relativeTime } from './format.js';
import { setAttr, setHidden, setText } from './dom.js';

/** @typedef {import('./live.js').ConnState} ConnState */

const CONN_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  error: 'Not connected (error)',
};

/** How long a snapshot counts as current while the first connection is still being made. */
export const FRESH_MS = 5_000;

/**
 * Whether what is shown is last-known rather than current: any time the
 * connection is not live, except a fresh HTTP snapshot during the first
 * connect (dimming that would flash on every page load).
 * @param {ConnState} conn
 * @param {number | null} receivedAt
 * @param {number} now
 */
export function isStale(conn, receivedAt, now) {
  return receivedAt !== null && conn !== 'live' && (conn !== 'connecting' || now - receivedAt > FRESH_MS);
}

/**
 * @typedef {object} ShellInput
 * @property {ConnState} conn
 * @property {number | null} receivedAt local clock of the last fleet change
 * @property {boolean} hasFleet
 * @property {string | null} loadError the first load failed and nothing came since
 * @property {{text: string, until: number} | null} notice
 * @property {'overview'|'device'|'alerts'} route
 */

/** @param {Document} doc */
export function createShell(doc) {
  const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (doc.getElementById(id));
  const els = {
    conn: $('conn'),
    connText: $('conn-text'),
    updated: $('updated'),
    notice: $('notice'),
    loading: $('loading'),
    error: $('error'),
    errorText: $('error-text'),
    overview: $('view-overview'),
    device: $('view-device'),
    alerts: $('view-alerts'),
  };
  const navLinks = [...doc.querySelectorAll('.nav-link[data-route]')];

  /** @param {ShellInput} s @param {number} now @returns {boolean} stale */
  function render(s, now) {
    const stale = isStale(s.conn, s.receivedAt, now);
    setAttr(els.conn, 'data-state', s.conn);
    setText(els.connText, CONN_TEXT[s.conn] ?? s.conn);
    if (s.receivedAt === null) setText(els.updated, '\u00a0');
    else setText(els.updated, `updated ${relativeTime(s.receivedAt, now)}${stale ? ' · stale' : ''}`);
    els.updated.classList.toggle('is-stale', stale);
    if (stale) doc.body.dataset.stale = 'true';
    else if (doc.body.dataset.stale) delete doc.body.dataset.stale;

    const notice = s.notice && s.notice.until > now ? s.notice.text : '';
    setText(els.notice, notice);
    setHidden(els.notice, notice === '');

    // The overview needs the fleet; the other views load their own data.
    const waiting = !s.hasFleet && s.route === 'overview';
    setHidden(els.loading, !waiting || s.loadError !== null);
    setHidden(els.error, !waiting || s.loadError === null);
    setText(els.errorText, s.loadError ?? '');
    setHidden(els.overview, s.route !== 'overview' || !s.hasFleet);
    setHidden(els.device, s.route !== 'device');
    setHidden(els.alerts, s.route !== 'alerts');
    for (const a of navLinks) setAttr(a, 'aria-current', a.getAttribute('data-route') === s.route ? 'page' : null);
    return stale;
  }

  return { render };
}
