#!/usr/bin/env node
// npm run bench: corral against a bare process and a hand-written node:cluster
// primary, side by side in one run, interleaved round by round so that drift
// on a shared machine hits every configuration alike. Reports medians and
// ratios; writes bench/results/<date>.json. Linux only (reads /proc).
import { spawn, execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { sendCommand } from '../dist/control/client.js';
import { failoverSection } from './failover.js';
import { usableCpus } from '../dist/index.js';
import { reusePortSupport } from '../dist/primary/balancing.js';
import { scrapeSection } from './scrape.js';
import { stickySection } from './sticky.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist/cli/main.js');
const SERVER = path.join(ROOT, 'bench/server.cjs');
const SEED = path.join(ROOT, 'bench/cluster-seed.cjs');
const RUNTIME = pathToFileURL(path.join(ROOT, 'dist/worker/runtime.js')).href;
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3000' },
    connections: { type: 'string', default: '50' },
    workers: { type: 'string' },
    configs: { type: 'string' },
    quick: { type: 'boolean' },
    // throughput: the strategy tables and corral's own timings; scrape: what /metrics costs;
    // sticky: what --sticky's routing in the primary costs, beside @socket.io/sticky's.
    sections: { type: 'string', default: 'throughput,scrape,failover,sticky' },
    'scrape-workers': { type: 'string', default: '16' },
    'scrape-interval': { type: 'string', default: '1000' },
    'scrape-window': { type: 'string', default: '15000' },
  },
});
const SECTIONS = new Set(opts.sections.split(',').map((s) => s.trim()));
const ROUNDS = Number(opts.rounds);
const DURATION = Number(opts.duration);
const CONNS = Number(opts.connections);
const WORKERS = opts.workers ? Number(opts.workers) : usableCpus();
const HOME = mkdtempSync(path.join(os.tmpdir(), 'corral-bench-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

// ---- processes -----------------------------------------------------------

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function procStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), cpu: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

function descendants(root) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = procStat(Number(d));
    if (!st) continue;
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(Number(d));
  }
  const out = [];
  const walk = (pid) => {
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

const cpuTicks = (pids) => pids.reduce((sum, pid) => sum + (procStat(pid)?.cpu ?? 0), 0);

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function waitListening(port, ms = 15000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`nothing listening on ${port} after ${ms} ms`);
}

