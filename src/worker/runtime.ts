/**
 * Preloaded into every worker with `--import`, before the user's script.
 * It watches the servers the script creates (without the script knowing),
 * reports readiness and a heartbeat to the primary, and performs the drain:
 * stop accepting, answer every further request with `Connection: close`,
 * close connections only once they have been idle for a while, then exit.
 */
import cluster from 'node:cluster';
import net from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { ENV, isPrimaryMessage, type WorkerStats, type WorkerToPrimary } from '../common/ipc.js';
import { signalProcess } from '../common/signal.js';
import { WorkerBridge } from './bridge.js';
import { collectAppMetrics } from './metrics.js';
import { withReusePort } from './listen-args.js';
import { ListenGate } from './listen-gate.js';
import { StickyListeners } from './sticky.js';
import { ServerTracker } from './tracker.js';

/** How often a worker reports; --watchdog should span several of these. */
const HEARTBEAT_MS = 1000;

/**
 * `handle`: a raw connection handle travelling with the message (a sticky
 * connection going back). Node does not close a sent native handle, so this
 * copy is closed once sent (or when it cannot be): the connection lives on in
 * the primary's copy, and would otherwise stay open here until this worker exits.
 */
function send(message: WorkerToPrimary, handle?: unknown): void {
  const release = (): void => {
    if (message.type === 'sticky-return') (handle as { close?: () => void } | undefined)?.close?.();
  };
  if (!process.connected || !process.send) return release();
  // The channel may close under us when the primary dies; the worker exits then anyway.
  try {
    if (handle === undefined) process.send(message);
    else process.send(message, handle as net.Socket, {}, release);
  } catch {
    release();
  }
}

function installListenHook(tracker: ServerTracker, gate: ListenGate, reusePort: boolean): void {
  const originalListen = net.Server.prototype.listen;
  net.Server.prototype.listen = function patchedListen(this: net.Server, ...args: unknown[]) {
    tracker.adopt(this);
    const finalArgs = reusePort ? withReusePort(args) : args;
    gate.pass(() => {
      this.once('listening', () => {
        const addr = this.address();
        const text = typeof addr === 'string' ? addr : addr ? `${addr.address}:${addr.port}` : '';
        send({ corral: 1, type: 'listening', address: text });
      });
      (originalListen as (...a: unknown[]) => net.Server).apply(this, finalArgs);
    });
    return this;
  } as typeof net.Server.prototype.listen;
}

/** A spare learns its slot when it is promoted; worker.id reads it from the environment. */
function promote(gate: ListenGate, slot: number, workers: number): void {
  process.env[ENV.workerId] = String(slot);
  process.env[ENV.workers] = String(workers);
  delete process.env[ENV.spare];
  if (gate.open()) send({ corral: 1, type: 'ready' });
}

function startHeartbeat(tracker: ServerTracker, intervalMs: number): () => void {
  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  let lastElu = performance.eventLoopUtilization();
  const beat = (): void => {
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const elu = performance.eventLoopUtilization(lastElu);
    lastElu = performance.eventLoopUtilization();
    const stats: WorkerStats = {
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      heapTotal: mem.heapTotal,
      cpuUser: cpu.user,
      cpuSystem: cpu.system,
      loopDelayMean: Number.isFinite(delay.mean) ? delay.mean / 1e6 : 0,
      loopDelayMax: delay.max / 1e6,
      loopDelayP50: delay.percentile(50) / 1e6,
      loopDelayP99: delay.percentile(99) / 1e6,
      loopUtilization: elu.utilization,
      connections: tracker.connectionCount(),
      requests: tracker.requestCount(),
    };
    delay.reset();
    send({ corral: 1, type: 'heartbeat', stats });
  };
  setInterval(beat, intervalMs).unref();
  setImmediate(beat);
  return beat;
}

/**
 * The drain, started once: by the primary's message, or by a SIGTERM/SIGINT
 * the worker received itself (systemd's control-group kill signals every
 * process of the service at once; `kill <pid>` one worker). Either way
 * in-flight requests finish; then the app's hooks run and the worker exits.
 */
class Drainer {
  #startedAt: number | undefined;
  #graceMs = 0;
  /** Set while the worker keeps its WebSockets open until the primary's `release`. */
  #release: (() => void) | null = null;
  #released = false;

  constructor(
    private readonly tracker: ServerTracker,
    private readonly bridge: WorkerBridge,
  ) {}

