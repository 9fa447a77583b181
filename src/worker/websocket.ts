import type { IncomingMessage } from 'node:http';
import type net from 'node:net';

/**
 * The server side of a WebSocket, seen from its socket. corral says goodbye
 * on WebSockets the app left open at the end of a drain, and does it the way
 * RFC 6455 §7.1.2 wants: a Close frame with 1001 "going away", then the TCP
 * connection ends once the client answered — not a reset, which clients
 * report as 1006. corral does not import the app's WebSocket library (it
 * could be ws, engine.io's copy of it, faye, or something else, in any
 * version): it watches the bytes the app writes on the upgraded socket and
 * parses the frame headers (§5.2) just enough to know where a frame ends, so
 * the Close frame goes between two frames, never inside one. Control frames
 * are never compressed, so permessage-deflate changes nothing here; data the
 * app writes after the Close frame is dropped, as §5.5.1 requires.
 */

const CLOSE_OPCODE = 0x8;
export const GOING_AWAY = 1001;
/**
 * A message the client sends while the Close frame is on its way reaches the
 * app but can get no answer (nothing may follow a Close frame). So the Close
 * frame goes out right after the app answered the client's next message (the
 * client then has its whole think time to read it before it sends again), or
 * when the app has not answered within this long ...
 */
const QUIET_MS = 50;
/** ... and in any case after this long (a client that says nothing waits this long). */
const MAX_WAIT_MS = 500;
/** After the Close frame, how long the client and the app have to finish the closing handshake before corral ends the connection. */
const CLOSE_HANDSHAKE_MS = 1000;
/** The response head the app writes before any frame; more means it is not an HTTP response. */
const MAX_HEAD = 16 * 1024;

type Callback = (err?: Error | null) => void;

/** A WebSocket upgrade request (§4.1); other upgrades (h2c, custom protocols) stay the app's business. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return typeof req.headers.upgrade === 'string' && req.headers.upgrade.toLowerCase() === 'websocket';
}

/**
 * Where the server's byte stream stands: in the HTTP response head, between
 * frames, inside a frame's header or payload, or not a WebSocket at all (the
 * app refused the upgrade).
 */
export class OutgoingFrames {
  #phase: 'head' | 'frames' | 'other' = 'head';
  #head = '';
  #header: Buffer = Buffer.alloc(0);
  #remaining = 0;
  #closeSeen = false;

  /** The app answered 101 and frames follow. */
  get isWebSocket(): boolean {
    return this.#phase === 'frames';
  }

  /** The next byte written starts a frame. */
  get atBoundary(): boolean {
    return this.#phase === 'frames' && this.#remaining === 0 && this.#header.length === 0;
  }

  /** A Close frame has been written (the app's own, or corral's). */
  get closeSent(): boolean {
    return this.#closeSeen;
  }

  feed(chunk: Buffer): void {
    let at = 0;
    if (this.#phase === 'head') at = this.#feedHead(chunk);
    if (this.#phase !== 'frames') return;
    while (at < chunk.length) {
      if (this.#remaining > 0) {
        const n = Math.min(this.#remaining, chunk.length - at);
        this.#remaining -= n;
        at += n;
        continue;
      }
      at = this.#feedHeader(chunk, at);
    }
  }

  #feedHead(chunk: Buffer): number {
    const before = this.#head.length;
    this.#head += chunk.toString('latin1', 0, Math.min(chunk.length, MAX_HEAD));
    const end = this.#head.indexOf('\r\n\r\n');
    if (end === -1) {
      if (this.#head.length >= MAX_HEAD) this.#phase = 'other';
      return chunk.length;
    }
    this.#phase = /^HTTP\/1\.[01] 101 /.test(this.#head) ? 'frames' : 'other';
    this.#head = '';
    return end + 4 - before;
  }

  /** Collect a frame header (2 to 14 bytes, possibly split across writes); returns the offset after what it took. */
  #feedHeader(chunk: Buffer, at: number): number {
    const need = (h: Buffer): number => {
      if (h.length < 2) return 2;
      const len7 = (h[1] as number) & 0x7f;
      return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((h[1] as number) & 0x80 ? 4 : 0);
    };
    let header = this.#header;
    while (at < chunk.length && header.length < need(header)) {
      const take = Math.min(need(header) - header.length, chunk.length - at);
      header = Buffer.concat([header, chunk.subarray(at, at + take)]);
      at += take;
    }
    if (header.length < need(header)) {
      this.#header = header;
      return at;
    }
    this.#header = Buffer.alloc(0);
    if (((header[0] as number) & 0x0f) === CLOSE_OPCODE) this.#closeSeen = true;
    const len7 = (header[1] as number) & 0x7f;
    this.#remaining = len7 === 126 ? header.readUInt16BE(2) : len7 === 127 ? Number(header.readBigUInt64BE(2)) : len7;
    return at;
  }
}

/** A Close frame from the server (unmasked, §5.1): status code and a short UTF-8 reason. */
export function closeFrame(code: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 123);
  const frame = Buffer.alloc(4 + text.length);
  frame[0] = 0x80 | CLOSE_OPCODE;
  frame[1] = 2 + text.length;
  frame.writeUInt16BE(code, 2);
  text.copy(frame, 4);
  return frame;
}

function toBuffer(chunk: unknown, encoding: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.alloc(0);
}

/**
 * Watches what the app writes on one upgraded socket and can close it the
 * WebSocket way. The socket's `write` and `end` are wrapped on the instance
 * (only upgraded sockets, only once they left the HTTP parser).
 */
export class WebSocketGoodbye {
  readonly frames = new OutgoingFrames();
  #pending: Buffer | null = null;
  #closed = false;
  /** While a goodbye waits for the app to answer: called after each of its writes. */
  #afterWrite: (() => void) | null = null;
  readonly #write: net.Socket['write'];
  readonly #end: net.Socket['end'];

