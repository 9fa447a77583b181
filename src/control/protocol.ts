/**
 * The control protocol: newline-delimited JSON over a Unix socket, one
 * request per line, each answered by one response carrying the same `id`.
 * Versioned so an old CLI talking to a newer primary fails clearly.
 */
export const PROTOCOL_VERSION = 1;
/** A request line longer than this is refused and the connection closed. */
export const MAX_LINE_BYTES = 64 * 1024;

export type RequestId = string | number;

export type ControlCommand =
  | { cmd: 'ping' }
  | { cmd: 'status' }
  | { cmd: 'reload'; hard?: boolean }
  | { cmd: 'scale'; workers: number; force?: boolean }
  | { cmd: 'scale'; delta: number; force?: boolean }
  | { cmd: 'stop' }
  /** The last `lines` log lines (as progress lines), then, with `follow`, every new one until the client leaves. */
  | { cmd: 'logs'; lines: number; follow: boolean };

export type ControlRequest = ControlCommand & { v: typeof PROTOCOL_VERSION; id: RequestId };

export interface ControlErrorBody {
  code: string;
  message: string;
}

/**
 * One final response per request. Before it, a long-running command may
 * send progress lines (`{v, id, progress}`), e.g. the deadline a stop or a
 * reload will keep, so that the client can bound its wait honestly.
 */
export type ControlResponse =
  | { v: typeof PROTOCOL_VERSION; id: RequestId | null; ok: true; result: unknown }
  | { v: typeof PROTOCOL_VERSION; id: RequestId | null; ok: false; error: ControlErrorBody };

export interface ControlProgress {
  v: typeof PROTOCOL_VERSION;
  id: RequestId;
  progress: Record<string, unknown>;
}

export class ProtocolError extends Error {
  readonly code = 'E_PROTOCOL';
  constructor(
    message: string,
    readonly id: RequestId | null = null,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

function isId(v: unknown): v is RequestId {
  return (typeof v === 'string' && v.length <= 64) || (typeof v === 'number' && Number.isSafeInteger(v));
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** Parse one request line into a typed request, or throw a ProtocolError naming the problem. */
export function parseRequest(line: string): ControlRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ProtocolError('request is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProtocolError('request must be a JSON object');
  const m = value as Record<string, unknown>;
  const id = isId(m.id) ? m.id : null;
  if (id === null) throw new ProtocolError('request needs an "id" (string or integer)');
  if (m.v !== PROTOCOL_VERSION) throw new ProtocolError(`unsupported protocol version ${JSON.stringify(m.v)}; this primary speaks v${PROTOCOL_VERSION}`, id);
  switch (m.cmd) {
    case 'ping':
    case 'status':
    case 'stop':
      return { v: PROTOCOL_VERSION, id, cmd: m.cmd };
    case 'reload':
      if (m.hard !== undefined && typeof m.hard !== 'boolean') throw new ProtocolError('reload: "hard" must be true or false', id);
      return { v: PROTOCOL_VERSION, id, cmd: 'reload', hard: m.hard === true };
    case 'logs':
      if (!isCount(m.lines) || m.lines < 0) throw new ProtocolError('logs needs a "lines" count (0 or more)', id);
      if (typeof m.follow !== 'boolean') throw new ProtocolError('logs: "follow" must be true or false', id);
      return { v: PROTOCOL_VERSION, id, cmd: 'logs', lines: m.lines, follow: m.follow };
    case 'scale':
      if (m.force !== undefined && typeof m.force !== 'boolean') throw new ProtocolError('scale: "force" must be true or false', id);
      if (isCount(m.workers)) return { v: PROTOCOL_VERSION, id, cmd: 'scale', workers: m.workers, force: m.force === true };
      if (isCount(m.delta)) return { v: PROTOCOL_VERSION, id, cmd: 'scale', delta: m.delta, force: m.force === true };
      throw new ProtocolError('scale needs an integer "workers" or "delta"', id);
    default:
      throw new ProtocolError(`unknown command ${JSON.stringify(m.cmd)}`, id);
  }
}

export function okResponse(id: RequestId, result: unknown): ControlResponse {
  return { v: PROTOCOL_VERSION, id, ok: true, result };
}

export function errorResponse(id: RequestId | null, error: ControlErrorBody): ControlResponse {
  return { v: PROTOCOL_VERSION, id, ok: false, error };
}
