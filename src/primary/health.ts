import type { WorkerStats } from '../common/ipc.js';
import type { WorkerHandle } from './worker.js';

export interface HealthLimits {
  /** RSS in bytes above which a worker is replaced (after `memoryBeats` heartbeats). */
  maxMemory: number | undefined;
  /** Consecutive heartbeats over `maxMemory` before a worker is replaced. */
  memoryBeats: number;
}

export interface Recycle {
  reason: 'memory' | 'max-requests';
  message: string;
}

/**
 * The health rules a heartbeat is judged by: a worker over the memory limit
 * for several beats in a row, or at its own request limit, is recycled
 * (replacement first, then drain). Returns what to do, or null.
 */
export function judgeHeartbeat(w: WorkerHandle, stats: WorkerStats, limits: HealthLimits): Recycle | null {
  const { maxMemory } = limits;
  const beats = w.countMemoryBeat(maxMemory !== undefined && stats.rss > maxMemory);
  if (maxMemory !== undefined && beats >= limits.memoryBeats) {
    return { reason: 'memory', message: `uses ${mib(stats.rss)} RSS, over the ${mib(maxMemory)} limit; replacing it` };
  }
  if (w.requestLimit !== undefined && stats.requests >= w.requestLimit) {
    return { reason: 'max-requests', message: `served ${stats.requests} requests (limit ${w.requestLimit}); recycling it` };
  }
  return null;
}

/** How long the worker has been silent: since its last heartbeat, or since it became ready. */
export function silentFor(w: WorkerHandle, now: number): number {
  return now - (w.lastHeartbeat ?? w.readyAt ?? w.spawnedAt);
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}
