import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isStale, FRESH_MS } from '../static/js/view.js';

test('isStale: last-known data whenever not live, except a fresh first snapshot', () => {
  const cases = [
    ['live', 0, 10_000, false],
    ['connecting', null, 10_000, false],
    ['connecting', 10_000, 10_000 + FRESH_MS - 1, false],
    ['connecting', 10_000, 10_000 + FRESH_MS + 1, true],
    ['reconnecting', 10_000, 10_001, true],
    ['offline', 10_000, 10_001, true],
    ['error', 10_000, 10_001, true],
  ];
  for (const [conn, receivedAt, now, want] of cases) {
    assert.equal(isStale(conn, receivedAt, now), want, `conn ${conn} receivedAt ${receivedAt} now ${now}`);
  }
});
