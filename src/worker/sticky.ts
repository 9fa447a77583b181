/**
 * The worker side of --sticky. The primary owns the listening sockets and
 * hands each connection to the worker its key maps to; the app's
 * `server.listen(port)` must therefore not bind anything, yet behave exactly
 * as it does under node:cluster's round-robin: `listening` fires, `address()`
 * answers, `close()` works, errors such as EADDRINUSE arrive as `error`.
 *
 * node:cluster already has that shape: in a worker, net.Server asks
 * `cluster._getServer()` for a handle and, in round-robin mode, gets a faux
 * handle whose `onconnection(0, handle)` the runtime calls for each socket
 * the primary sends. corral replaces `_getServer` for TCP ports with its own
 * query to the primary (a `sticky-listen` message) and its own faux handle,
 * and leaves every other listen (Unix sockets, file descriptors, `exclusive`,
 * which never reach `_getServer`) to node:cluster. A listen that never gets
 * this far (held by the runtime's listen hook) never registers, so the
 * primary routes nothing to the worker until its app really listens.
 *
 * When the primary had to read the first bytes (the request head, for a
 * header: or cookie: key), they come along and are put back in front of the
 * socket's stream before the server reads from it, so the server sees the
 * byte stream exactly as the client sent it.
 */
import cluster from 'node:cluster';
import http from 'node:http';
import type net from 'node:net';
import type { PrimaryToWorker, StickyQuery, StickyToPrimary } from '../common/ipc.js';

type Send = (message: StickyToPrimary, handle?: unknown) => void;
type Listening = Extract<PrimaryToWorker, { type: 'sticky-listening' }>;
type Incoming = Extract<PrimaryToWorker, { type: 'sticky-connection' }>;
type GetServerCallback = (err: number, handle: FauxHandle | null) => void;

/** What node:cluster's `_getServer` receives from net.js. */
interface ServerQuery {
  address?: string | null;
  port?: number | null;
  addressType?: number | null;
  fd?: number | null;
  flags?: number;
  backlog?: number;
}

/** What net.Server needs of a listening handle; node sets `onconnection` on it. */
interface FauxHandle {
  onconnection?: (err: number, handle: unknown) => void;
  listen(backlog?: number): number;
  close(): void;
  ref(): void;
  unref(): void;
  getsockname(out: object): number;
}

type ClusterInternals = typeof cluster & {
  _getServer(server: net.Server, options: ServerQuery, cb: GetServerCallback): void;
};

type ServerData = net.Server & { _getServerData?(): unknown; _setServerData?(data: unknown): void };

/** A handle that keeps the event loop alive the way a listening socket would. */
const FOREVER = 2 ** 31 - 1;
/** uv_tcp_flags: the ipv6Only bit net.js passes in `flags`. */
const UV_TCP_IPV6ONLY = 1;

export class StickyListeners {
  readonly #send: Send;
  readonly #handles = new Map<string, FauxHandle>();
  readonly #waiting = new Map<number, (reply: Listening) => void>();
  /** Bytes to put back in front of a socket, by the raw handle it is created from. */
  readonly #replay = new Map<unknown, Buffer>();
  readonly #replaying = new WeakSet<net.Server>();
  /**
   * node:cluster's per-address listen counter: the n-th listen on an address
   * is the n-th listener there (so the n-th listen on port 0 shares one port
   * across workers). A closed or failed listen frees its index, so an app
   * that closes and listens again, or retries a failed listen, gets its key
   * back instead of a second bind of the same port.
   */
  readonly #indexes = new Map<string, { next: number; used: Set<number> }>();
  #nextId = 1;

  constructor(send: Send) {
    this.#send = send;
  }

  install(): void {
    const internals = cluster as ClusterInternals;
    const original = internals._getServer;
    internals._getServer = (server, options, cb) => {
      if (!isTcpPort(options)) return original.call(cluster, server, options, cb);
      this.#listen(server as ServerData, options, cb);
    };
  }

  /** The primary's answer to a `sticky-listen`. */
  settle(reply: Listening): void {
    const waiter = this.#waiting.get(reply.id);
    this.#waiting.delete(reply.id);
    waiter?.(reply);
  }

