import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';

/** The page: one self-contained HTML file shipped with the package (no CDN, no build step). */
const PAGE_URL = new URL('../../assets/dashboard.html', import.meta.url);

export interface DashboardSettings {
  /** Show the reload and scale buttons (--admin-actions). */
  actions: boolean;
  /** The page must ask for the token and send it with every request. */
  token: boolean;
}

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/**
 * The page is the same static file for everyone and carries no data of the
 * cluster (it fetches /status with the token), so it is served without one:
 * a browser cannot attach a Bearer header to a navigation. Served with a strict Content-Security-Policy: only its own
 * inline script and style (by hash) run, it may only talk to this server,
 * and no other site may frame it.
 */
export class Dashboard {
  readonly #html: string;
  readonly #csp: string;

  constructor(settings: DashboardSettings) {
    const template = readFileSync(PAGE_URL, 'utf8');
    this.#html = template
      .replace('data-actions="false"', `data-actions="${settings.actions}"`)
      .replace('data-token="false"', `data-token="${settings.token}"`);
    const inline = (tag: string): string[] => [...this.#html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => sha256(m[1] as string));
    this.#csp = [
      "default-src 'none'",
      `script-src ${inline('script').join(' ')}`,
      `style-src ${inline('style').join(' ')}`,
      "connect-src 'self'",
      'img-src data:',
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; ');
  }

  serve(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(this.#html),
      'content-security-policy': this.#csp,
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
    });
    res.end(res.req.method === 'HEAD' ? undefined : this.#html);
  }
}