  constructor(private readonly socket: net.Socket) {
    this.#write = socket.write;
    this.#end = socket.end;
    const self = this;
    socket.write = function write(this: net.Socket, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
      const done = (typeof encoding === 'function' ? encoding : cb) as Callback | undefined;
      // After the Close frame nothing more may be sent; the app's callbacks still run (ws ends the socket from one).
      if (self.#closed) {
        if (done) process.nextTick(done);
        return true;
      }
      self.frames.feed(toBuffer(chunk, encoding));
      const ok = (self.#write as (...a: unknown[]) => boolean).call(this, chunk, encoding, cb);
      self.#flushPending();
      self.#afterWrite?.();
      return ok;
    } as net.Socket['write'];
    socket.end = function end(this: net.Socket, ...args: unknown[]) {
      const chunk = typeof args[0] === 'function' ? undefined : args[0];
      if (chunk !== undefined && chunk !== null && !self.#closed) {
        this.write(chunk as Buffer, (typeof args[1] === 'string' ? args[1] : 'utf8') as BufferEncoding);
      }
      const cb = args.find((a) => typeof a === 'function') as Callback | undefined;
      return (self.#end as (...a: unknown[]) => net.Socket).call(this, ...(cb ? [cb] : []));
    } as net.Socket['end'];
  }

  /** Neither side's Close frame has gone out yet. */
  get open(): boolean {
    return this.frames.isWebSocket && !this.frames.closeSent && !this.#closed;
  }

  /**
   * Send a Close frame with `code` at the next frame boundary (at once when
   * the app is between frames); returns false when this is not a WebSocket or
   * a Close frame has already been sent.
   */
  close(code: number, reason: string): boolean {
    if (!this.open || this.#pending) return false;
    this.#pending = closeFrame(code, reason);
    this.#flushPending();
    return true;
  }

  /**
   * Say goodbye: a Close frame with 1001 "going away" at a moment when no
   * message of the client is likely in flight (see QUIET_MS); then the app's
   * WebSocket library ends the connection when the client's Close frame
   * arrives, and if it does not, corral does. A connection already closing
   * (the app sent its own Close frame) only gets the deadline.
   */
  goAway(reason: string): void {
    const socket = this.socket;
    const deadline = (): void => {
      setTimeout(() => {
        socket.end();
        setTimeout(() => socket.destroy(), CLOSE_HANDSHAKE_MS).unref();
      }, CLOSE_HANDSHAKE_MS).unref();
    };
    if (!this.open) return deadline();
    let heard = false;
    let sent = false;
    const send = (): void => {
      if (sent) return;
      sent = true;
      clearTimeout(quiet);
      clearTimeout(cap);
      socket.off('data', onData);
      this.#afterWrite = null;
      this.close(GOING_AWAY, reason);
      deadline();
    };
    const onData = (): void => {
      heard = true;
      clearTimeout(quiet);
      quiet = setTimeout(send, QUIET_MS);
    };
    // The app answered what the client said last: once its writes of this turn are done, say goodbye.
    this.#afterWrite = () => {
      if (!heard) return;
      heard = false;
      setImmediate(send);
    };
    // Ahead of the app's library, which answers from its own 'data' listener.
    socket.prependListener('data', onData);
    let quiet: NodeJS.Timeout | undefined;
    const cap = setTimeout(send, MAX_WAIT_MS);
  }

  #flushPending(): void {
    if (!this.#pending || !this.frames.atBoundary || this.socket.destroyed) return;
    const frame = this.#pending;
    this.#pending = null;
    this.frames.feed(frame);
    (this.#write as (...a: unknown[]) => boolean).call(this.socket, frame);
    this.#closed = true;
  }
}
