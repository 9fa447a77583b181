// Compiled (never run) by test/integration/types.test.js: the published
// declarations must type an embedding app and a worker script.
import { start, type ClusterHandle, type ClusterStatus, type StartOptions, ReloadError } from 'corral';
import { worker, type ShutdownHook } from 'corral/worker';

const options: StartOptions = { script: 'server.js', workers: 'auto', strategy: 'os', grace: 5000, maxMemory: 512 * 1024 * 1024 };

export async function primary(): Promise<number> {
  const cluster: ClusterHandle = await start(options);
  cluster.on('worker:exit', (e) => console.log(e.slot, e.pid, e.reason, e.code, e.signal));
  cluster.on('reload:failed', (e) => console.log(e.generation, e.error));
  cluster.onRequest('sum', (payload, from) => (payload as number[]).reduce((a, b) => a + b, 0) + from.slot);
  const reached: number = await cluster.scale(3);
  try {
    await cluster.reload();
  } catch (err) {
    if (err instanceof ReloadError) console.log(err.code);
  }
  const status: ClusterStatus = cluster.status();
  console.log(reached, status.workers.map((w) => [w.pid, w.state, w.restartReasons.crash ?? 0]));
  cluster.broadcast({ flush: true });
  return cluster.stop();
}

export async function inWorker(): Promise<void> {
  const hook: ShutdownHook = async (reason) => console.log(reason);
  worker.onShutdown(hook);
  worker.on('message', (payload, from) => console.log(payload, from === 'primary' ? 'primary' : from + 1));
  const answer: unknown = await worker.request('sum', [1, 2], { timeout: 1000 });
  worker.broadcast({ answer });
  if (!worker.isPrimaryManaged) console.log(worker.id + worker.count);
  worker.ready();
}

// @ts-expect-error: workers must be a number or 'auto'
export const bad: StartOptions = { script: 'x.js', workers: 'four' };
