/**
 * The routing key of a connection: its client's IP address, or a header or
 * cookie of the first request on it. Pure functions over the bytes the
 * primary read; nothing here allocates per header line.
 */
import type { StickyKey } from '../../config/sticky.js';

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

/** Where the request head ends (just past its blank line) in `buf`, searching from `from`; -1 when not yet. */
export function headEnd(buf: Buffer, from = 0): number {
  const at = buf.indexOf(HEAD_END, Math.max(0, from));
  return at === -1 ? -1 : at + HEAD_END.length;
}

/**
 * An HTTP/1 request starts with a method token. A TLS ClientHello (0x16), the
 * HTTP/2 preface or anything else is not one: nothing to read a key from.
 */
export function looksLikeHttp1(first: Buffer): boolean {
  const c = first[0];
  if (c === undefined) return true;
  if (!(c >= 0x41 && c <= 0x5a)) return false;
  return !first.subarray(0, 3).equals(Buffer.from('PRI'));
}

/**
 * The key's value in the request head, or undefined when the request does
 * not carry it (the caller falls back to the client's IP). Header values are
 * trimmed; several header lines with the name are joined by ", " (RFC 9110
 * §5.3); a cookie is found in any Cookie header line.
 */
export function keyFromHead(head: Buffer, key: StickyKey): string | undefined {
  if (key.by === 'ip') return undefined;
  const wanted = key.by === 'header' ? key.name : 'cookie';
  const values: string[] = [];
  let at = head.indexOf(CRLF);
  while (at !== -1) {
    const start = at + 2;
    const next = head.indexOf(CRLF, start);
    if (next === -1 || next === start) break;
    const colon = head.indexOf(0x3a, start);
    if (colon !== -1 && colon < next && colon - start === wanted.length && head.toString('latin1', start, colon).toLowerCase() === wanted) {
      values.push(head.toString('latin1', colon + 1, next).trim());
    }
    at = next;
  }
  if (values.length === 0) return undefined;
  if (key.by === 'header') return values.join(', ');
  for (const line of values) {
    const found = cookieValue(line, key.name);
    if (found !== undefined) return found;
  }
  return undefined;
}

function cookieValue(line: string, name: string): string | undefined {
  for (const pair of line.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    if (pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/** `::ffff:10.1.2.3` and `10.1.2.3` are one client. */
export function clientIp(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
