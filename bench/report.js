#!/usr/bin/env node
// Render a bench/results/*.json file as the Markdown tables the README shows.
// Usage: node bench/report.js bench/results/<file>.json
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node bench/report.js bench/results/<file>.json');
  process.exit(2);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
const f = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '-');
const lines = [
  `Measured ${r.date.slice(0, 10)} on a ${r.machine.cpus}-core machine (${r.machine.model}, Node ${r.machine.node}, ` +
    `${r.settings.connections} connections, load generator on the same cores, medians of ${r.settings.rounds} interleaved rounds of ${r.settings.durationMs / 1000} s):`,
  '',
];
for (const workload of ['hello', 'cpu 1ms']) {
  for (const connection of ['keep-alive', 'new per request']) {
    lines.push(`**${workload}, ${connection === 'keep-alive' ? 'keep-alive' : 'new connection per request'}**`, '');
    lines.push('| config | req/s | ×bare | ×cluster | p99 ms | CPU µs/req | ×bare | ×cluster | spread |', '|---|---|---|---|---|---|---|---|---|');
    for (const x of r.results.filter((x) => x.workload === workload && x.connection === connection)) {
      lines.push(`| ${x.config} | ${Math.round(x.rps)} | ${f(x.rpsVsBare)} | ${f(x.rpsVsCluster)} | ${f(x.p99ms, 1)} | ${f(x.cpuPerReqUs, 1)} | ${f(x.cpuVsBare)} | ${f(x.cpuVsCluster)} | ${f(x.spread)} |`);
    }
    lines.push('');
  }
}
const e = r.corral;
lines.push(
  `corral itself: start to all ${r.machine.workers} workers ready ${Math.round(e.startToAllReadyMs)} ms; kill -9 to replacement ready ` +
    `${Math.round(e.replaceKilledWorkerMs)} ms (median of 7); status round trip ${f(e.statusLatencyMs)} ms; primary RSS ${f(e.primaryRssMb, 1)} MB ` +
    `(hand-written node:cluster primary ${f(e.seedPrimaryRssMb, 1)} MB).`,
);
console.log(lines.join('\n'));
