#!/usr/bin/env node
// How long after it starts listening does a broken release die? The default
// of --reload-verify (the canary's window) is chosen from this. Each case is
// a plain node server (no corral) that listens and then fails the way real
// apps do; the time from the 'listening' line to the process's exit is
// measured over several runs. Also measured: how long after 'listening' a
// corral worker's first heartbeat arrives (a canary must send one).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.argv[2] ?? 7);

const listen = `const s=require('node:http').createServer((q,r)=>r.end('x'));s.listen(0,'127.0.0.1',()=>{console.log('listening');after();});`;
const CASES = {
  'init promise rejects (missing config) after listen': `function after(){Promise.resolve().then(()=>{throw new Error('CONFIG_URL is not set')});}`,
  'database on a closed port (ECONNREFUSED), unhandled': `function after(){const c=require('node:net').connect(1,'127.0.0.1');c.on('error',e=>{throw e});}`,
  'unknown host name (ENOTFOUND), unhandled': `function after(){require('node:dns').lookup('db.invalid',(e)=>{if(e)throw e;});}`,
  'cache warm-up fails after 500 ms': `function after(){setTimeout(()=>{throw new Error('warm-up failed')},500);}`,
  "the issue's example: exits 800 ms after listening": `function after(){setTimeout(()=>process.exit(1),800);}`,
};

function once(code) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', `${code}\n${listen}`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let listenedAt = 0;
    child.stdout.on('data', (d) => {
      if (!listenedAt && String(d).includes('listening')) listenedAt = performance.now();
    });
    child.on('exit', () => resolve(listenedAt ? performance.now() - listenedAt : NaN));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`node ${process.version}, ${RUNS} runs per case: time from 'listening' to exit`);
for (const [name, code] of Object.entries(CASES)) {
  const times = [];
  for (let i = 0; i < RUNS; i++) times.push(await once(code));
  console.log(`  ${name}: median ${median(times).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms`);
}

// First heartbeat after ready, as the primary sees it: the worker runtime beats every 1000 ms.
const { start } = await import(path.join(ROOT, 'dist/index.js'));
const gaps = [];
const cluster = await start({ script: path.join(ROOT, 'bench/server.cjs'), workers: 1, logFormat: 'json', control: false, env: { PORT: '0' } });
const readyAt = Date.now();
while (cluster.status().workers[0].lastHeartbeatMsAgo === null || Date.now() - cluster.status().workers[0].lastHeartbeatMsAgo < readyAt) await new Promise((r) => setTimeout(r, 5));
gaps.push(Date.now() - readyAt);
await cluster.stop();
console.log(`  first heartbeat after ready: ${gaps[0]} ms (heartbeat interval 1000 ms)`);
process.exit(0);