const running = [];
process.on('exit', () => {
  for (const p of running) for (const pid of [...descendants(p.pid), p.pid]) try { process.kill(pid, 'SIGKILL'); } catch {}
  rmSync(HOME, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));

async function launch(config) {
  const port = await freePort();
  const countFile = path.join(HOME, `${config.name.replace(/[^\w.-]+/g, "-")}.counts`);
  const env = { ...process.env, PORT: String(port), BENCH_COUNT_FILE: countFile, BENCH_WORKERS: String(WORKERS), ...config.env };
  const child = spawn(process.execPath, config.args(port), { env, stdio: 'ignore' });
  running.push(child);
  await waitListening(port);
  if (config.workers > 1) {
    const until = Date.now() + 15000;
    while (descendants(child.pid).length < config.workers && Date.now() < until) await sleep(20);
  }
  await sleep(300);
  return { ...config, port, child, countFile };
}

function serverPids(inst) {
  return inst.workers === 1 ? [inst.child.pid] : descendants(inst.child.pid);
}

/** Per-process request counts, via SIGUSR2 to every server process. */
async function counts(inst) {
  const pids = serverPids(inst);
  writeFileSync(inst.countFile, '');
  for (const pid of pids) try { process.kill(pid, 'SIGUSR2'); } catch {}
  const until = Date.now() + 2000;
  let lines = [];
  while (Date.now() < until) {
    lines = readFileSync(inst.countFile, 'utf8').trim().split('\n').filter(Boolean);
    if (lines.length >= pids.length) break;
    await sleep(10);
  }
  return new Map(lines.map((l) => l.split(' ').map(Number)));
}

function runLoad(port, urlPath, mode, header) {
  return new Promise((resolve, reject) => {
    const args = [path.join(ROOT, 'bench/load.js'), String(port), urlPath, String(CONNS), String(DURATION), mode, ...(header ? [header] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load generator exited ${code}`))));
  });
}

async function measure(inst, urlPath, mode) {
  const pids = [inst.child.pid, ...descendants(inst.child.pid)];
  const before = await counts(inst);
  const cpu0 = cpuTicks(pids);
  const load = await runLoad(inst.port, urlPath, mode, inst.loadHeader);
  const cpu1 = cpuTicks(pids);
  const after = await counts(inst);
  const shares = [...after].map(([pid, n]) => n - (before.get(pid) ?? 0)).filter((n) => n > 0);
  return {
    rps: load.requests / (load.durationMs / 1000),
    p50: load.p50,
    p99: load.p99,
    errors: load.errors + load.non2xx,
    cpuPerReqUs: ((cpu1 - cpu0) / TICKS / Math.max(1, load.requests)) * 1e6,
    spread: inst.workers > 1 && shares.length === inst.workers ? Math.max(...shares) / Math.min(...shares) : inst.workers > 1 ? Infinity : 1,
  };
}

// ---- configurations --------------------------------------------------------

const corral = (strategy) => ({
  name: `corral ${strategy}`,
  workers: WORKERS,
  args: (port) => [CLI, SERVER, '-w', String(WORKERS), '--port', String(port), '--strategy', strategy, '--name', `bench-${strategy}`, '--home', HOME],
});
const ALL_CONFIGS = [
  { name: 'bare node', workers: 1, args: () => [SERVER] },
  { name: 'node:cluster rr', workers: WORKERS, args: () => [SEED] },
  { name: 'node:cluster rr + corral runtime', workers: WORKERS, args: () => [SEED], env: { BENCH_PRELOAD: RUNTIME } },
  { name: 'node:cluster none', workers: WORKERS, args: () => [SEED], env: { BENCH_SCHED: 'none' } },
  corral('rr'),
  corral('os'),
  ...(reusePortSupport() === null ? [corral('reuseport')] : []),
];
// --configs "corral os,node:cluster none" measures a subset (bare and node:cluster rr always run: they are the baselines).
const wanted = opts.configs?.split(',').map((s) => s.trim());
const CONFIGS = ALL_CONFIGS.filter((c) => !wanted || ['bare node', 'node:cluster rr'].includes(c.name) || wanted.includes(c.name));
const WORKLOADS = [
  { name: 'hello', path: '/' },
  { name: 'cpu 1ms', path: '/cpu' },
];
const MODES = ['keepalive', 'close'];

// ---- one-off measurements of corral itself -----------------------------------

/**
 * A fresh cluster each time: start it, time until every worker is ready, then
 * kill -9 one worker and time until its replacement is ready. Fresh, because a
 * slot killed twice within 30 s is restarted with back-off, by design.
 */
async function startAndReplace() {
  const port = await freePort();
  const name = `bench-fresh-${port}`;
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, SERVER, '-w', String(WORKERS), '--port', String(port), '--name', name, '--home', HOME], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let ready = 0;
  await new Promise((resolve) => {
    child.stderr.on('data', (d) => {
      ready += (String(d).match(/ready in \d+ ms/g) ?? []).length;
      if (ready >= WORKERS) resolve();
    });
  });
  const startup = performance.now() - t0;
  const socket = path.join(HOME, `${name}.sock`);
  const before = await sendCommand(socket, { cmd: 'status' });
  const victim = before.workers.find((w) => w.state === 'ready');
  const t1 = performance.now();
  process.kill(victim.pid, 'SIGKILL');
  let replace = NaN;
  for (;;) {
    const s = await sendCommand(socket, { cmd: 'status' });
    if (s.workers.some((w) => w.slot === victim.slot && w.state === 'ready' && w.pid !== victim.pid)) {
      replace = performance.now() - t1;
      break;
    }
    await sleep(2);
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return { startup, replace };
}

async function statusLatencyMs(socket) {
  const t0 = performance.now();
  await sendCommand(socket, { cmd: 'status' });
  return performance.now() - t0;
}

// ---- main --------------------------------------------------------------------

/** The medians of one configuration's samples of one workload, and its errors in total. */
function summarize(list) {
  const med = (field) => median(list.map((x) => x[field]));
  return { rps: med('rps'), p50ms: med('p50'), p99ms: med('p99'), cpuPerReqUs: med('cpuPerReqUs'), spread: med('spread'), errors: list.reduce((n, x) => n + x.errors, 0) };
}

const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
function table(header, rows) {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ')).join('\n');
}

async function main() {
  const out = {
    date: new Date().toISOString(),
    machine: { node: process.version, cpus: os.cpus().length, model: os.cpus()[0]?.model, kernel: os.release(), workers: WORKERS },
    settings: { rounds: ROUNDS, durationMs: DURATION, connections: CONNS },
  };
  console.log(`corral bench: node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), sections ${[...SECTIONS].join(', ')}`);
  if (SECTIONS.has('throughput')) Object.assign(out, await throughput());
  if (SECTIONS.has('failover')) {
    const ctx = { ROOT, CLI, HOME, running, freePort, median, table, compileCacheSupported: typeof (await import('node:module')).default.enableCompileCache === 'function' };
    out.failover = await failoverSection(ctx, { rounds: Math.max(ROUNDS, 5) });
  }
  if (SECTIONS.has('sticky')) {
    out.sticky = await stickySection({ ROOT, CLI, SERVER, HOME, WORKERS, launch, measure, summarize, descendants, fmt, table }, { rounds: ROUNDS });
  }
  if (SECTIONS.has('scrape')) {
    const ctx = { ROOT, CLI, HOME, TICKS, running, freePort, descendants, cpuTicks, sleep, median };
    out.scrape = await scrapeSection(ctx, { workers: Number(opts['scrape-workers']), rounds: ROUNDS * 2, windowMs: Number(opts['scrape-window']), intervalMs: Number(opts['scrape-interval']) });
  }
  const dir = path.join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${out.date.slice(0, 10)}-node${process.versions.node.split('.')[0]}${SECTIONS.has('throughput') ? '' : `-${[...SECTIONS].join('-')}`}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwritten: ${path.relative(ROOT, file)}`);
}

async function throughput() {
  console.log(`throughput: ${WORKERS} workers, ${CONNS} connections, ${ROUNDS} rounds x ${DURATION} ms`);
  if (reusePortSupport() !== null) console.log(`(reuseport skipped: ${reusePortSupport()})`);
  const instances = [];
  for (const c of CONFIGS) instances.push(await launch(c));
  const samples = new Map();
  for (let round = 0; round < ROUNDS; round++) {
    for (const wl of WORKLOADS) {
      for (const mode of MODES) {
        const order = instances.map((_, i) => instances[(i + round) % instances.length]);
        for (const inst of order) {
          const key = `${wl.name}|${mode}|${inst.name}`;
          const m = await measure(inst, wl.path, mode);
          if (!samples.has(key)) samples.set(key, []);
          samples.get(key).push(m);
          process.stderr.write('.');
        }
      }
    }
  }
  process.stderr.write('\n');

  const results = [];
  for (const wl of WORKLOADS) {
    for (const mode of MODES) {
      const med = (name, field) => median(samples.get(`${wl.name}|${mode}|${name}`).map((s) => s[field]));
      const bare = { rps: med('bare node', 'rps'), cpu: med('bare node', 'cpuPerReqUs') };
      const clus = { rps: med('node:cluster rr', 'rps'), cpu: med('node:cluster rr', 'cpuPerReqUs') };
      const rows = [];
      for (const inst of instances) {
        const r = {
          workload: wl.name,
          connection: mode === 'keepalive' ? 'keep-alive' : 'new per request',
          config: inst.name,
          ...summarize(samples.get(`${wl.name}|${mode}|${inst.name}`)),
        };
        r.rpsVsBare = r.rps / bare.rps;
        r.rpsVsCluster = r.rps / clus.rps;
        r.cpuVsBare = r.cpuPerReqUs / bare.cpu;
        r.cpuVsCluster = r.cpuPerReqUs / clus.cpu;
        results.push(r);
        rows.push([r.config, fmt(r.rps), fmt(r.rpsVsBare, 2), fmt(r.rpsVsCluster, 2), fmt(r.p50ms, 2), fmt(r.p99ms, 2), fmt(r.cpuPerReqUs, 1), fmt(r.cpuVsBare, 2), fmt(r.cpuVsCluster, 2), fmt(r.spread, 2), r.errors]);
      }
      console.log(`\n${wl.name}, ${mode === 'keepalive' ? 'keep-alive' : 'new connection per request'}`);
      console.log(table(['config', 'req/s', 'x bare', 'x cluster', 'p50 ms', 'p99 ms', 'CPU us/req', 'x bare', 'x cluster', 'spread', 'errors'], rows));
    }
  }

  const os_ = instances.find((i) => i.name === 'corral os');
  const socket = path.join(HOME, 'bench-os.sock');
  const startup = [];
  const replace = [];
  for (let i = 0; i < 7; i++) {
    const r = await startAndReplace();
    startup.push(r.startup);
    replace.push(r.replace);
  }
  const statusLat = [];
  for (let i = 0; i < 20; i++) statusLat.push(await statusLatencyMs(socket));
  const seed = instances.find((i) => i.name === 'node:cluster rr');
  const extras = {
    startToAllReadyMs: median(startup),
    replaceKilledWorkerMs: median(replace),
    statusLatencyMs: median(statusLat),
    primaryRssMb: rssKb(os_.child.pid) / 1024,
    seedPrimaryRssMb: rssKb(seed.child.pid) / 1024,
  };
  const runtimeCost = {};
  for (const wl of WORKLOADS) {
    for (const mode of MODES) {
      const get = (name) => results.find((r) => r.workload === wl.name && r.connection === (mode === 'keepalive' ? 'keep-alive' : 'new per request') && r.config === name);
      const plain = get('node:cluster rr');
      const pre = get('node:cluster rr + corral runtime');
      runtimeCost[`${wl.name}, ${mode}`] = { rps: pre.rps / plain.rps, cpuPerReq: pre.cpuPerReqUs / plain.cpuPerReqUs };
    }
  }
  console.log('\ncorral (strategy os):');
  console.log(`  start to all ${WORKERS} workers ready   ${fmt(extras.startToAllReadyMs)} ms (median of 7)`);
  console.log(`  kill -9 to replacement ready      ${fmt(extras.replaceKilledWorkerMs)} ms (median of 7; target < 100 ms)`);
  console.log(`  status round trip on the socket   ${fmt(extras.statusLatencyMs, 2)} ms (median of 20)`);
  console.log(`  primary RSS                       ${fmt(extras.primaryRssMb, 1)} MB (hand-written node:cluster primary: ${fmt(extras.seedPrimaryRssMb, 1)} MB)`);
  console.log('\nworker runtime (heartbeat + request counting) vs the same node:cluster without it:');
  for (const [k, v] of Object.entries(runtimeCost)) console.log(`  ${k.padEnd(20)} req/s x${fmt(v.rps, 3)}   CPU/req x${fmt(v.cpuPerReq, 3)}`);

  // Out of the way of the next section.
  for (const inst of instances) for (const pid of [...descendants(inst.child.pid), inst.child.pid]) try { process.kill(pid, 'SIGKILL'); } catch {}
  return { results, corral: extras, runtimeCost };
}

main()
  .then(() => process.exit(0))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
