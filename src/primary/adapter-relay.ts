/**
 * What `setupPrimary()` of @socket.io/cluster-adapter does, done by corral:
 * Socket.IO servers in the workers (`io.adapter(createAdapter())`) publish
 * their broadcasts, room changes and requests with `process.send()`, tagged
 * `source: "_sio_adapter"`; something in the primary must pass them to the
 * other workers, or each worker's Socket.IO runs alone — without an error.
 * A CLI user has no primary to write that code in, so corral relays them,
 * among the workers of one app only.
 *
 * Off the supervisor's loop: messages go from the spawner's IPC listener
 * straight to the peers, as they would with the adapter's own setupPrimary().
 */

export const ADAPTER_SOURCE = '_sio_adapter';

interface AdapterMessage {
  source: typeof ADAPTER_SOURCE;
  /** The sending adapter's id (one per namespace and worker). */
  uid?: unknown;
  /** Set on a response: the adapter that asked. */
  requesterUid?: unknown;
}

export function isAdapterMessage(value: unknown): value is AdapterMessage {
  return typeof value === 'object' && value !== null && (value as { source?: unknown }).source === ADAPTER_SOURCE;
}

/** A worker as the relay sees it: something to send to. */
export interface RelayPeer {
  send(message: unknown): void;
}

export class AdapterRelay {
  /** Every connected worker of the app, with the adapter ids it has sent from. */
  readonly #peers = new Map<RelayPeer, Set<unknown>>();

  add(peer: RelayPeer): void {
    this.#peers.set(peer, new Set());
  }

  remove(peer: RelayPeer): void {
    this.#peers.delete(peer);
  }

  get size(): number {
    return this.#peers.size;
  }

  /** A response goes to the worker whose adapter asked; everything else to every other worker. */
  forward(from: RelayPeer, message: AdapterMessage): void {
    this.#peers.get(from)?.add(message.uid);
    if (message.requesterUid !== undefined) {
      for (const [peer, uids] of this.#peers) {
        if (peer !== from && uids.has(message.requesterUid)) return peer.send(message);
      }
    }
    for (const peer of this.#peers.keys()) if (peer !== from) peer.send(message);
  }
}
