import type { ClusterStatus } from '../primary/status.js';

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export function formatBytes(n: number | null): string {
  if (n === null) return '-';
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/** Left-aligned columns, two spaces apart; numbers right-aligned. */
export function table(header: string[], rows: string[][], numeric: boolean[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatStatus(s: ClusterStatus): string {
  const head =
    `${s.name}  ${s.state}  primary pid ${s.pid}  up ${formatDuration(s.uptimeMs)}  strategy ${s.strategy}  ` +
    `workers ${s.totals.ready}/${s.desired} ready${s.spares > 0 ? `  spares ${s.workers.filter((w) => w.state === 'spare').length}/${s.spares}` : ''}  generation ${s.generation}`;
  const rows = s.workers.map((w) => [
    w.slot === null ? '-' : String(w.slot),
    String(w.pid),
    w.state,
    formatDuration(w.uptimeMs),
    String(w.restarts),
    formatBytes(w.rss),
    w.cpuPercent === null ? '-' : `${w.cpuPercent.toFixed(1)}%`,
    w.requests === null ? '-' : String(w.requests),
  ]);
  for (const w of s.waiting) {
    rows.push([String(w.slot), '-', `restart in ${formatDuration(w.restartInMs + 999)}`, '-', String(w.restarts), '-', '-', '-']);
  }
  // Spares (no slot) after the slots.
  const order = (slot: string | undefined): number => (slot === '-' ? Infinity : Number(slot));
  rows.sort((a, b) => order(a[0]) - order(b[0]));
  const body = table(['SLOT', 'PID', 'STATE', 'UPTIME', 'RESTARTS', 'RSS', 'CPU', 'REQUESTS'], rows, [true, true, false, true, true, true, true, true]);
  const total = `total: ${s.totals.workers} workers, ${formatBytes(s.totals.rss)} RSS, ${s.totals.requests} requests, ${s.totals.restarts} restarts`;
  const sizing = formatSizing(s);
  return `${head}\n${sizing ? `${sizing}\n` : ''}${body}\n${total}`;
}

/** "2 workers: cgroup cpu.max 150000/100000 (/sys/fs/cgroup/…)", and a later scale if any. */
export function formatSizing(s: ClusterStatus): string | null {
  if (!s.sizing) return null;
  const n = s.sizing.workers;
  const scaled = s.desired === n ? '' : `; scaled to ${s.desired} since`;
  return `${n} worker${n === 1 ? '' : 's'}: ${s.sizing.source}${scaled}`;
}
