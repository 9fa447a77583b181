import type { StickyToPrimary } from '../common/ipc.js';
import type { SpawnedProcess } from './spawn.js';

/** A worker process as the router may use it: send it messages and sockets. */
export type RoutedProcess = Pick<SpawnedProcess, 'send' | 'sendHandle'>;

/** A ready worker the router may hand connections to, as the supervisor lets it see one. */
export interface RouteTarget {
  readonly id: number;
  readonly slot: number;
  /**
   * New clients go to preferred workers: those of the generation being
   * served. A ready worker that is not preferred (an old one during a rolling
   * reload, one marked for recycling) keeps the clients it has until it drains.
   */
  readonly preferred: boolean;
  readonly proc: RoutedProcess;
}

/**
 * What the supervisor knows of the primary-side connection router (--sticky).
 * The supervisor owns the worker table; the router gets events and a
 * read-only list of targets after each change, so routing a connection never
 * touches the supervisor or waits for its loop.
 */
export interface ConnectionRouter {
  /** The ready workers changed (called after an event was handled, only when the list differs). */
  update(targets: readonly RouteTarget[]): void;
  /** A worker's app listened on or closed a port the primary owns, or sent back a connection. */
  receive(worker: { id: number; slot: number; proc: RoutedProcess }, message: StickyToPrimary, handle: unknown): void;
  /** The worker exited: its listeners end. */
  forget(id: number): void;
  /** Stop listening everywhere. */
  close(): void;
}
