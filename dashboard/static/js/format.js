// Pure formatting functions: values in, display strings out. No DOM and no
// clock reads (callers pass "now"), so they run unchanged under `node --test`.

/** Shown for a value that is missing or not a finite number. */
export const MISSING = '—';

/**
 * @param {unknown} v
 * @returns {v is number}
 */
function finite(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

// A fixed locale keeps output identical between browsers and tests; operators
// read these next to logs and CLI output, which are not localized either.
/** @type {Map<number, Intl.NumberFormat>} */
const numberFormats = new Map();
/** @param {number} digits */
function numberFormat(digits) {
  let f = numberFormats.get(digits);
  if (!f) {
    f = new Intl.NumberFormat('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
    numberFormats.set(digits, f);
  }
  return f;
}

/**
 * A plain number with up to `digits` decimals and thousands separators.
 * @param {unknown} v
 * @param {number} [digits=2]
 * @returns {string} e.g. "0.52", "1,234.5"
 */
export function number(v, digits = 2) {
  if (!finite(v)) return MISSING;
  const s = numberFormat(digits).format(v);
  return s === '-0' ? '0' : s;
}

/**
 * A percentage with one decimal.
 * @param {unknown} v percent, 0–100
 * @returns {string} e.g. "12.5 %" (spaced like "48.3 °C", the SI style)
 */
export function percent(v) {
  if (!finite(v)) return MISSING;
  return `${v.toFixed(1)} %`;
}

/**
 * A temperature in degrees Celsius with one decimal.
 * @param {unknown} v
 * @returns {string} e.g. "48.3 °C"
 */
export function celsius(v) {
  if (!finite(v)) return MISSING;
  return `${v.toFixed(1)} °C`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/**
 * A byte count with binary prefixes: three significant digits at most.
 * @param {unknown} v bytes
 * @returns {string} e.g. "512 B", "1.5 KiB", "3.82 GiB"
 */
export function bytes(v) {
  if (!finite(v)) return MISSING;
  const sign = v < 0 ? '-' : '';
  let n = Math.abs(v);
  let i = 0;
  while (n >= 1024 && i < BYTE_UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  if (i === 0) return `${sign}${Math.round(n)} B`;
  // Decimals shrink as the integer part grows, so widths stay similar.
  let digits = n < 10 ? 2 : n < 100 ? 1 : 0;
  let s = n.toFixed(digits);
  // 1023.96 KiB rounds to "1024 KiB": show the next unit instead.
  if (Number(s) >= 1024 && i < BYTE_UNITS.length - 1) {
    n /= 1024;
    i++;
    digits = 2;
    s = n.toFixed(digits);
  }
  return `${sign}${trimZeros(s)} ${BYTE_UNITS[i]}`;
}

/** "1.50" → "1.5", "2.00" → "2" @param {string} s */
function trimZeros(s) {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

const DURATION_UNITS = /** @type {const} */ ([
  ['d', 86400],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
]);

/**
 * A duration as its two largest non-zero units, rounded down, because "3d 4h"
 * is what an operator wants from an uptime, not "3d 4h 12m 9s".
 * @param {unknown} seconds
 * @returns {string} e.g. "3d 4h", "5m 2s", "45s", "0s"
 */
export function duration(seconds) {
  if (!finite(seconds)) return MISSING;
  if (seconds < 0) return `-${duration(-seconds)}`;
  let rest = Math.floor(seconds);
  const parts = [];
  for (const [unit, size] of DURATION_UNITS) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (parts.length > 0) {
      // Only the unit right after the largest one: "3d 4h", never "3d 12m".
      if (n > 0) parts.push(`${n}${unit}`);
      break;
    }
    if (n > 0) parts.push(`${n}${unit}`);
  }
  return parts.length ? parts.join(' ') : '0s';
}

/**
 * How long ago `ts` was, at the coarsest useful unit.
 * @param {unknown} ts Unix milliseconds
 * @param {number} now Unix milliseconds
 * @returns {string} e.g. "just now", "3s ago", "5m ago", "2h ago", "3d ago"
 */
export function relativeTime(ts, now) {
  if (!finite(ts) || !finite(now) || ts <= 0) return MISSING;
  // Small negative ages come from clock skew between hub and browser; they
  // mean "now", not "in the future".
  const s = Math.floor((now - ts) / 1000);
  if (s < 1) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/**
 * A byte rate with binary prefixes.
 * @param {unknown} v bytes per second
 * @returns {string} e.g. "1.5 KiB/s"
 */
export function rate(v) {
  if (!finite(v)) return MISSING;
  return `${bytes(v)}/s`;
}

/**
 * A duration given in milliseconds; sub-second ones in ms.
 * @param {unknown} ms
 * @returns {string} e.g. "450 ms", "5m 2s"
 */
export function durationMs(ms) {
  if (!finite(ms)) return MISSING;
  if (Math.abs(ms) < 1000) return `${Math.round(ms)} ms`;
  return duration(ms / 1000);
}

/**
 * What kind of unit a metric carries, from its name (the agent's naming
 * convention: *_percent, *_bytes, *_bytes_per_s, *_s, temp.*).
 * @param {string} name
 * @returns {'percent'|'celsius'|'rate'|'bytes'|'seconds'|'number'}
 */
export function metricUnit(name) {
  if (name.endsWith('percent')) return 'percent';
  if (name.startsWith('temp.')) return 'celsius';
  if (name.endsWith('_per_s')) return 'rate';
  if (name.endsWith('_bytes')) return 'bytes';
  if (name.endsWith('_s')) return 'seconds';
  return 'number';
}

const FORMATTERS = {
  percent,
  celsius,
  rate,
  bytes,
  seconds: duration,
  number: (/** @type {unknown} */ v) => number(v, 2),
};

/**
 * A metric's value with the unit its name implies.
 * @param {string} name
 * @param {unknown} v
 * @returns {string}
 */
export function formatMetric(name, v) {
  return FORMATTERS[metricUnit(name)](v);
}

const LABELS = {
  'cpu.percent': 'CPU',
  'mem.used_percent': 'Memory used',
  'temp.soc': 'SoC temperature',
  'load.1': 'Load (1 min)',
  'load.5': 'Load (5 min)',
  'load.15': 'Load (15 min)',
  'disk.root.used_percent': 'Disk / used',
  'host.uptime_s': 'Uptime',
  'mem.total_bytes': 'Memory total',
};

/**
 * A person-readable name for a metric; unknown ones keep their own name.
 * @param {string} name
 * @returns {string} e.g. "CPU", "eth0 receive"
 */
export function metricLabel(name) {
  const known = /** @type {Record<string, string>} */ (LABELS)[name];
  if (known) return known;
  const net = /^net\.(.+)\.(rx|tx)_bytes_per_s$/.exec(name);
  if (net) return `${net[1]} ${net[2] === 'rx' ? 'receive' : 'transmit'}`;
  return name;
}
