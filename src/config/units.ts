import { UsageError } from '../common/errors.js';

/** A whole number from the command line; `what` names what was expected. */
export function parseInteger(label: string, text: string, min: number, what: string): number {
  if (!/^[+-]?\d+$/.test(text.trim())) throw new UsageError(`${label} must be ${what}, got ${JSON.stringify(text)}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${label} must be ${what}, got ${JSON.stringify(text)}`);
  return n;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** "512M", "2G", "1048576" → bytes. */
export function parseSize(label: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? SIZE_UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) <= 0) {
    throw new UsageError(`${label} must be a size such as 512M, 2G or a byte count, got ${JSON.stringify(text)}`);
  }
  return Math.round(Number(m[1]) * unit);
}

const DURATION_UNITS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000 };

/** "500", "500ms", "10s", "2m" → milliseconds. */
export function parseDuration(label: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|)$/i.exec(text.trim());
  const unit = m ? DURATION_UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(`${label} must be a duration in ms (or with s/m), got ${JSON.stringify(text)}`);
  }
  return Math.round(Number(m[1]) * unit);
}
