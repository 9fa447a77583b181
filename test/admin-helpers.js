// Helpers for the admin server's tests: find its URL in corral's output,
// make requests with any method, headers and body, and parse /metrics with a
// real Prometheus exposition parser plus the checks it does not make.
import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';

const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format');

/** Wait for corral's "admin on <url>" line (the one of app `name` when given). */
export async function adminUrl(c, name) {
  const prefix = name ? `\\[corral ${name}\\] ` : '';
  const line = await c.waitForLine(new RegExp(`${prefix}admin on (http://\\S+)`));
  return new URL(/admin on (http:\/\/\S+)/.exec(line)[1]);
}

/** One request; resolves with { status, headers, body }. */
export function request(url, { method = 'GET', headers = {}, body, timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.setTimeout(timeout, () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Parse an exposition and check what the parser lets through: every sample
 * value is a float, no series appears twice, and every family has a TYPE.
 * Returns Map(name -> family).
 */
export function parseMetrics(text) {
  const families = parsePrometheus(text);
  const byName = new Map();
  for (const f of families) {
    assert.ok(!byName.has(f.name), `family ${f.name} appears twice`);
    assert.notEqual(f.type, 'UNTYPED', `family ${f.name} has no TYPE line`);
    byName.set(f.name, f);
    const seen = new Set();
    for (const m of f.metrics) {
      const key = JSON.stringify(m.labels ?? {});
      assert.ok(!seen.has(key), `series ${f.name}${key} appears twice`);
      seen.add(key);
      // (The parser folds a histogram with labels besides `le` into one bucket map without count and sum.)
      const values = m.buckets ? [...Object.values(m.buckets), m.count, m.sum] : m.quantiles ? [...Object.values(m.quantiles), m.count, m.sum] : [m.value];
      for (const v of values.filter((x) => x !== undefined || !(m.buckets || m.quantiles))) assert.ok(/^([+-]?Inf|NaN|Nan|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$/.test(v), `${f.name}${key}: value ${v} is not a float`);
    }
  }
  return byName;
}

/** The value of one series: the family's sample whose labels include `labels`. */
export function sample(families, name, labels = {}) {
  const f = families.get(name);
  if (!f) return undefined;
  const m = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => (x.labels ?? {})[k] === String(v)));
  return m === undefined ? undefined : Number(m.value ?? m.count);
}
