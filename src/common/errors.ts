/**
 * One error type per kind, each with a stable `code` so callers branch on
 * `err.code`, never on message text.
 */
export type CorralErrorCode =
  | 'E_USAGE'
  | 'E_CONFIG'
  | 'E_BOOT'
  | 'E_RELOAD'
  | 'E_NAME_TAKEN'
  | 'E_NO_CLUSTER'
  | 'E_PROTOCOL'
  | 'E_STOPPING'
  | 'E_TIMEOUT';

export class CorralError extends Error {
  readonly code: CorralErrorCode;
  constructor(code: CorralErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad input from a user: CLI flags, config values, a missing script. Exit code 2. */
export class UsageError extends CorralError {
  constructor(message: string) {
    super('E_USAGE', message);
  }
}

/** The app could not start (crash loop before any worker was ever ready). */
export class BootError extends CorralError {
  constructor(message: string) {
    super('E_BOOT', message);
  }
}

/** A rolling reload stopped because a replacement worker failed to become ready. */
export class ReloadError extends CorralError {
  constructor(message: string) {
    super('E_RELOAD', message);
  }
}

export function isErrnoException(err: unknown, code?: string): err is NodeJS.ErrnoException {
  return (
    err instanceof Error &&
    typeof (err as NodeJS.ErrnoException).code === 'string' &&
    (code === undefined || (err as NodeJS.ErrnoException).code === code)
  );
}
