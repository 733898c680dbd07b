// Hash routes, so the Go hub serves one page and links work offline:
// "#/" overview, "#/device/<id>" a device, "#/alerts" the alerts panel.

/**
 * @typedef {{name: 'overview'} | {name: 'device', id: string} | {name: 'alerts'}} Route
 */

/**
 * @param {string} hash location.hash, with or without the leading "#"
 * @returns {Route} unknown or malformed hashes fall back to the overview
 */
export function parseRoute(hash) {
  const path = String(hash ?? '').replace(/^#/, '').replace(/^\/+/, '');
  const parts = path.split('/');
  if (parts[0] === 'alerts' && parts.length === 1) return { name: 'alerts' };
  if (parts[0] === 'device' && parts.length === 2 && parts[1] !== '') {
    try {
      return { name: 'device', id: decodeURIComponent(parts[1]) };
    } catch {
      // A hand-edited hash with a stray "%": not worth an error page.
      return { name: 'overview' };
    }
  }
  return { name: 'overview' };
}

/** @param {string} id @returns {string} the link to a device page */
export function deviceHref(id) {
  return `#/device/${encodeURIComponent(id)}`;
}
