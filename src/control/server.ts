import { unlinkSync, chmodSync } from 'node:fs';
import net from 'node:net';
import { CorralError, isErrnoException } from '../common/errors.js';
import { LineSplitter } from '../logs/lines.js';
import { ensurePrivateHome, socketPath } from './paths.js';
import { MAX_LINE_BYTES, PROTOCOL_VERSION, ProtocolError, errorResponse, okResponse, parseRequest, type ControlProgress, type ControlRequest, type ControlResponse } from './protocol.js';

/**
 * Answers one request; `progress` sends an intermediate line before the
 * final answer (false: not sent, the client is too far behind reading);
 * `gone` aborts when the client's connection closes.
 */
export type CommandHandler = (request: ControlRequest, progress: (data: Record<string, unknown>) => boolean, gone: AbortSignal) => Promise<unknown>;

/** Progress lines beyond this much unread output are dropped (a `logs --follow` reader that stopped reading). */
const MAX_UNREAD_BYTES = 1024 * 1024;

/** On close, how long answers still being computed may take to be written. */
const CLOSE_FLUSH_MS = 1000;

/** Is something answering on this socket? A refused or missing socket is stale. */
export function probeSocket(file: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(file);
    const done = (alive: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(alive);
    };
    const timer = setTimeout(() => done(true), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * The primary's end of the control channel: a Unix socket, owner-only, that
 * turns each request line into a call of `handle` and writes one response.
 * Garbage or oversized input gets an error reply, never a crash or a stall.
 */
export class ControlServer {
  readonly path: string;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #inFlight = new Set<Promise<unknown>>();

  private constructor(file: string, handle: CommandHandler) {
    this.path = file;
    this.#server = net.createServer((socket) => this.#serve(socket, handle));
  }

  static async listen(home: string, name: string, handle: CommandHandler): Promise<ControlServer> {
    ensurePrivateHome(home);
    const file = socketPath(home, name);
    if (await probeSocket(file)) {
      throw new CorralError('E_NAME_TAKEN', `a cluster named "${name}" is already running (socket ${file}); stop it with 'corral stop ${name}' or choose another --name`);
    }
    removeStale(file);
    const server = new ControlServer(file, handle);
    await new Promise<void>((resolve, reject) => {
      server.#server.once('error', reject);
      // The directory is 0700 already; umask closes the window before chmod.
      const oldMask = process.umask(0o177);
      try {
        server.#server.listen(file, () => resolve());
      } finally {
        process.umask(oldMask);
      }
    });
    chmodSync(file, 0o600);
    return server;
  }

  /**
   * Stop accepting, let answers under way (a stop's final verdict) be
   * written, then close every connection and remove the socket file.
   */
  async close(): Promise<void> {
    this.#server.close();
    removeStale(this.path);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_FLUSH_MS)));
    await Promise.race([Promise.allSettled([...this.#inFlight]), bound]);
    clearTimeout(timer);
    await Promise.all([...this.#sockets].map((s) => endGracefully(s)));
  }

  #serve(socket: net.Socket, handle: CommandHandler): void {
    this.#sockets.add(socket);
    const gone = new AbortController();
    socket.once('close', () => {
      this.#sockets.delete(socket);
      gone.abort();
    });
    socket.on('error', () => socket.destroy());
    socket.setEncoding('utf8');
    const reply = (response: ControlResponse | ControlProgress): boolean => {
      if (socket.destroyed || !socket.writable) return false;
      if ('progress' in response && socket.writableLength > MAX_UNREAD_BYTES) return false;
      socket.write(`${JSON.stringify(response)}\n`);
      return true;
    };
    const splitter = new LineSplitter(
      (line) => {
        if (line.trim() === '') return;
        const answer = this.#answer(line, handle, reply, gone.signal).then(reply);
        this.#inFlight.add(answer);
        void answer.finally(() => this.#inFlight.delete(answer));
      },
      MAX_LINE_BYTES,
      () => {
        reply(errorResponse(null, { code: 'E_PROTOCOL', message: `request line longer than ${MAX_LINE_BYTES} bytes` }));
        socket.end();
      },
    );
    socket.on('data', (chunk: string) => splitter.push(chunk));
  }

  async #answer(line: string, handle: CommandHandler, send: (p: ControlProgress) => boolean, gone: AbortSignal): Promise<ControlResponse> {
    let request: ControlRequest;
    try {
      request = parseRequest(line);
    } catch (err) {
      const e = err as ProtocolError;
      return errorResponse(e.id ?? null, { code: e.code, message: e.message });
    }
    try {
      const { id } = request;
      return okResponse(id, await handle(request, (progress) => send({ v: PROTOCOL_VERSION, id, progress }), gone));
    } catch (err) {
      const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'E_INTERNAL';
      return errorResponse(request.id, { code, message: err instanceof Error ? err.message : String(err) });
    }
  }
}

function endGracefully(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => socket.destroy(), CLOSE_FLUSH_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end();
  });
}

function removeStale(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if (!isErrnoException(err, 'ENOENT')) throw err;
  }
}
