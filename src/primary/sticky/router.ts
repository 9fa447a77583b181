/**
 * --sticky: the primary owns each port the workers listen on, accepts every
 * connection and hands it to the worker its key belongs to, over IPC, the
 * way node:cluster's round-robin hands sockets over (the raw handle; the
 * worker's faux listening handle turns it into a socket of the app's server).
 *
 * The hot path (one connection) touches only this object: the supervisor
 * publishes the list of ready workers after each of its events (update()),
 * and the router never calls back into it.
 */
import net from 'node:net';
import os from 'node:os';
import type { StickyQuery, StickyToPrimary } from '../../common/ipc.js';
import { displayAddress } from '../../common/address.js';
import { describeSticky, type StickyKey } from '../../config/sticky.js';
import { corralRecord, type LogSink } from '../../logs/sink.js';
import type { ConnectionRouter, RoutedProcess, RouteTarget } from '../routing.js';
import { clientIp, headEnd, keyFromHead, looksLikeHttp1 } from './key.js';
import { Affinity, hashKey, rendezvous } from './pick.js';

/** A request head larger than this is not waited for: the key is looked for in what arrived. */
const MAX_HEAD_BYTES = 16 * 1024;
/** A client that has not sent its request head by then is routed by IP (the app's own header timeout then applies). */
const HEAD_TIMEOUT_MS = 10_000;
/** Keys remembered (least recently used out), as 22-character digests: well under 100 bytes each whatever clients send. */
const AFFINITY_CAPACITY = 100_000;
/** A connection sent back this often (workers draining as it arrives) is closed. */
const MAX_HOPS = 4;

/** A raw TCP handle (TCPWrap), as a net.Socket holds it and IPC carries it. */
interface RawHandle {
  readStop?(): number;
  close(): void;
  onread?: unknown;
}

/** A connection handed to a worker whose IPC write has not completed (node queues handles until the previous one is acknowledged). */
interface InFlight {
  listener: Listener;
  data: Buffer;
  client: string;
  hops: number;
}

interface Member {
  id: number;
  proc: RoutedProcess;
}

/** One port the primary listens on for its workers. */
interface Listener {
  key: string;
  server: net.Server;
  /** Workers whose app listens here: they may get its connections. */
  members: Map<number, Member>;
  /** Read the first request's head for the key (header:/cookie: on a plain HTTP server). */
  readHead: boolean;
  serverData: unknown;
  sockname?: { address: string; family: string; port: number };
  /** sticky-listen requests waiting for the bind. */
  waiting: Array<{ member: Member; id: number }>;
}

export class StickyRouter implements ConnectionRouter {
  readonly #key: StickyKey;
  readonly #sink: LogSink;
  readonly #listeners = new Map<string, Listener>();
  readonly #affinity = new Affinity(AFFINITY_CAPACITY);
  #targets = new Map<number, RouteTarget>();
  /** By worker id: connections queued for it in node's IPC layer, routed again if it dies with them. */
  readonly #inFlight = new Map<number, Map<RawHandle, InFlight>>();
  #closed = false;
  /** Connections whose first request head is still being read. */
  readonly #readingHeads = new Set<net.Socket>();

  constructor(key: StickyKey, sink: LogSink) {
    this.#key = key;
    this.#sink = sink;
  }

  update(targets: readonly RouteTarget[]): void {
    this.#targets = new Map(targets.map((t) => [t.id, t]));
  }

  receive(worker: { id: number; proc: RoutedProcess }, message: StickyToPrimary, handle: unknown): void {
    const member = { id: worker.id, proc: worker.proc };
    switch (message.type) {
      case 'sticky-listen':
        return this.#listen(member, message.id, message.query);
      case 'sticky-unlisten':
        return this.#leave(worker.id, message.key);
      case 'sticky-return': {
        const listener = this.#listeners.get(message.key);
        const raw = handle as RawHandle | undefined;
        if (!raw) return;
        if (!listener) return raw.close();
        return this.#send(listener, raw, Buffer.from(message.data, 'base64'), message.client, message.hops + 1, worker.id);
      }
    }
  }

