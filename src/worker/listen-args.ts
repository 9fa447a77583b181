/**
 * `server.listen()` takes half a dozen shapes. To add `reusePort` we need the
 * options-object shape; a path, a handle or an fd cannot be reused and pass
 * through untouched.
 */
type Callback = (...args: unknown[]) => void;

export function withReusePort(args: unknown[]): unknown[] {
  const cb = typeof args[args.length - 1] === 'function' ? (args[args.length - 1] as Callback) : undefined;
  const rest = cb ? args.slice(0, -1) : args.slice();
  const first = rest[0];
  let options: Record<string, unknown> | undefined;
  if (typeof first === 'object' && first !== null && !Array.isArray(first)) {
    const obj = first as Record<string, unknown>;
    if (obj.path !== undefined || obj.fd !== undefined || obj._handle !== undefined || obj.handle !== undefined) {
      return args;
    }
    options = { ...obj };
  } else if (first === undefined || first === null || typeof first === 'number' || isPortString(first)) {
    options = { port: first === undefined || first === null ? 0 : Number(first) };
    if (typeof rest[1] === 'string') options.host = rest[1];
    const backlog = typeof rest[1] === 'number' ? rest[1] : rest[2];
    if (typeof backlog === 'number') options.backlog = backlog;
  } else {
    return args;
  }
  options.reusePort = true;
  return cb ? [options, cb] : [options];
}

function isPortString(v: unknown): boolean {
  return typeof v === 'string' && /^\d+$/.test(v);
}
