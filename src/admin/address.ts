import net from 'node:net';
import { UsageError } from '../common/errors.js';

export interface AdminAddress {
  host: string;
  port: number;
}

const PORT_RE = /^\d{1,5}$/;

/**
 * `--admin <port|host:port>`: a bare port binds 127.0.0.1; IPv6 hosts go in
 * brackets (`[::1]:9100`). Returns the host as `listen()` takes it.
 */
export function parseAdminAddress(label: string, value: string | number): AdminAddress {
  const text = String(value).trim();
  const bad = (why: string): never => {
    throw new UsageError(`${label} must be a port or host:port (e.g. 9100, 127.0.0.1:9100, [::1]:9100), got ${JSON.stringify(value)}${why}`);
  };
  let host = '127.0.0.1';
  let portText = text;
  if (!PORT_RE.test(text)) {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
    if (!m) return bad('');
    host = (m[1] ?? m[2]) as string;
    portText = m[3] as string;
    if (m[1] !== undefined && net.isIPv6(host) === false) return bad(': not an IPv6 address in the brackets');
  }
  const port = Number(portText);
  if (port > 65535) return bad(': the port must be 0-65535');
  return { host, port };
}

/** Loopback: only this machine can connect. `localhost` counts; any other name is judged unsafe. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

/** How a URL names the address (IPv6 in brackets). */
export function hostForUrl(host: string): string {
  return net.isIPv6(host) ? `[${host}]` : host;
}
