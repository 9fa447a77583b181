import type { WorkerHandle } from './worker.js';

/** The warm spares as reconcile sees them. */
export interface SparePool {
  /** Booted spares of the current generation, ready to be promoted. */
  ready: WorkerHandle[];
  /** Spares of the current generation still booting. */
  booting: number;
  /** Spares to take out: another generation, or marked for replacement. */
  retire: WorkerHandle[];
}

/**
 * Sort the unpromoted spares: a spare belongs to the generation it booted
 * in and is never promoted into another one (after a reload it would serve
 * the old code), and one that failed a health rule is replaced. Spares of
 * the current generation are all kept: one booting may be promised to a
 * slot that waits for it, so there can be more than `--spares` for a while.
 */
export function sparePool(workers: Iterable<WorkerHandle>, generation: number): SparePool {
  const ready: WorkerHandle[] = [];
  const retire: WorkerHandle[] = [];
  let booting = 0;
  for (const w of workers) {
    if (!w.isSpare || (w.state !== 'starting' && w.state !== 'spare')) continue;
    if (w.generation !== generation || w.replaceReason !== undefined) retire.push(w);
    else if (w.state === 'spare') ready.push(w);
    else booting += 1;
  }
  ready.sort((a, b) => a.id - b.id);
  return { ready, booting, retire };
}
