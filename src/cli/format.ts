import { styleText } from 'node:util';
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

/** Binary units, labelled as such (1 MiB = 1024 KiB). */
export function formatBytes(n: number | null): string {
  if (n === null) return '-';
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** "1 worker", "2 workers". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Colour only for a terminal, and never when NO_COLOR is set (no-color.org). */
export function useColor(out: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return out.isTTY === true && !env.NO_COLOR && env.TERM !== 'dumb';
}

type Color = Parameters<typeof styleText>[0];

/** Colour `text`; whether to colour at all was decided by useColor() (styleText would check stdout itself). */
function colorize(color: Color, text: string): string {
  return (styleText as (c: Color, t: string, o: { validateStream: boolean }) => string)(color, text, { validateStream: false });
}

type Paint = (text: string, row: number, col: number) => string;

/** Left-aligned columns, two spaces apart; numbers right-aligned. `paint` colours a cell after it is padded. */
export function table(header: string[], rows: string[][], numeric: boolean[] = [], paint?: Paint): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[], row: number): string =>
    cells
      .map((c, i) => {
        const padded = numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0);
        return paint && row >= 0 ? paint(padded, row, i) : padded;
      })
      .join('  ')
      .trimEnd();
  return [line(header, -1), ...rows.map(line)].join('\n');
}

const STATE_COLORS: Record<string, Color> = { ready: 'green', starting: 'yellow', draining: 'gray' };

export function formatStatus(s: ClusterStatus, color = false): string {
  const head =
    `${s.name}  ${s.state}  primary pid ${s.pid}  up ${formatDuration(s.uptimeMs)}  strategy ${s.strategy}  ` +
    `workers ${s.totals.ready}/${s.desired} ready${s.spares > 0 ? `  spares ${s.workers.filter((w) => w.state === 'spare').length}/${s.spares}` : ''}  generation ${s.generation}`;
  // During a reload old and new workers serve side by side: say which runs which code.
  const mixed = s.state === 'reloading' || s.workers.some((w) => w.generation !== s.generation);
  const seen = new Set<number>();
  // A slot's restarts belong to the slot: shown on its first row only, so the rows add up to the total (a spare has none).
  const restarts = (slot: number | null, n: number): string => (slot === null || seen.has(slot) ? '' : (seen.add(slot), String(n)));
  const rows = [
    // Spares (no slot) after the slots.
    ...s.workers.map((w) => ({ slot: w.slot ?? Infinity, cells: [
      w.slot === null ? '-' : String(w.slot),
      String(w.pid),
      w.state,
      ...(mixed ? [String(w.generation)] : []),
      formatDuration(w.uptimeMs),
      restarts(w.slot, w.restarts),
      formatBytes(w.rss),
      w.cpuPercent === null ? '-' : `${w.cpuPercent.toFixed(1)}%`,
      w.requests === null ? '-' : String(w.requests),
    ] })),
    ...s.waiting.map((w) => ({ slot: w.slot, cells: [String(w.slot), '-', `restart in ${formatDuration(w.restartInMs + 999)}`, ...(mixed ? ['-'] : []), '-', restarts(w.slot, w.restarts), '-', '-', '-'] })),
  ].sort((a, b) => a.slot - b.slot).map((r) => r.cells);
  const header = ['SLOT', 'PID', 'STATE', ...(mixed ? ['GEN'] : []), 'UPTIME', 'RESTARTS', 'RSS', 'CPU', 'REQUESTS'];
  const numeric = header.map((h) => h !== 'STATE');
  const stateCol = 2;
  const restartCol = header.indexOf('RESTARTS');
  const paint: Paint | undefined = color
    ? (text, row, col) => {
        const cell = rows[row]?.[col] ?? '';
        if (col === stateCol) return cell.startsWith('restart in') ? colorize('red', text) : STATE_COLORS[cell] ? colorize(STATE_COLORS[cell]!, text) : text;
        if (col === restartCol && cell !== '' && cell !== '0') return colorize('yellow', text);
        return text;
      }
    : undefined;
  const body = table(header, rows, numeric, paint);
  const t = s.totals;
  const total = `total: ${plural(t.workers, 'worker')}, ${formatBytes(t.rss)} RSS, ${plural(t.requests, 'request')}, ${plural(t.restarts, 'restart')}` +
    (s.reloads.succeeded + s.reloads.failed > 0 ? `; ${plural(s.reloads.succeeded, 'reload')}${s.reloads.failed > 0 ? `, ${s.reloads.failed} refused` : ''}` : '');
  const sizing = formatSizing(s);
  return `${head}\n${sizing ? `${sizing}\n` : ''}${body}\n${total}`;
}

/** "2 workers: cgroup cpu.max 150000/100000 (/sys/fs/cgroup/…)", and a later scale if any. */
export function formatSizing(s: ClusterStatus): string | null {
  if (!s.sizing) return null;
  const n = s.sizing.workers;
  const scaled = s.desired === n ? '' : `; scaled to ${s.desired} since`;
  return `${plural(n, 'worker')}: ${s.sizing.source}${scaled}`;
}
