// Per-row CPU sparkline: an inline SVG polyline built with DOM APIs (no
// markup strings, CSP-safe). Redrawn only when its ring of values changed.

import { sparkPoints } from './series.js';

const NS = 'http://www.w3.org/2000/svg';
export const SPARK_W = 96;
export const SPARK_H = 24;
/** Readings a sparkline holds: about the last minute at 1 s. */
export const SPARK_SLOTS = 60;

/** @param {Document} doc */
export function createSparkline(doc) {
  const svg = doc.createElementNS(NS, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', `0 0 ${SPARK_W} ${SPARK_H}`);
  svg.setAttribute('width', String(SPARK_W));
  svg.setAttribute('height', String(SPARK_H));
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const line = doc.createElementNS(NS, 'polyline');
  line.setAttribute('class', 'spark-line');
  svg.append(line);
  let drawn = -1;
  return {
    el: svg,
    /** @param {number[]} values @param {number} version bumps when values change */
    draw(values, version) {
      if (version === drawn) return;
      drawn = version;
      line.setAttribute('points', sparkPoints(values, SPARK_W, SPARK_H, SPARK_SLOTS));
    },
  };
}
