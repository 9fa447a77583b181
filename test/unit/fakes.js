// Fakes for the supervisor's edges: a manual clock, a spawner that records
// what it was asked to do, and a sink that collects log lines.
export class FakeClock {
  t = 1_000_000;
  timers = [];
  now() {
    return this.t;
  }
  setTimeout(fn, ms) {
    const timer = { at: this.t + ms, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }
  /** Move time forward, firing due timers in order. */
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => !x.cancelled && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.cancelled = true;
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }
}

export class FakeSpawner {
  procs = [];
  nextPid = 100;
  /** What release() names now; a test "deploys" by changing it (in place: leave it). */
  releaseId = 'r1';
  releaseError = null;
  release() {
    if (this.releaseError) throw this.releaseError;
    return { id: this.releaseId, cwd: `/srv/${this.releaseId}`, script: `/srv/${this.releaseId}/app.js` };
  }
  /** When set, the next spawn creates no process (pid undefined) and reports this error on failSpawn(). */
  failNext = null;
  spawn(request, events) {
    const failed = this.failNext;
    this.failNext = null;
    const proc = {
      pid: failed ? undefined : this.nextPid++,
      slot: request.slot,
      release: request.release?.id,
      events,
      sent: [],
      signals: [],
      send: (m) => proc.sent.push(m),
      kill: (sig) => {
        if (proc.pid === undefined) throw new Error('a process that does not exist was signalled');
        proc.signals.push(sig);
      },
      releaseOutput: () => {},
      assignSlot: (slot) => (proc.slot = slot),
      spare: request.spare === true,
      booted: () => events.message({ corral: 1, type: 'held' }),
      takeHeldOutput: () => proc.held ?? [],
      takeCrashOutput: () => proc.crashOutput ?? [],
      recentErrors: () => [],
      // helpers for tests
      ready: () => events.message({ corral: 1, type: 'listening', address: '127.0.0.1:1' }),
      heartbeat: (stats = {}) =>
        events.message({ corral: 1, type: 'heartbeat', stats: { rss: 1, heapUsed: 1, heapTotal: 1, cpuUser: 0, cpuSystem: 0, loopDelayMean: 0, loopDelayMax: 0, loopUtilization: 0, connections: 0, requests: 0, ...stats } }),
      failSpawn: () => events.spawnError(failed ?? new Error('spawn EAGAIN')),
      die: (code = 1, signal = null) => {
        events.disconnect();
        events.exit(code, signal);
      },
    };
    this.procs.push(proc);
    return proc;
  }
  get last() {
    return this.procs[this.procs.length - 1];
  }
  inSlot(slot) {
    return this.procs.filter((p) => p.slot === slot);
  }
}

export class MemorySink {
  records = [];
  write(r) {
    this.records.push(r);
    return true;
  }
  onDrain() {}
  get text() {
    return this.records.map((r) => r.msg).join('\n');
  }
}

export function config(over = {}) {
  return {
    name: 't',
    script: '/app.js',
    strategy: 'os',
    workers: 2,
    bootTimeout: 5000,
    grace: 3000,
    killTimeout: 1000,
    watchdog: 0,
    maxMemory: undefined,
    maxRequests: undefined,
    maxRequestsJitter: 0,
    reloadParallel: 1,
    reloadVerify: 0,
    idleCloseMs: 1000,
    ...over,
  };
}

export const tick = () => new Promise((r) => setImmediate(r));
