/**
 * What --sticky routes by: the client's IP address, a request header, or a
 * cookie. `ip` needs nothing from the request; the other two make the
 * primary read the first request's head (plain HTTP/1 only). The text form
 * is validated by the option table (schema.ts).
 */
export type StickyKey = { by: 'ip' } | { by: 'header'; name: string } | { by: 'cookie'; name: string };

/** "ip", "header:NAME" (matched case-insensitively, so lower-cased here) or "cookie:NAME". */
export function toStickyKey(spec: string): StickyKey {
  if (spec === 'ip') return { by: 'ip' };
  const colon = spec.indexOf(':');
  const name = spec.slice(colon + 1);
  return spec.startsWith('header:') ? { by: 'header', name: name.toLowerCase() } : { by: 'cookie', name };
}

export function describeSticky(key: StickyKey): string {
  return key.by === 'ip' ? 'ip' : `${key.by}:${key.name}`;
}