  /** A connection from the primary; back it goes if this worker no longer listens there (it is draining). */
  receive(message: Incoming, handle: unknown): void {
    if (handle === undefined || handle === null) return;
    const faux = this.#handles.get(message.key);
    if (!faux?.onconnection) {
      this.#send({ corral: 1, type: 'sticky-return', key: message.key, client: message.client, data: message.data, hops: message.hops }, handle);
      return;
    }
    if (message.data !== '') this.#replay.set(handle, Buffer.from(message.data, 'base64'));
    try {
      faux.onconnection(0, handle);
    } finally {
      // Refused (maxConnections): no 'connection' took the bytes.
      this.#replay.delete(handle);
    }
  }

  #listen(server: ServerData, options: ServerQuery, cb: GetServerCallback): void {
    const base = `${options.address ?? ''}:${options.port}:${options.addressType ?? 4}`;
    const index = this.#takeIndex(base);
    const query: StickyQuery = {
      key: `${base}:${index}`,
      address: options.address ?? null,
      port: options.port as number,
      addressType: options.addressType ?? 4,
      ipv6Only: ((options.flags ?? 0) & UV_TCP_IPV6ONLY) !== 0,
      http: server instanceof http.Server,
    };
    if (options.backlog !== undefined) query.backlog = options.backlog;
    // TLS servers share their session ticket keys through the primary, as under node:cluster.
    const serverData = server._getServerData?.();
    if (serverData !== undefined) query.serverData = serverData;
    const id = this.#nextId++;
    this.#waiting.set(id, (reply) => {
      if ('errno' in reply) {
        this.#freeIndex(base, index);
        return cb(reply.errno, null);
      }
      if (reply.serverData !== undefined) server._setServerData?.(reply.serverData);
      this.#replayOn(server);
      cb(0, this.#fauxHandle(query.key, reply.sockname, () => this.#freeIndex(base, index)));
    });
    this.#send({ corral: 1, type: 'sticky-listen', id, query });
  }

  #takeIndex(base: string): number {
    let indexes = this.#indexes.get(base);
    if (!indexes) this.#indexes.set(base, (indexes = { next: 0, used: new Set() }));
    const index = indexes.next++;
    indexes.used.add(index);
    return index;
  }

  #freeIndex(base: string, index: number): void {
    const indexes = this.#indexes.get(base);
    if (!indexes) return;
    indexes.used.delete(index);
    if (indexes.used.size === 0) this.#indexes.delete(base);
  }

  /** First in line for 'connection': the bytes the primary read go back before anything reads the socket. */
  #replayOn(server: net.Server): void {
    if (this.#replaying.has(server)) return;
    this.#replaying.add(server);
    server.prependListener('connection', (socket: net.Socket) => {
      const handle = (socket as net.Socket & { _handle?: unknown })._handle;
      const data = this.#replay.get(handle);
      if (data === undefined) return;
      this.#replay.delete(handle);
      socket.unshift(data);
    });
  }

  #fauxHandle(key: string, sockname: object, onClose: () => void): FauxHandle {
    let keepAlive: NodeJS.Timeout | null = null;
    const handle: FauxHandle = {
      listen: () => 0,
      ref: () => {
        keepAlive ??= setInterval(() => {}, FOREVER);
      },
      unref: () => {
        if (keepAlive) clearInterval(keepAlive);
        keepAlive = null;
      },
      getsockname: (out) => {
        Object.assign(out, sockname);
        return 0;
      },
      // net.js treats close() as synchronous; connections already on their way are sent back (receive()).
      close: () => {
        handle.unref();
        if (this.#handles.get(key) !== handle) return;
        this.#handles.delete(key);
        onClose();
        this.#send({ corral: 1, type: 'sticky-unlisten', key });
      },
    };
    handle.ref();
    this.#handles.set(key, handle);
    return handle;
  }
}

function isTcpPort(options: ServerQuery): boolean {
  return typeof options.port === 'number' && options.port >= 0 && (options.fd === undefined || options.fd === null);
}
