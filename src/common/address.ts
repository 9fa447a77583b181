/** `:::4210` and `0.0.0.0:4210` listen everywhere: `*:4210`; an IPv6 host goes in brackets. */
export function displayAddress(address: string): string {
  const i = address.lastIndexOf(':');
  if (i <= 0) return address;
  const host = address.slice(0, i);
  const port = address.slice(i + 1);
  if (host === '::' || host === '0.0.0.0') return `*:${port}`;
  return host.includes(':') ? `[${host}]:${port}` : address;
}