  start(reason: string, idleCloseMs: number, graceMs: number, linger = false): boolean {
    if (this.#startedAt !== undefined) return false;
    this.#startedAt = Date.now();
    this.#graceMs = graceMs;
    this.tracker.drain(idleCloseMs, () => (linger ? this.#linger(() => this.#finish(reason)) : this.#finish(reason)));
    return true;
  }

  /** The primary says no worker of an older generation accepts connections any more. */
  release(): void {
    this.#released = true;
    this.#release?.();
  }

  /**
   * During a rolling reload the old workers that are not replaced yet still
   * accept connections. WebSocket clients closed now would reconnect at once,
   * some to such a worker, and be dropped a second time moments later. So the
   * WebSockets stay open (and served) until the primary says every old worker
   * has stopped accepting, and no longer than half the grace.
   */
  #linger(then: () => void): void {
    if (this.#released || this.tracker.upgradedCount() === 0) return then();
    const go = (): void => {
      if (this.#release === null) return;
      this.#release = null;
      clearTimeout(timer);
      then();
    };
    this.#release = go;
    const timer = setTimeout(go, Math.max(0, (this.#startedAt ?? 0) + this.#graceMs / 2 - Date.now()));
  }

  /**
   * Hooks run once in-flight requests are done, so a hook may close the pools
   * they used and say goodbye on its WebSockets and raw connections.
   */
  #finish(reason: string): void {
    void this.bridge.runHooks(reason).then(() => this.tracker.finish(() => process.exit(0)));
  }

  /**
   * A signal during a drain is the primary's escalation once most of the
   * grace has passed (it sends SIGTERM when the grace ends); earlier it is
   * the same group signal arriving after the primary's drain message, and
   * ending the worker then would reset the requests it is finishing.
   */
  isEscalation(): boolean {
    return this.#startedAt !== undefined && Date.now() - this.#startedAt >= this.#graceMs / 2;
  }
}

function handleTerminationSignals(drainer: Drainer): void {
  const graceMs = Number(process.env[ENV.graceMs]) || 10_000;
  const idleCloseMs = Number(process.env[ENV.idleCloseMs]) || 1000;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (drainer.start('signal', idleCloseMs, graceMs)) {
      send({ corral: 1, type: 'draining', signal });
      return;
    }
    if (!drainer.isEscalation()) return;
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    // An app with its own handler for this signal got it too and decides; otherwise the default action ends us.
    if (process.listenerCount(signal) === 0) signalProcess(process.pid, signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

function main(): void {
  if (!cluster.isWorker || !process.send) return;
  let beatNow = (): void => {};
  // Report at once when max-requests is reached instead of on the next beat.
  const sessionElsewhere = process.env[ENV.sticky] ? undefined : () => send({ corral: 1, type: 'session-elsewhere' });
  const tracker = new ServerTracker(Number(process.env[ENV.requestLimit]) || Infinity, () => setImmediate(() => beatNow()), sessionElsewhere);
  const gate = new ListenGate(process.env[ENV.spare] !== '1', () => send({ corral: 1, type: 'held' }));
  installListenHook(tracker, gate, process.env[ENV.strategy] === 'reuseport');
  // listen() on a TCP port reaches node:cluster's _getServer once the gate lets it through; under --sticky that asks
  // corral's primary, so a held spare registers nowhere and gets no connection until it is promoted.
  const sticky = process.env[ENV.sticky] ? new StickyListeners(send) : undefined;
  sticky?.install();
  beatNow = startHeartbeat(tracker, HEARTBEAT_MS);

  const bridge = new WorkerBridge(send, () => {
    if (gate.passReady()) send({ corral: 1, type: 'ready' });
  });
  WorkerBridge.install(bridge);
  const drainer = new Drainer(tracker, bridge);
  handleTerminationSignals(drainer);
  process.on('message', (message: unknown, handle: unknown) => {
    if (!isPrimaryMessage(message)) return;
    switch (message.type) {
      case 'drain':
        drainer.start(message.reason, message.idleCloseMs, message.graceMs, message.linger);
        return;
      case 'release':
        return drainer.release();
      case 'sticky-listening':
        return sticky?.settle(message);
      case 'sticky-connection':
        return sticky?.receive(message, handle);
      case 'reply':
        return bridge.settle(message.id, message.ok, message.ok ? message.result : message.error);
      case 'message':
        bridge.events.emit('message', message.payload, message.from);
        return;
      case 'collect-metrics':
        return void collectAppMetrics(message.id, bridge.metricsSources).then(send);
      case 'promote':
        return promote(gate, message.slot, message.workers);
    }
  });
}

main();
