// Client-side buffers fed by live readings: each device's recent CPU for the
// sparklines. Bounded, so a long-open tab does not grow.

import { createRing } from './series.js';
import { SPARK_SLOTS } from './sparkline.js';

/** @typedef {ReturnType<typeof createRing>} Ring */

export function createSparkStore() {
  /** @type {Map<string, {ring: Ring, version: number}>} */
  const byDevice = new Map();
  return {
    /**
     * @param {string} id
     * @param {unknown} v cpu.percent
     * @param {number} [ts] reading time; older ones than held are ignored
     */
    push(id, v, ts) {
      if (typeof v !== 'number') return;
      let e = byDevice.get(id);
      if (!e) {
        e = { ring: createRing(SPARK_SLOTS), version: 0 };
        byDevice.set(id, e);
      }
      if (e.ring.push(v, ts)) e.version++;
    },
    /** @param {string} id */
    get(id) {
      const e = byDevice.get(id);
      return e ? { values: e.ring.values(), version: e.version } : { values: [], version: 0 };
    },
    /** @param {Set<string>} keep ids still in the fleet */
    prune(keep) {
      for (const id of byDevice.keys()) if (!keep.has(id)) byDevice.delete(id);
    },
  };
}
