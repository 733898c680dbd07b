// The alerts panel (#/alerts), the header count and the toasts. Lists are
// keyed by alert id so an ack button keeps focus while values update.

import { formatMetric, metricLabel, relativeTime } from './format.js';
import { alertLists } from './alerts-model.js';
import { deviceHref } from './router.js';
import { h, setAttr, setHidden, setText, syncList } from './dom.js';

/** @typedef {import('./alerts-model.js').Alert} Alert */
/** @typedef {import('./alerts-model.js').Toast} Toast */

/**
 * An alert list item; `ack` adds the acknowledge button for firing ones.
 * @param {Document} doc
 * @param {boolean} ack
 * @returns {HTMLElement}
 */
export function createAlertItem(doc, ack) {
  const li = h(doc, 'li', 'alert-item');
  const sev = h(doc, 'span', 'sev');
  const body = h(doc, 'div', 'alert-body');
  const title = h(doc, 'p', 'alert-title');
  const dev = h(doc, 'a', 'alert-device');
  const rule = h(doc, 'span', 'alert-rule');
  title.append(dev, rule);
  const summary = h(doc, 'p', 'alert-summary');
  const meta = h(doc, 'p', 'alert-meta');
  body.append(title, summary, meta);
  li.append(sev, body);
  if (ack) {
    const btn = h(doc, 'button', 'btn btn-small', 'Acknowledge');
    btn.type = 'button';
    li.append(btn);
  }
  return li;
}

/**
 * @param {HTMLElement} li
 * @param {Alert} a
 * @param {number} now
 * @param {Set<string>} pending ids with an ack in flight
 */
export function updateAlertItem(li, a, now, pending) {
  setAttr(li, 'data-alert-id', a.id);
  setAttr(li, 'data-state', a.state);
  setAttr(li, 'data-severity', a.severity);
  const [sev, body, btn] = /** @type {HTMLElement[]} */ ([...li.children]);
  setText(sev, a.state === 'resolved' ? 'resolved' : a.severity);
  const [title, summary, meta] = /** @type {HTMLElement[]} */ ([...body.children]);
  const [dev, rule] = /** @type {HTMLElement[]} */ ([...title.children]);
  setText(dev, a.device || 'fleet');
  setAttr(dev, 'href', a.device ? deviceHref(a.device) : '#/');
  setText(rule, a.rule);
  setText(summary, a.summary || `${metricLabel(a.metric)} ${formatMetric(a.metric, a.value)}`);
  const parts = [];
  if (a.metric && a.value !== undefined) {
    parts.push(`${metricLabel(a.metric)} ${formatMetric(a.metric, a.value)}${a.threshold !== undefined ? ` (limit ${formatMetric(a.metric, a.threshold)})` : ''}`);
  }
  parts.push(`started ${relativeTime(a.started_at, now)}`);
  if (a.resolved_at) parts.push(`resolved ${relativeTime(a.resolved_at, now)}`);
  if (a.acked_at) parts.push(`acknowledged ${relativeTime(a.acked_at, now)}`);
  setText(meta, parts.join(' · '));
  if (btn) {
    const show = a.state === 'firing' && !a.acked_at;
    setHidden(btn, !show);
    // The contract's hook; a hidden button must not match it.
    setAttr(btn, 'data-ack', show ? a.id : null);
    /** @type {HTMLButtonElement} */ (btn).disabled = pending.has(a.id);
    setText(btn, pending.has(a.id) ? 'Acknowledging…' : 'Acknowledge');
    setAttr(btn, 'aria-label', `Acknowledge ${a.rule} on ${a.device || 'fleet'}`);
  }
}

/**
 * @param {Document} doc
 * @param {(id: string) => void} onAck
 */
export function createAlertsView(doc, onAck) {
  const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (doc.getElementById(id));
  const els = {
    count: $('alert-count'),
    status: $('alerts-status'),
    firing: $('alerts-firing'),
    firingEmpty: $('alerts-firing-empty'),
    recent: $('alerts-recent'),
    recentEmpty: $('alerts-recent-empty'),
    toasts: $('toasts'),
  };
  const firingCache = new Map();
  const recentCache = new Map();
  const toastCache = new Map();
  /** @type {(id: string) => void} */
  let dismiss = () => {};

  $('view-alerts').addEventListener('click', (ev) => {
    const btn = /** @type {HTMLElement} */ (ev.target).closest('button[data-ack]');
    if (btn) onAck(/** @type {string} */ (btn.getAttribute('data-ack')));
  });
  els.toasts.addEventListener('click', (ev) => {
    const btn = /** @type {HTMLElement} */ (ev.target).closest('button[data-dismiss]');
    if (btn) dismiss(/** @type {string} */ (btn.getAttribute('data-dismiss')));
  });

  return {
    /** @param {(id: string) => void} fn */
    onDismiss(fn) {
      dismiss = fn;
    },
    /** @param {{firing: number, critical: number}} counts */
    renderCount(counts) {
      setText(els.count, String(counts.firing));
      setAttr(els.count, 'data-count', String(counts.firing));
      setAttr(els.count, 'data-tone', counts.critical ? 'bad' : counts.firing ? 'warn' : null);
      setAttr(els.count, 'aria-label', `${counts.firing} firing`);
    },
    /**
     * @param {Map<string, Alert>} map
     * @param {{loaded: boolean, error: string | null}} status
     * @param {number} now
     * @param {Set<string>} pending
     */
    render(map, status, now, pending) {
      const { firing, recent } = alertLists(map, { recent: 50 });
      setText(els.status, status.error ? `Could not load alerts: ${status.error}` : status.loaded ? '' : 'Loading alerts…');
      const upd = (/** @type {HTMLElement} */ el, /** @type {Alert} */ a) => updateAlertItem(el, a, now, pending);
      syncList(els.firing, firing, (a) => a.id, () => createAlertItem(doc, true), upd, firingCache);
      syncList(els.recent, recent, (a) => a.id, () => createAlertItem(doc, false), upd, recentCache);
      setHidden(els.firingEmpty, !status.loaded || firing.length > 0);
      setHidden(els.recentEmpty, !status.loaded || recent.length > 0);
    },
    /** @param {Toast[]} toasts */
    renderToasts(toasts) {
      syncList(
        els.toasts,
        toasts,
        (t) => t.id,
        (t) => {
          const el = h(doc, 'div', 'toast');
          // Critical alerts interrupt a screen reader; the rest wait.
          el.setAttribute('role', t.state === 'firing' && t.severity === 'critical' ? 'alert' : 'status');
          const body = h(doc, 'div', 'toast-body');
          const title = h(doc, 'a', 'toast-title');
          const text = h(doc, 'p', 'toast-text');
          body.append(title, text);
          const x = h(doc, 'button', 'toast-close', '×');
          x.type = 'button';
          el.append(body, x);
          return el;
        },
        (el, t) => {
          setAttr(el, 'data-alert-id', t.id);
          setAttr(el, 'data-state', t.state);
          setAttr(el, 'data-severity', t.severity);
          const [body, x] = /** @type {HTMLElement[]} */ ([...el.children]);
          const [title, text] = /** @type {HTMLElement[]} */ ([...body.children]);
          setText(title, `${t.state === 'resolved' ? 'Resolved' : t.severity === 'critical' ? 'Critical' : 'Warning'}: ${t.title}`);
          setAttr(title, 'href', '#/alerts');
          setText(text, t.text);
          setAttr(x, 'data-dismiss', t.id);
          setAttr(x, 'aria-label', `Dismiss ${t.title}`);
        },
        toastCache,
      );
    },
  };
}
