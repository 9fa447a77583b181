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
import { WorkerBridge } from './bridge.js';
import { withReusePort } from './listen-args.js';
import { ServerTracker } from './tracker.js';

/** How often a worker reports; --watchdog should span several of these. */
const HEARTBEAT_MS = 1000;

function send(message: WorkerToPrimary): void {
  if (!process.connected || !process.send) return;
  // The channel may close under us when the primary dies; the worker exits then anyway.
  try {
    process.send(message);
  } catch {
    /* channel closed */
  }
}

function installListenHook(tracker: ServerTracker, reusePort: boolean): void {
  const originalListen = net.Server.prototype.listen;
  net.Server.prototype.listen = function patchedListen(this: net.Server, ...args: unknown[]) {
    tracker.adopt(this);
    this.once('listening', () => {
      const addr = this.address();
      const text = typeof addr === 'string' ? addr : addr ? `${addr.address}:${addr.port}` : '';
      send({ corral: 1, type: 'listening', address: text });
    });
    const finalArgs = reusePort ? withReusePort(args) : args;
    return (originalListen as (...a: unknown[]) => net.Server).apply(this, finalArgs);
  } as typeof net.Server.prototype.listen;
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

function main(): void {
  if (!cluster.isWorker || !process.send) return;
  let beatNow = (): void => {};
  // Report at once when max-requests is reached instead of on the next beat.
  const tracker = new ServerTracker(Number(process.env[ENV.requestLimit]) || Infinity, () => setImmediate(() => beatNow()));
  installListenHook(tracker, process.env[ENV.strategy] === 'reuseport');
  beatNow = startHeartbeat(tracker, HEARTBEAT_MS);

  // Ctrl-C in a terminal signals the whole process group; the primary
  // coordinates the graceful stop, so a worker must not die on it first.
  process.on('SIGINT', () => {});

  const bridge = new WorkerBridge(send);
  WorkerBridge.install(bridge);
  process.on('message', (message: unknown) => {
    if (!isPrimaryMessage(message)) return;
    switch (message.type) {
      case 'drain':
        // Hooks run once in-flight requests are done, so a hook may close the pools they used
        // and say goodbye on its WebSockets and raw connections.
        return tracker.drain(message.idleCloseMs, () =>
          void bridge.runHooks(message.reason).then(() => tracker.finish(() => process.exit(0))),
        );
      case 'reply':
        return bridge.settle(message.id, message.ok, message.ok ? message.result : message.error);
      case 'message':
        bridge.events.emit('message', message.payload, message.from);
        return;
    }
  });
}

main();
