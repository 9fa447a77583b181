export interface Timer {
  cancel(): void;
}

/** Time as the supervisor sees it; tests pass a fake one. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
}

/**
 * Timers whose callbacks run only after pending I/O has been read. When a
 * process resumes from SIGSTOP, a VM pause or a long synchronous stretch,
 * libuv runs expired timers before it polls its pipes: a watchdog judging
 * then would not have seen the heartbeats waiting in them. Deferring the
 * callback to the check phase (setImmediate) lets the poll phase of the same
 * loop turn deliver them first; an event that re-arms the timer meanwhile
 * cancels the deferred callback too.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    let immediate: NodeJS.Immediate | undefined;
    const t = setTimeout(() => {
      immediate = setImmediate(fn);
    }, ms);
    return {
      cancel: () => {
        clearTimeout(t);
        if (immediate !== undefined) clearImmediate(immediate);
      },
    };
  },
};
