// npm run bench -- --sections failover: what warm spares and the shared
// compile cache buy an app that takes ~2 s to start (bench/heavy-boot.cjs).
// Four clusters side by side (spares 0/1 x compile cache on/off), measured
// round by round, interleaved: kill -9 of a serving worker -> the first
// answer from a process that was not serving before (fresh connections,
// 4 at a time, from the moment of the kill); and the duration of a rolling
// reload of the 2 workers.
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { sendCommand } from '../dist/control/client.js';

const CONFIGS = [
  { name: 'cold', args: ['--no-compile-cache'] },
  { name: 'compile cache', args: [] },
  { name: 'spare', args: ['--spares', '1', '--no-compile-cache'] },
  { name: 'spare + compile cache', args: ['--spares', '1'] },
];

function get(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(Number(body)));
    });
    req.setTimeout(5000, () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

async function status(c) {
  return sendCommand(c.socket, { cmd: 'status' }, 5000);
}

/** Full strength: every slot ready, the spare (if any) booted, nothing draining. */
async function settled(c, ms = 60_000) {
  const until = Date.now() + ms;
  for (;;) {
    const s = await status(c);
    const ready = s.workers.filter((w) => w.state === 'ready').length;
    const spares = s.workers.filter((w) => w.state === 'spare').length;
    if (ready === 2 && spares === s.spares && s.workers.length === 2 + s.spares && s.state === 'running') return s;
    if (Date.now() > until) throw new Error(`${c.name}: not settled: ${JSON.stringify(s.workers.map((w) => [w.slot, w.state]))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function start(ctx, config) {
  const port = await ctx.freePort();
  const name = `failover-${config.name.replace(/\W+/g, '-')}`;
  const child = spawn(process.execPath, [ctx.CLI, path.join(ctx.ROOT, 'bench/heavy-boot.cjs'), '-w', '2', '--port', String(port), '--name', name, '--home', ctx.HOME, '--boot-timeout', '60000', ...config.args], { stdio: ['ignore', 'ignore', 'ignore'] });
  ctx.running.push(child);
  const c = { ...config, port, child, socket: path.join(ctx.HOME, `${name}.sock`) };
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      await settled(c, 60_000);
      return c;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function killToFirstAnswer(c) {
  const s = await settled(c);
  const serving = new Set(s.workers.filter((w) => w.state === 'ready').map((w) => w.pid));
  const [victim] = serving;
  const t0 = performance.now();
  process.kill(victim, 'SIGKILL');
  let found = null;
  const loop = async () => {
    while (found === null && performance.now() - t0 < 30_000) {
      const pid = await get(c.port);
      if (pid !== null && !serving.has(pid) && found === null) found = performance.now() - t0;
    }
  };
  await Promise.all([loop(), loop(), loop(), loop()]);
  return found;
}

async function reloadMs(c) {
  await settled(c);
  const t0 = performance.now();
  await sendCommand(c.socket, { cmd: 'reload' }, 120_000);
  return performance.now() - t0;
}

export async function failoverSection(ctx, { rounds }) {
  console.log(`failover: an app that needs ~2 s to start, 2 workers, ${rounds} rounds, configs interleaved`);
  const clusters = [];
  for (const config of CONFIGS) clusters.push(await start(ctx, config));
  const results = Object.fromEntries(CONFIGS.map((c) => [c.name, { killToFirstAnswerMs: [], reloadMs: [] }]));
  for (let round = 0; round < rounds; round++) {
    const order = clusters.map((_, i) => clusters[(i + round) % clusters.length]);
    for (const c of order) results[c.name].killToFirstAnswerMs.push(await killToFirstAnswer(c));
    for (const c of order) results[c.name].reloadMs.push(await reloadMs(c));
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  for (const c of clusters) c.child.kill('SIGTERM');
  const rows = CONFIGS.map((c) => {
    const r = results[c.name];
    return [c.name, ctx.median(r.killToFirstAnswerMs).toFixed(1), Math.max(...r.killToFirstAnswerMs).toFixed(1), ctx.median(r.reloadMs).toFixed(0)];
  });
  console.log(ctx.table(['config', 'kill -9 -> first new answer, median ms', 'max ms', 'rolling reload, median ms'], rows));
  const cacheNote = ctx.compileCacheSupported ? '' : ` (Node ${process.versions.node} has no compile cache: the cache configs run without one)`;
  if (cacheNote) console.log(cacheNote.trim());
  return { rounds, results };
}
