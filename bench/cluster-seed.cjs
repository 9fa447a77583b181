// The hand-written node:cluster primary users write today (round-robin, the
// default on Linux). BENCH_PRELOAD adds corral's worker runtime to the
// workers, to measure what the heartbeat and request counting cost.
const cluster = require('node:cluster');
const path = require('node:path');

const workers = Number(process.env.BENCH_WORKERS ?? 2);
if (process.env.BENCH_SCHED === 'none') cluster.schedulingPolicy = cluster.SCHED_NONE;
cluster.setupPrimary({
  exec: path.join(__dirname, 'server.cjs'),
  execArgv: process.env.BENCH_PRELOAD ? ['--import', process.env.BENCH_PRELOAD] : [],
});
for (let i = 0; i < workers; i++) cluster.fork();
cluster.on('exit', (w, code, signal) => {
  if (!stopping) cluster.fork();
});
let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
  for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
  setTimeout(() => process.exit(0), 200);
});
