// Run a command as PID 1 of a fresh PID namespace (`unshare --pid --fork
// --mount-proc --kill-child`, root only), the way a container runtime starts
// its entrypoint. Signals go to the namespace's init by its host pid, found
// as the unshare process's only child; nothing else is ever signalled.
import { spawn, spawnSync } from 'node:child_process';
import { childrenOf, eachLine, sleep, waitFor, within } from './helpers.js';

const UNSHARE = ['--pid', '--fork', '--mount-proc', '--kill-child'];

/** Null when PID namespaces can be made here; otherwise why not (the test skips with it). */
export function namespaceUnavailable() {
  if (process.platform !== 'linux') return 'PID namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'unshare --pid needs root';
  const r = spawnSync('unshare', [...UNSHARE, 'true'], { encoding: 'utf8', timeout: 10000 });
  if (r.error) return `unshare is not available (${r.error.code ?? r.error.message}); install util-linux`;
  if (r.status !== 0) return `unshare --pid is not permitted here: ${r.stderr.trim()}`;
  return null;
}

const running = new Set();
process.on('exit', () => {
  for (const ns of running) ns.killAll();
});

export class Namespace {
  constructor(argv, { env = {}, cwd } = {}) {
    this.lines = [];
    this.listeners = new Set();
    this.proc = spawn('unshare', [...UNSHARE, ...argv], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    for (const stream of [this.proc.stdout, this.proc.stderr]) {
      eachLine(stream, (line) => {
        this.lines.push(line);
        for (const l of this.listeners) l(line);
      });
    }
    running.add(this);
  }

  get output() {
    return this.lines.join('\n');
  }

  waitForLine(re, ms = 15000) {
    return waitFor(() => this.lines.find((l) => re.test(l)), ms, `a line matching ${re}; output:\n${this.output}`);
  }

  /** Host pid of the namespace's PID 1 (the command itself). */
  async initPid() {
    if (this.init) return this.init;
    const pid = this.proc.pid;
    this.init = await waitFor(() => {
      const [child] = childrenOf(pid);
      return child > 1 ? child : null;
    }, 5000, 'the namespace init to exist');
    return this.init;
  }

  async signal(sig) {
    const pid = await this.initPid();
    if (!(pid > 1)) throw new Error(`refusing to signal pid ${pid}`);
    process.kill(pid, sig);
  }

  waitForExit(ms = 20000) {
    return within(this.exited, ms, `the namespace to exit; output:\n${this.output}`);
  }

  /** SIGKILL to a namespace's init takes every process in it down. */
  killAll() {
    for (const pid of [this.init, this.proc.pid]) {
      if (!(pid > 1)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }

  async cleanup() {
    this.killAll();
    await Promise.race([this.exited, sleep(2000)]);
    running.delete(this);
  }
}

export function startNamespace(t, argv, opts) {
  const ns = new Namespace(argv, opts);
  t.after(() => ns.cleanup());
  return ns;
}
