import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

/**
 * The variables of env files in Node's own `.env` syntax (util.parseEnv,
 * the parser behind `node --env-file`), later files winning. As with
 * `node --env-file`, a variable already set in the environment corral runs
 * in keeps its value. Read at every spawn, so an edited file applies to the
 * workers of the next reload; a file that cannot be read is reported and
 * skipped.
 */
export function envFromFiles(files: readonly string[], inherited: NodeJS.ProcessEnv, onError: (file: string, err: Error) => void): Record<string, string> {
  const out: Record<string, string> = {};
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      onError(file, err as Error);
      continue;
    }
    Object.assign(out, parseEnv(text));
  }
  for (const key of Object.keys(out)) if (inherited[key] !== undefined) delete out[key];
  return out;
}