  forget(id: number): void {
    for (const key of [...this.#listeners.keys()]) this.#leave(id, key);
    this.#affinity.forgetWorker(id);
    // A frozen worker that was killed, or one that died, never took these: node drops its queue without a word.
    const stranded = this.#inFlight.get(id);
    this.#inFlight.delete(id);
    for (const [raw, f] of stranded ?? []) this.#send(f.listener, raw, f.data, f.client, f.hops + 1, id);
  }

  close(): void {
    this.#closed = true;
    for (const listener of this.#listeners.values()) listener.server.close();
    this.#listeners.clear();
    // Their timers would keep a library user's process alive after the stop.
    for (const socket of this.#readingHeads) socket.destroy();
    this.#readingHeads.clear();
  }

  // ---- listeners: bound once per address, shared by every worker that listens there

  #listen(member: Member, id: number, query: StickyQuery): void {
    if (this.#closed) return reply(member, id, { errno: -(os.constants.errno.ECONNABORTED ?? 103), error: 'the cluster is stopping' });
    const existing = this.#listeners.get(query.key);
    if (existing) {
      if (existing.sockname) {
        existing.members.set(member.id, member);
        return reply(member, id, { sockname: existing.sockname, serverData: existing.serverData });
      }
      existing.waiting.push({ member, id });
      return;
    }
    const listener: Listener = {
      key: query.key,
      server: net.createServer({ pauseOnConnect: true, allowHalfOpen: true }),
      members: new Map(),
      readHead: this.#key.by !== 'ip' && query.http,
      serverData: query.serverData,
      waiting: [{ member, id }],
    };
    this.#listeners.set(query.key, listener);
    this.#bind(listener, query);
  }

  #bind(listener: Listener, query: StickyQuery): void {
    const { server } = listener;
    server.on('connection', (socket: net.Socket) => this.#accept(listener, socket));
    const onBindError = (err: NodeJS.ErrnoException): void => {
      this.#listeners.delete(listener.key);
      const errno = -(os.constants.errno[err.code as keyof typeof os.constants.errno] ?? os.constants.errno.EINVAL);
      for (const w of listener.waiting.splice(0)) reply(w.member, w.id, { errno, error: err.message });
    };
    server.once('error', onBindError);
    server.once('listening', () => {
      // Bound: a later error (accept failing with EMFILE) must not make the router forget a live listener.
      server.off('error', onBindError);
      server.on('error', (err) => this.#sink.write(corralRecord('error', `sticky: listener ${listener.key}: ${err.message}`)));
      listener.sockname = server.address() as { address: string; family: string; port: number };
      for (const w of listener.waiting.splice(0)) {
        listener.members.set(w.member.id, w.member);
        reply(w.member, w.id, { sockname: listener.sockname, serverData: listener.serverData });
      }
      const how = listener.readHead || this.#key.by === 'ip' ? describeSticky(this.#key) : `ip (${describeSticky(this.#key)} needs a plain HTTP server; this one is not)`;
      this.#sink.write(corralRecord('info', `sticky: the primary listens on ${displayAddress(`${listener.sockname.address}:${listener.sockname.port}`)} and routes each connection by ${how}`));
    });
    const options: net.ListenOptions = { port: query.port, ipv6Only: query.ipv6Only };
    if (query.address !== null) options.host = query.address;
    if (query.backlog !== undefined) options.backlog = query.backlog;
    server.listen(options);
  }

  /** A worker's app closed its server (it drains) or the worker is gone: no more connections for it; the last one out closes the port. */
  #leave(id: number, key: string): void {
    const listener = this.#listeners.get(key);
    if (!listener) return;
    listener.members.delete(id);
    listener.waiting = listener.waiting.filter((w) => w.member.id !== id);
    if (listener.members.size > 0 || listener.waiting.length > 0) return;
    this.#listeners.delete(key);
    listener.server.close();
  }

  // ---- one connection

  #accept(listener: Listener, socket: net.Socket): void {
    socket.on('error', () => socket.destroy());
    if (!listener.readHead) return this.#dispatch(listener, socket, Buffer.alloc(0), clientIp(socket.remoteAddress));
    this.#readingHeads.add(socket);
    socket.once('close', () => this.#readingHeads.delete(socket));
    readHead(socket, (head) => {
      this.#readingHeads.delete(socket);
      const key = looksLikeHttp1(head) ? keyFromHead(head, this.#key) : undefined;
      this.#dispatch(listener, socket, head, key === undefined ? clientIp(socket.remoteAddress) : `${this.#key.by}:${key}`);
    });
  }

  /** Take the connection's handle out of the primary's socket object (which reads nothing more) and route it. */
  #dispatch(listener: Listener, socket: net.Socket, data: Buffer, client: string): void {
    const holder = socket as net.Socket & { _handle: RawHandle | null };
    const raw = holder._handle;
    if (!raw || socket.destroyed) return;
    raw.readStop?.();
    raw.onread = () => {};
    holder._handle = null;
    // With no handle, destroy() closes nothing: it only settles the server's connection count.
    socket.destroy();
    this.#send(listener, raw, data, client, 0, undefined);
  }

  #send(listener: Listener, raw: RawHandle, data: Buffer, client: string, hops: number, exclude: number | undefined): void {
    const to = hops < MAX_HOPS ? this.#pick(listener, client, exclude) : undefined;
    if (!to) return raw.close();
    const message = { corral: 1, type: 'sticky-connection', key: listener.key, client, data: data.toString('base64'), hops } as const;
    let pending = this.#inFlight.get(to.id);
    if (!pending) this.#inFlight.set(to.id, (pending = new Map()));
    pending.set(raw, { listener, data, client, hops });
    to.proc.sendHandle(message, raw, (err) => {
      // Forgotten meanwhile (the worker died): forget() has routed it again.
      if (!this.#inFlight.get(to.id)?.delete(raw)) return;
      // Sent: the worker's copy of the socket is in flight (the kernel holds it), ours must go, or the
      // connection would outlive the worker (node closes sent native handles only for its own round-robin).
      if (!err) return raw.close();
      this.#send(listener, raw, data, client, hops + 1, to.id);
    });
  }

  /**
   * The worker for `client`: the one it went to before while that one still
   * listens here and is ready; else, by rendezvous hashing, one of the
   * preferred workers (ready, of the generation being served); else any
   * ready worker; else any worker listening here (one that just listened and
   * is not reported ready yet).
   */
  #pick(listener: Listener, client: string, exclude: number | undefined): Member | undefined {
    const ready: RouteTarget[] = [];
    for (const id of listener.members.keys()) {
      const t = this.#targets.get(id);
      if (t && id !== exclude) ready.push(t);
    }
    const remembered = `${listener.key}\0${client}`;
    const before = this.#affinity.get(remembered);
    const again = before === undefined ? undefined : ready.find((t) => t.id === before);
    if (again) return again;
    const preferred = ready.filter((t) => t.preferred);
    const chosen = rendezvous(preferred.length > 0 ? preferred : ready, hashKey(client));
    if (chosen) {
      this.#affinity.set(remembered, chosen.id);
      return chosen;
    }
    for (const m of listener.members.values()) if (m.id !== exclude) return m;
    return undefined;
  }
}

function reply(member: Member, id: number, body: { sockname: NonNullable<Listener['sockname']>; serverData: unknown } | { errno: number; error: string }): void {
  if ('errno' in body) member.proc.send({ corral: 1, type: 'sticky-listening', id, errno: body.errno, error: body.error });
  else if (body.serverData === undefined) member.proc.send({ corral: 1, type: 'sticky-listening', id, sockname: body.sockname });
  else member.proc.send({ corral: 1, type: 'sticky-listening', id, sockname: body.sockname, serverData: body.serverData });
}

/**
 * Read until the request head is complete (or MAX_HEAD_BYTES, or the client
 * stops sending, or HEAD_TIMEOUT_MS), then stop reading at once, so every
 * byte read is in `done`'s buffer and every other byte is still in the kernel
 * for the worker.
 */
function readHead(socket: net.Socket, done: (head: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', finish);
    socket.pause();
    (socket as net.Socket & { _handle: RawHandle | null })._handle?.readStop?.();
    for (let more = socket.read() as Buffer | null; more !== null; more = socket.read() as Buffer | null) chunks.push(more);
    done(Buffer.concat(chunks));
  };
  const onData = (chunk: Buffer): void => {
    const from = size - 3;
    chunks.push(chunk);
    size += chunk.length;
    if (size >= MAX_HEAD_BYTES || !looksLikeHttp1(chunks[0] as Buffer)) return finish();
    const joined = chunks.length === 1 ? chunk : Buffer.concat(chunks);
    if (headEnd(joined, from) !== -1) finish();
  };
  const timer = setTimeout(finish, HEAD_TIMEOUT_MS);
  socket.on('data', onData);
  // A client that half-closes after its request: route what it sent (the primary's socket allows half-open, so nothing is shut).
  socket.once('end', finish);
  socket.once('close', () => {
    if (!finished) clearTimeout(timer);
  });
  socket.resume();
}
