// Shared helpers for integration tests: start corral as a user would, read
// what it prints, send real HTTP requests, and kill every process by PID
// even when a test fails.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');
export const FIXTURES = path.join(ROOT, 'test/fixtures');

const started = new Set();
const temps = new Set();
process.on('exit', () => {
  for (const c of started) c.killAll();
  for (const dir of temps) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch {}
  }
});

/**
 * For tests of what a reload does to traffic, not of the canary's window:
 * the default 2 s window only makes them slower.
 */
export const QUICK_CANARY = ['--reload-verify', '500'];

/** A fresh directory (mode 0700), removed when the test file's process exits. */
export function tempHome() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'corral-test-'));
  temps.add(dir);
  return dir;
}

/** Poll `fn` until it returns a truthy value or `ms` passes. */
export async function waitFor(fn, ms, what = 'condition') {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(25);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Run a command to completion, killed by PID if it outlives `timeout`. */
export function runProcess(cmd, args, { timeout = 20000, env = {}, cwd = ROOT } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(cmd)} ${args.join(' ')} did not finish within ${timeout} ms\n${stdout}\n${stderr}`));
    }, timeout);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Run a corral CLI command to completion (status, reload, ...). */
export function runCli(args, { home, timeout = 20000, env = {}, cwd = ROOT } = {}) {
  return runProcess(process.execPath, [CLI, ...args], { timeout, cwd, env: { ...env, ...(home ? { CORRAL_HOME: home } : {}) } });
}

/** A running `corral <script>` primary. */
export class Corral {
  /** `cli`: another copy of corral's command (an installed package's), run with this node. */
  constructor(args, { home = tempHome(), env = {}, cwd = ROOT, cli = CLI } = {}) {
    this.home = home;
    this.ownHome = true;
    this.lines = [];
    this.workerPids = new Set();
    this.listeners = new Set();
    this.proc = spawn(process.execPath, [cli, ...args], {
      cwd,
      env: { ...process.env, CORRAL_HOME: home, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.pid = this.proc.pid;
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => resolve({ code, signal }));
    });
    for (const stream of [this.proc.stdout, this.proc.stderr]) eachLine(stream, (line) => this.#line(line));
    started.add(this);
  }

  #line(line) {
    this.lines.push(line);
    for (const m of line.matchAll(/\(pid (\d+)\)|^\[\S+ \d+ (\d+)\]/g)) this.workerPids.add(Number(m[1] ?? m[2]));
    for (const l of this.listeners) l(line);
  }

  get output() {
    return this.lines.join('\n');
  }

  /** Resolve with the first line (seen or future) matching `re`. */
  waitForLine(re, ms = 10000) {
    const hit = this.lines.find((l) => re.test(l));
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`no line matching ${re} within ${ms} ms; output:\n${this.output}`));
      }, ms);
      const check = (line) => {
        if (!re.test(line)) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(line);
      };
      this.listeners.add(check);
    });
  }

  /** Wait until `n` workers have printed their port; returns the port. */
  async ready(n, ms = 15000) {
    await waitFor(() => this.lines.filter((l) => /ready in \d+ ms/.test(l)).length >= n, ms, `${n} workers ready`);
    const line = await this.waitForLine(/listening on (?:http:\/\/127\.0\.0\.1:)?(\d+)/, ms);
    this.port = Number(/(\d+)\s*$/.exec(line)[1]);
    return this.port;
  }

  async status() {
    const r = await runCli(['status', '--json', '--home', this.home], { home: this.home });
    if (r.code !== 0) throw new Error(`status failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  async waitForExit(ms = 15000) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`corral (pid ${this.pid}) did not exit within ${ms} ms; output:\n${this.output}`)), ms);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  signal(sig) {
    assert.ok(this.pid > 0, `corral has no pid to signal (${this.pid})`);
    process.kill(this.pid, sig);
  }

  /** SIGKILL corral and its workers; returns the pids signalled. */
  killAll() {
    // Children not named in the log yet (a canary still booting) are found by
    // their parent pid: left alive, they would write their compile cache into
    // the home while it is being removed.
    const pids = [...new Set([...childrenOf(this.pid), this.pid, ...this.workerPids])].filter((pid) => pid > 0);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    return pids;
  }

  async cleanup() {
    const killed = this.killAll();
    await Promise.race([this.exited, sleep(2000)]);
    await waitFor(() => killed.every((pid) => !alive(pid)), 2000, 'the killed workers to be gone').catch(() => {});
    started.delete(this);
    if (this.ownHome) rmSync(this.home, { recursive: true, force: true, maxRetries: 5 });
  }
}

