import { readFileSync } from 'node:fs';

/** corral's own version, from its package.json. */
export function corralVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
