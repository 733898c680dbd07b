// Fetch helpers for the hub's REST API: JSON, a timeout, and errors that say
// what happened (status and the hub's message) for the page to show.

export const TIMEOUT_MS = 10_000;

export class HTTPError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.name = 'HTTPError';
    this.status = status;
  }
}

/**
 * @param {string} url
 * @param {{signal?: AbortSignal, method?: string, timeout?: number}} [opts]
 * @returns {Promise<any>}
 */
export async function getJSON(url, { signal, method = 'GET', timeout = TIMEOUT_MS } = {}) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new DOMException('timed out', 'TimeoutError')), timeout);
  const onAbort = () => ctrl.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await fetch(url, { method, headers: { Accept: 'application/json' }, signal: ctrl.signal });
    if (!res.ok) {
      let msg = `HTTP ${res.status}`;
      try {
        const body = await res.json();
        if (body && typeof body.error === 'string') msg = `${msg}: ${body.error}`;
      } catch {
        // Not JSON: the status is all there is.
      }
      throw new HTTPError(res.status, msg);
    }
    return await res.json();
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** @param {unknown} err @returns {boolean} the caller gave up on purpose */
export function isAbort(err) {
  return err instanceof Error && err.name === 'AbortError';
}

/** @param {unknown} err @returns {string} for people */
export function errorText(err) {
  if (err instanceof Error) return err.name === 'TimeoutError' ? 'timed out' : err.message;
  return String(err);
}
