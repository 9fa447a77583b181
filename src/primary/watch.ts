/**
 * `--watch`: a rolling reload when files change. The reload is the
 * supervisor's own, canary included, so a save that breaks the app is a
 * refused reload: the old workers keep serving.
 *
 * The watcher is chokidar (loaded only with --watch): Node's recursive
 * fs.watch is not reliable on every Node version corral supports (on Linux,
 * Node 20 emulates it in JavaScript and adds an inotify watch for every
 * directory before filtering, node_modules included), and editors save by
 * writing a temporary file and renaming it, which chokidar reports as the
 * change it is. It watches directory by directory and never descends into
 * what is ignored.
 */
import path from 'node:path';

/** Directories never watched: dependencies, VCS data, and the usual build output (unless the script runs from it). */
export const IGNORED_DIRS = ['node_modules', '.git', '.hg', '.svn', 'dist', 'build', 'out', 'coverage', '.next', '.nuxt', '.svelte-kit', '.turbo', '.cache', '.parcel-cache', '.vite', 'tmp'];
/** Files no save should reload for: logs, editor swap and backup files. */
const IGNORED_FILES = [/\.log$/, /~$/, /\.sw[a-p]x?$/, /^\.#/, /^#.*#$/, /^4913$/, /^\.DS_Store$/];

/** Changes closer together than this are one save (a formatter writing several files, an editor's temp-and-rename). */
export const WATCH_DEBOUNCE_MS = 300;

/** A name or glob (`*.test.js`, `docs/**`) as a test on a path relative to a watched root. */
export function globTest(pattern: string): (relative: string) => boolean {
  const p = pattern.replace(/\/+$/, '');
  if (!/[*?]/.test(p) && !p.includes('/')) return (rel) => rel.split(/[\\/]/).includes(p);
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c === '*' && p[i + 1] === '*') {
      re += '.*';
      i += 1;
      if (p[i + 1] === '/') i += 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // Without a slash a glob matches a name at any depth (as in .gitignore); a directory matched hides what is in it.
  const anchored = new RegExp(p.includes('/') ? `^${re}(/.*)?$` : `(^|/)${re}(/.*)?$`);
  return (rel) => anchored.test(rel.split(path.sep).join('/'));
}

/**
 * What not to watch under `roots`: the default directories (but not one the
 * script itself runs from: `dist/server.js` rebuilt by `tsc --watch` must
 * reload), swap and log files, and the user's own patterns.
 */
export function ignoreRule(roots: string[], script: string, extra: string[]): (file: string) => boolean {
  const scriptParts = new Set(script.split(path.sep));
  const dirs = new Set(IGNORED_DIRS.filter((d) => !scriptParts.has(d)));
  const user = extra.map(globTest);
  return (file) => {
    const root = roots.find((r) => file === r || file.startsWith(r + path.sep));
    if (root === undefined) return false;
    const rel = path.relative(root, file);
    if (rel === '') return false;
    const parts = rel.split(path.sep);
    if (parts.some((p) => dirs.has(p))) return true;
    if (IGNORED_FILES.some((re) => re.test(parts[parts.length - 1] as string))) return true;
    return user.some((test) => test(rel));
  };
}

export interface WatchOptions {
  paths: string[];
  ignore: string[];
  script: string;
}

/** A running watcher; `close()` stops it. */
export interface Watching {
  close(): Promise<void>;
}

/**
 * Watch `paths` and call `onChange` with the files that changed, once per
 * save (debounced). `onError` hears what the watcher could not do (too many
 * files for the inotify limit, a directory that vanished).
 */
export async function watchFiles(options: WatchOptions, onChange: (files: string[]) => void, onError: (message: string) => void): Promise<Watching> {
  const { watch } = await import('chokidar');
  const ignored = ignoreRule(options.paths, options.script, options.ignore);
  const watcher = watch(options.paths, { ignored: (file: string) => ignored(file), ignoreInitial: true, persistent: true });
  let changed = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  watcher.on('all', (_event: string, file: string) => {
    changed.add(file);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const files = [...changed];
      changed = new Set();
      onChange(files);
    }, WATCH_DEBOUNCE_MS);
  });
  watcher.on('error', (err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    const hint = e.code === 'ENOSPC' ? ' (the inotify watch limit: raise fs.inotify.max_user_watches, or watch fewer paths with --watch=src)' : '';
    onError(`${e.message ?? String(err)}${hint}`);
  });
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return {
    async close() {
      clearTimeout(timer);
      await watcher.close();
    },
  };
}
