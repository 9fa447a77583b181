// npm run bench -- --sections sticky: what --sticky costs. The primary
// accepts every connection and hands it to a worker over IPC; with header:
// and cookie: it first reads the request head. Side by side, interleaved
// round by round: corral's default (workers accept themselves), corral rr
// (the primary accepts and hands over, by turn), corral --sticky ip /
// header:x-client / cookie:sid, and @socket.io/sticky's hand-written primary.
// Every load loop is one client (its own X-Client header and sid cookie).
import path from 'node:path';

const HEADER = 'X-Client: c{i}\r\nCookie: theme=dark; sid=c{i}';
const WORKLOADS = [
  { name: 'hello, keep-alive', path: '/', mode: 'keepalive' },
  { name: 'hello, new connection per request', path: '/', mode: 'close' },
];

function configs(ctx) {
  const corral = (name, extra) => ({
    name,
    workers: ctx.WORKERS,
    loadHeader: HEADER,
    args: (port) => [ctx.CLI, ctx.SERVER, '-w', String(ctx.WORKERS), '--port', String(port), '--name', `bench-${name.replace(/\W+/g, '-')}`, '--home', ctx.HOME, ...extra],
  });
  return [
    corral('corral os (default)', ['--strategy', 'os']),
    corral('corral rr', ['--strategy', 'rr']),
    corral('corral --sticky ip', ['--sticky', 'ip']),
    corral('corral --sticky header:x-client', ['--sticky', 'header:x-client']),
    corral('corral --sticky cookie:sid', ['--sticky', 'cookie:sid']),
    { name: '@socket.io/sticky', workers: ctx.WORKERS, loadHeader: HEADER, args: () => [path.join(ctx.ROOT, 'bench/sio-sticky-seed.cjs')] },
  ];
}

export async function stickySection(ctx, { rounds }) {
  console.log(`\nsticky: ${ctx.WORKERS} workers, every load connection a client of its own; ${rounds} rounds`);
  const instances = [];
  for (const c of configs(ctx)) instances.push(await ctx.launch(c));
  const samples = new Map();
  for (let round = 0; round < rounds; round++) {
    for (const wl of WORKLOADS) {
      const order = instances.map((_, i) => instances[(i + round) % instances.length]);
      for (const inst of order) {
        const key = `${wl.name}|${inst.name}`;
        if (!samples.has(key)) samples.set(key, []);
        samples.get(key).push(await ctx.measure(inst, wl.path, wl.mode));
        process.stderr.write('.');
      }
    }
  }
  process.stderr.write('\n');
  const results = [];
  for (const wl of WORKLOADS) {
    const base = ctx.summarize(samples.get(`${wl.name}|corral os (default)`));
    const rows = [];
    for (const inst of instances) {
      const r = { workload: wl.name, config: inst.name, ...ctx.summarize(samples.get(`${wl.name}|${inst.name}`)) };
      r.rpsVsDefault = r.rps / base.rps;
      r.cpuVsDefault = r.cpuPerReqUs / base.cpuPerReqUs;
      results.push(r);
      rows.push([r.config, ctx.fmt(r.rps), ctx.fmt(r.rpsVsDefault, 2), ctx.fmt(r.p50ms, 2), ctx.fmt(r.p99ms, 2), ctx.fmt(r.cpuPerReqUs, 1), ctx.fmt(r.cpuVsDefault, 2), ctx.fmt(r.spread, 2), r.errors]);
    }
    console.log(`\n${wl.name}`);
    console.log(ctx.table(['config', 'req/s', 'x default', 'p50 ms', 'p99 ms', 'CPU us/req', 'x default', 'spread', 'errors'], rows));
  }
  for (const inst of instances) for (const pid of [...ctx.descendants(inst.child.pid), inst.child.pid]) try { process.kill(pid, 'SIGKILL'); } catch {}
  return { results };
}