/** The pids whose parent is `ppid` (forked by its main thread, as node forks), from /proc; empty once it is gone. */
export function childrenOf(ppid) {
  try {
    return readFileSync(`/proc/${ppid}/task/${ppid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Call `onLine` with each whole line `stream` yields. */
export function eachLine(stream, onLine) {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop();
    for (const line of parts) onLine(line);
  });
}

export function startCorral(t, args, opts) {
  const c = new Corral(args, opts);
  t.after(() => c.cleanup());
  return c;
}

/** SIGSTOP `pid` for the rest of test `t`: it is resumed (SIGCONT) when the test ends, pass or fail. */
export function freeze(t, pid) {
  assert.ok(Number.isInteger(pid) && pid > 0, `freeze(${pid}): not a process id`);
  process.kill(pid, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {}
  });
}

export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The test certificate's authority, for HTTPS and HTTP/2 clients. */
export const TLS_CA = () => readFileSync(path.join(FIXTURES, 'tls/cert.pem'));

/** One HTTP(S) GET; resolves with { status, body, headers } or rejects with the socket error. */
export function get(port, urlPath = '/', { agent, timeout = 10000, tls = false } = {}) {
  return new Promise((resolve, reject) => {
    const mod = tls ? https : http;
    const options = { host: '127.0.0.1', port, path: urlPath, agent: agent ?? false, ...(tls ? { ca: TLS_CA(), servername: 'localhost' } : {}) };
    const req = mod.get(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(timeout, () => req.destroy(new Error(`request to ${urlPath} timed out`)));
    req.on('error', reject);
  });
}

/**
 * Steady load from `concurrency` loops until stop() is called (and at most
 * `maxMs`). Every failure (reset, refused, non-2xx) is recorded.
 */
export function load(port, { concurrency = 8, keepAlive = true, path: urlPath = '/', maxMs = 60000, tls = false } = {}) {
  const agent = new (tls ? https : http).Agent({ keepAlive, maxSockets: concurrency, ...(tls ? { ca: TLS_CA(), servername: 'localhost' } : {}) });
  const stats = { ok: 0, failed: 0, errors: [], pids: new Set() };
  let running = true;
  const deadline = Date.now() + maxMs;
  const loop = async () => {
    while (running && Date.now() < deadline) {
      try {
        const r = await get(port, urlPath, { agent: keepAlive ? agent : false, tls });
        if (r.status >= 200 && r.status < 300) {
          stats.ok += 1;
          stats.pids.add(r.body.trim());
        } else {
          stats.failed += 1;
          stats.errors.push(`HTTP ${r.status}`);
        }
      } catch (err) {
        stats.failed += 1;
        stats.errors.push(err.code ?? err.message);
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return stats;
    },
  };
}

/**
 * A release of the fixture app on disk (dir/server.cjs): `extra` runs first,
 * then the app, reporting `version` on /info. Rewrite it to "deploy".
 */
export function writeRelease(dir, version, extra = '') {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'server.cjs');
  writeFileSync(file, `${extra}\nprocess.env.FIXTURE_VERSION = ${JSON.stringify(version)};\nrequire(${JSON.stringify(path.join(FIXTURES, 'app.cjs'))});\n`);
  return file;
}

/** A port that was free a moment ago, for tests that need a fixed one (all workers may die at once). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Reject if `promise` has not settled within `ms`: no test waits unbounded. */
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
