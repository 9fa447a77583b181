// npm run bench -- --sections scrape: what /metrics costs. Two identical
// corral clusters of SCRAPE_WORKERS workers running an app instrumented with
// prom-client, one scraped every --scrape-interval ms and one not, measured
// over the same windows, interleaved; CPU is the whole tree's (primary and
// workers) from /proc. Also the latency of one scrape.
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';

function get(url) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http.get(url, { agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (d) => (bytes += d.length));
      res.on('end', () => resolve({ status: res.statusCode, bytes, ms: performance.now() - t0 }));
    }).on('error', reject);
  });
}

async function startCluster(ctx, name, workers) {
  const port = await ctx.freePort();
  const child = spawn(process.execPath, [ctx.CLI, path.join(ctx.ROOT, 'bench/metrics-server.cjs'), '-w', String(workers), '--port', String(port), '--name', name, '--home', ctx.HOME, '--admin', '0', '--force'], { stdio: ['ignore', 'ignore', 'pipe'] });
  ctx.running.push(child);
  let text = '';
  const admin = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not ready in 60 s:\n${text}`)), 60_000);
    child.stderr.on('data', (d) => {
      text += d;
      const url = /admin on (http:\/\/\S+)/.exec(text)?.[1];
      if (url && (text.match(/ready in \d+ ms/g) ?? []).length >= workers) {
        clearTimeout(timer);
        resolve(url);
      }
    });
  });
  child.stderr.resume();
  return { name, child, admin, port };
}

/** CPU seconds of the cluster's tree over `ms`, scraping `scrape` every `interval` ms meanwhile. */
async function window(ctx, clusters, ms, interval, scraped) {
  const pids = clusters.map((c) => [c.child.pid, ...ctx.descendants(c.child.pid)]);
  const before = pids.map((p) => ctx.cpuTicks(p));
  const primaries = clusters.map((c) => ctx.cpuTicks([c.child.pid]));
  const until = performance.now() + ms;
  let scrapes = 0;
  while (performance.now() < until) {
    const next = performance.now() + interval;
    const r = await get(`${scraped.admin}metrics`);
    if (r.status !== 200) throw new Error(`scrape answered ${r.status}`);
    scrapes += 1;
    await ctx.sleep(Math.max(0, Math.min(next, until) - performance.now()));
  }
  return {
    cpu: pids.map((p, i) => (ctx.cpuTicks(p) - before[i]) / ctx.TICKS),
    primaryCpu: clusters.map((c, i) => (ctx.cpuTicks([c.child.pid]) - primaries[i]) / ctx.TICKS),
    scrapes,
  };
}

export async function scrapeSection(ctx, { workers, rounds, windowMs, intervalMs }) {
  console.log(`\n/metrics: ${workers} workers running a prom-client app; one cluster scraped every ${intervalMs} ms, its twin not; ${rounds} rounds x ${windowMs / 1000} s`);
  const a = await startCluster(ctx, 'bench-scraped', workers);
  const b = await startCluster(ctx, 'bench-idle', workers);
  await ctx.sleep(2000);
  // Latency first, on a warm cluster.
  for (let i = 0; i < 5; i++) await get(`${a.admin}metrics`);
  const lat = [];
  let bytes = 0;
  for (let i = 0; i < 30; i++) {
    const r = await get(`${a.admin}metrics`);
    lat.push(r.ms);
    bytes = r.bytes;
    await ctx.sleep(100);
  }
  const samples = [];
  for (let round = 0; round < rounds; round++) {
    // Swap the roles each round so drift hits both alike.
    const [scraped, twin] = round % 2 === 0 ? [a, b] : [b, a];
    const { cpu, primaryCpu, scrapes } = await window(ctx, [scraped, twin], windowMs, intervalMs, scraped);
    samples.push({ scrapedCpu: cpu[0], twinCpu: cpu[1], scrapedPrimaryCpu: primaryCpu[0], twinPrimaryCpu: primaryCpu[1], scrapes });
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  const perScrapeMs = ctx.median(samples.map((s) => ((s.scrapedCpu - s.twinCpu) / s.scrapes) * 1000));
  const primaryPerScrapeMs = ctx.median(samples.map((s) => ((s.scrapedPrimaryCpu - s.twinPrimaryCpu) / s.scrapes) * 1000));
  const result = {
    workers,
    intervalMs,
    windowMs,
    rounds,
    bodyBytes: bytes,
    latencyMedianMs: ctx.median(lat),
    latencyMaxMs: Math.max(...lat),
    cpuRatio: ctx.median(samples.map((s) => s.scrapedCpu / s.twinCpu)),
    scrapedCpuPercent: ctx.median(samples.map((s) => (s.scrapedCpu / (windowMs / 1000)) * 100)),
    twinCpuPercent: ctx.median(samples.map((s) => (s.twinCpu / (windowMs / 1000)) * 100)),
    cpuMsPerScrape: perScrapeMs,
    primaryCpuMsPerScrape: primaryPerScrapeMs,
    /** What scraping every 5 s costs, as a share of one core. */
    every5sCorePercent: (perScrapeMs / 5000) * 100,
    samples,
  };
  const f = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  console.log(`  one scrape: median ${f(result.latencyMedianMs, 1)} ms, max ${f(result.latencyMaxMs, 1)} ms (${(bytes / 1024).toFixed(0)} KiB of exposition)`);
  console.log(`  cluster CPU scraped / not scraped: x${f(result.cpuRatio, 3)} (${f(result.scrapedCpuPercent)} % vs ${f(result.twinCpuPercent)} % of one core)`);
  console.log(`  CPU per scrape: ${f(perScrapeMs, 1)} ms (primary ${f(primaryPerScrapeMs, 1)} ms, the rest in the workers); scraping every 5 s = ${f(result.every5sCorePercent)} % of one core`);
  for (const c of [a, b]) c.child.kill('SIGTERM');
  await Promise.all([a, b].map((c) => new Promise((r) => (c.child.exitCode !== null ? r() : c.child.once('exit', r)))));
  return result;
}
