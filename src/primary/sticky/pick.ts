/**
 * Which worker a key belongs to. Rendezvous (highest random weight)
 * hashing over the workers' slots: every key ranks every slot, the highest
 * wins. When a slot's worker goes away only its keys move, and a
 * replacement in the same slot takes the same keys back; no ring to rebuild.
 * On top, an affinity table remembers where a key went while that worker
 * lives, so adding a worker (scale up, a reload's new generation) moves no
 * client whose worker is still there.
 */
import { createHash } from 'node:crypto';

/** 32-bit FNV-1a over the key's UTF-16 code units: cheap, and spread well enough once mixed. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's finaliser: every input bit affects every output bit. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The candidate with the highest weight for `keyHash`; undefined when there is none. */
export function rendezvous<T extends { slot: number }>(candidates: readonly T[], keyHash: number): T | undefined {
  let best: T | undefined;
  let bestScore = -1;
  for (const c of candidates) {
    const score = mix(keyHash ^ mix(c.slot + 1));
    if (score > bestScore || (score === bestScore && best !== undefined && c.slot < best.slot)) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

/**
 * A fixed-size stand-in for a key: clients choose their header and cookie
 * values (up to a 16 KiB head), and a table of 100 000 raw keys could then
 * hold gigabytes of the primary's memory. 128 bits of SHA-256: no two
 * clients share an entry by accident.
 */
function digest(key: string): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 22);
}

/**
 * Key -> worker id, least recently used first out: bounded memory whatever
 * the number of clients and whatever they send (keys are stored as digests).
 * A key that falls out goes back to its rendezvous worker, which is the same
 * one unless the workers changed meanwhile.
 */
export class Affinity {
  readonly #map = new Map<string, number>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#map.size;
  }

  get(key: string): number | undefined {
    const d = digest(key);
    const id = this.#map.get(d);
    if (id === undefined) return undefined;
    this.#map.delete(d);
    this.#map.set(d, id);
    return id;
  }

  set(key: string, id: number): void {
    key = digest(key);
    this.#map.delete(key);
    this.#map.set(key, id);
    if (this.#map.size > this.capacity) {
      const oldest = this.#map.keys().next().value;
      if (oldest !== undefined) this.#map.delete(oldest);
    }
  }

  /** Drop every key of a worker that is gone. */
  forgetWorker(id: number): void {
    for (const [key, value] of this.#map) if (value === id) this.#map.delete(key);
  }
}
