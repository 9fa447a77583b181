#!/usr/bin/env node
// Where the time goes between kill -9 of a serving worker and the first
// answer from its promoted spare: one cluster alone (bench/heavy-boot.cjs,
// 2 workers, --spares 1), the primary's JSON log timestamps against the
// moment of the kill, 5 kills. Run: node bench/failover-breakdown.js
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const KILLS = 5;

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** The pid that answered a fresh connection, or null. */
const answeredBy = (port) =>
  new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(Number(body)));
    });
    req.on('error', () => resolve(null));
  });

const port = await freePort();
const home = mkdtempSync(path.join(os.tmpdir(), 'corral-breakdown-'));
const args = [path.join(ROOT, 'dist/cli/main.js'), path.join(ROOT, 'bench/heavy-boot.cjs'), '-w', '2', '--spares', '1', '--port', String(port), '--home', home, '--log-format', 'json', '--name', 'breakdown'];
const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
const log = [];
for (const stream of [child.stdout, child.stderr]) {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop();
    for (const line of parts) if (line.startsWith('{')) log.push(JSON.parse(line));
  });
}

async function until(predicate, ms = 60_000) {
  for (const end = Date.now() + ms; !predicate(); ) {
    if (Date.now() > end) throw new Error(`timed out; last lines: ${JSON.stringify(log.slice(-5))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Milliseconds from `t0` to the first log line after it matching `re`. */
const logged = (t0, re) => {
  const line = log.find((l) => new Date(l.time).getTime() >= t0 - 5 && re.test(l.msg));
  return line ? new Date(line.time).getTime() - t0 : null;
};

await until(() => log.some((l) => /booted in/.test(l.msg)));
await new Promise((r) => setTimeout(r, 1000));
const serving = [...new Set(log.filter((l) => /ready in/.test(l.msg)).map((l) => Number(/pid (\d+)/.exec(l.msg)[1])))];
for (let round = 0; round < KILLS; round++) {
  const before = new Set(serving);
  const victim = serving.shift();
  const t0 = Date.now();
  const p0 = performance.now();
  process.kill(victim, 'SIGKILL');
  let first = null;
  const probe = async () => {
    while (first === null && performance.now() - p0 < 10_000) {
      const pid = await answeredBy(port);
      if (pid && !before.has(pid) && first === null) first = { ms: performance.now() - p0, pid };
    }
  };
  await Promise.all([probe(), probe(), probe(), probe()]);
  serving.push(first.pid);
  const exit = logged(t0, new RegExp(`pid ${victim}\\) was killed`));
  console.log(`kill ${round + 1}: first answer from the spare (pid ${first.pid}) after ${first.ms.toFixed(1)} ms; the primary saw the exit at ${exit} ms, promoted at ${logged(t0, /promoted to worker/)} ms, ready at ${logged(t0, /after its promotion/)} ms`);
  await until(() => log.filter((l) => /booted in/.test(l.msg)).length >= round + 2, 30_000);
  await new Promise((r) => setTimeout(r, 500));
}
child.kill('SIGTERM');
process.exit(0);
