/**
 * Restart back-off and the crash-loop rule: pure functions, so the
 * supervisor's decisions can be unit-tested without processes or clocks.
 */
export interface BackoffPolicy {
  /** Delay before the second consecutive restart of a slot; doubles after. */
  initialMs: number;
  maxMs: number;
  /** A worker that stayed up this long resets its slot's failure count. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 15_000, resetAfterMs: 30_000 };

/**
 * Delay before restarting a slot that has failed `consecutiveFailures` times
 * in a row (1 = the first failure: replaced at once).
 */
export function restartDelay(consecutiveFailures: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  if (consecutiveFailures <= 1) return 0;
  const exp = Math.min(consecutiveFailures - 2, 30);
  return Math.min(policy.initialMs * 2 ** exp, policy.maxMs);
}

/** The failure count a slot carries into its next failure. */
export function failuresAfterExit(
  previousFailures: number,
  upMs: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
): number {
  return (upMs >= policy.resetAfterMs ? 0 : previousFailures) + 1;
}

/** Boot failures before any worker was ever ready that make the app fatal. */
export const FATAL_BOOT_FAILURES = 3;

/**
 * Before the cluster has ever served, repeated boot failures mean the app
 * cannot start (syntax error, missing module, port in use): stop instead of
 * restarting forever. After it has served once, crashes only back off.
 */
export function isCrashLoop(everReady: boolean, bootFailures: number): boolean {
  return !everReady && bootFailures >= FATAL_BOOT_FAILURES;
}
