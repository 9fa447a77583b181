#!/usr/bin/env node
// Where the time goes between kill -9 of a serving worker and the first
// answer from its promoted spare: one cluster alone (bench/heavy-boot.cjs,
// 2 workers, --spares 1), JSON log timestamps of the primary against the
// kill, 5 kills. Run: node bench/failover-breakdown.js
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
import { spawn } from 'node:child_process';
import http from 'node:http';
const port = 41000 + Math.floor(Math.random() * 1000);
const home = mkdtempSync(path.join(os.tmpdir(), 'corral-breakdown-'));
const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), path.join(ROOT, 'bench/heavy-boot.cjs'), '-w', '2', '--spares', '1', '--port', String(port), '--home', home, '--log-format', 'json', '--name', 'probe'], { stdio: ['ignore', 'pipe', 'pipe'] });
const lines = [];
for (const s of [child.stdout, child.stderr]) { s.setEncoding('utf8'); let p = ''; s.on('data', (d) => { p += d; const parts = p.split('\n'); p = parts.pop(); for (const l of parts) { try { lines.push({ at: Date.now(), ...JSON.parse(l) }); } catch {} } }); }
const wait = async (pred, ms = 60000) => { const u = Date.now() + ms; while (!pred()) { if (Date.now() > u) throw new Error('timeout ' + JSON.stringify(lines.slice(-5))); await new Promise(r => setTimeout(r, 20)); } };
const get = () => new Promise((res) => { const r = http.get({ host: '127.0.0.1', port, agent: false }, (s) => { let b = ''; s.on('data', d => b += d); s.on('end', () => res(Number(b))); }); r.on('error', () => res(null)); });
await wait(() => lines.some((l) => /booted in/.test(l.msg)));
await new Promise(r => setTimeout(r, 1000));
const pids = [...new Set(lines.filter(l => /ready in/.test(l.msg)).map(l => Number(/pid (\d+)/.exec(l.msg)[1])))];
for (let round = 0; round < 5; round++) {
  const serving = new Set(pids);
  const victim = pids[0];
  const t0 = Date.now(); const p0 = performance.now();
  process.kill(victim, 'SIGKILL');
  let first = null;
  const loop = async () => { while (first === null && performance.now() - p0 < 10000) { const pid = await get(); if (pid && !serving.has(pid) && first === null) first = { ms: performance.now() - p0, pid }; } };
  await Promise.all([loop(), loop(), loop(), loop()]);
  const t = (re) => { const l = lines.find((x) => x.at >= t0 - 5 && re.test(x.msg)); return l ? new Date(l.time).getTime() - t0 : null; };
  console.log(`round ${round}: first answer ${first.ms.toFixed(1)} ms from ${first.pid}; exit seen ${t(new RegExp(`pid ${victim}\\) was killed`))} ms, promoted ${t(/promoted to worker/)} ms, ready ${t(/after its promotion/)} ms`);
  pids.splice(0, 1); pids.push(first.pid);
  await wait(() => lines.filter((l) => /booted in/.test(l.msg)).length >= round + 2, 30000);
  await new Promise(r => setTimeout(r, 500));
}
child.kill("SIGTERM");
process.exit(0);
