import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../common/errors.js';
import { parseConfig, type ConfigApps } from './schema.js';

export const CONFIG_NAMES = ['corral.config.json', 'corral.config.js', 'corral.config.mjs', 'corral.config.ts'] as const;

export function findConfig(cwd: string): string | undefined {
  return CONFIG_NAMES.map((n) => path.join(cwd, n)).find((f) => existsSync(f));
}

async function readConfigValue(file: string): Promise<unknown> {
  if (file.endsWith('.json')) {
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new UsageError(`${file}: not valid JSON (${(err as Error).message}); fix the file or pass another with --config`);
    }
  }
  if (file.endsWith('.ts') && !('typescript' in process.features && process.features.typescript)) {
    throw new UsageError(`${file}: a TypeScript config needs Node >= 23.6 (this is ${process.versions.node}); use corral.config.mjs or .json instead`);
  }
  try {
    const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
    return mod.default ?? mod;
  } catch (err) {
    throw new UsageError(`${file}: cannot load it (${(err as Error).message.split('\n')[0]})`);
  }
}

/** The apps a config file describes, each with its cwd resolved against the file's directory (other paths are relative to that cwd). */
export async function loadConfig(file: string): Promise<ConfigApps> {
  if (!existsSync(file)) throw new UsageError(`config file not found: ${file}; check --config`);
  const { apps, wrapped } = parseConfig(await readConfigValue(file), path.basename(file));
  // `file` is absolute (resolved against the logical cwd), so a symlinked release dir is kept.
  const dir = path.dirname(file);
  return { apps: apps.map((app) => ({ ...app, cwd: path.resolve(dir, app.cwd ?? '.') })), wrapped };
}
