import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isLoopback } from './address.js';

/** Header a dashboard (or script) must send with a POST action; a cross-site form cannot. */
export const ACTION_HEADER = 'x-corral-action';

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * `Authorization: Bearer <token>`, compared in constant time (both sides
 * hashed first, so neither the length nor a prefix leaks through timing).
 */
export function hasToken(req: IncomingMessage, token: string): boolean {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m !== null && timingSafeEqual(digest(m[1] as string), digest(token));
}

/** The Host header's name without the port. */
function hostName(req: IncomingMessage): string | null {
  const host = req.headers.host;
  if (!host) return null;
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(host);
  return m ? ((m[1] ?? m[2]) as string).toLowerCase() : null;
}

/**
 * Without a token the server trusts being on loopback, so a request must
 * also *say* it is for a loopback name: a page on evil.example whose name
 * was rebound to 127.0.0.1 sends `Host: evil.example` and is refused.
 */
export function hostIsLoopback(req: IncomingMessage): boolean {
  const name = hostName(req);
  return name !== null && isLoopback(name);
}

/** Why a POST action is refused as a possible cross-site request, or null when it is safe. */
export function csrfProblem(req: IncomingMessage): string | null {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') return 'actions take a JSON body: send Content-Type: application/json';
  if (req.headers[ACTION_HEADER] !== '1') return `actions need the header ${ACTION_HEADER}: 1`;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `cross-site request refused (Sec-Fetch-Site: ${site})`;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      return 'unreadable Origin header';
    }
    if (originHost !== req.headers.host) return `cross-origin request refused (Origin ${origin}, Host ${req.headers.host ?? '-'})`;
  } else if (origin === 'null') {
    return 'cross-origin request refused (Origin: null)';
  }
  return null;
}
