import cluster from 'node:cluster';
import { UsageError } from '../common/errors.js';
import type { Strategy } from '../config/options.js';

export type ConcreteStrategy = Exclude<Strategy, 'auto'>;

/**
 * How connections on the shared port reach the workers. Like node:cluster's
 * RoundRobinHandle and SharedHandle, each strategy is tiny: the primary's
 * scheduling policy plus what the worker runtime must do when the script
 * calls listen().
 */
export interface Balancer {
  readonly name: ConcreteStrategy;
  /** node:cluster scheduling policy, fixed before the first fork. */
  readonly schedulingPolicy: number;
  /** Environment the worker runtime reads to adjust listen(). */
  readonly workerEnv: Record<string, string>;
}

/**
 * UV_TCP_SINGLE_ACCEPT makes libuv accept one connection per wake-up and
 * yield, so a burst of connections is shared between the workers instead of
 * one worker draining the whole accept queue. Without it the benchmark once
 * saw every keep-alive connection of a CPU-bound run land on one worker
 * (1.01x bare on two cores); with it, 1.93x over 5 interleaved rounds.
 */
const BALANCERS: Record<ConcreteStrategy, Balancer> = {
  rr: { name: 'rr', schedulingPolicy: cluster.SCHED_RR, workerEnv: {} },
  os: { name: 'os', schedulingPolicy: cluster.SCHED_NONE, workerEnv: { UV_TCP_SINGLE_ACCEPT: '1' } },
  reuseport: { name: 'reuseport', schedulingPolicy: cluster.SCHED_NONE, workerEnv: { CORRAL_STRATEGY: 'reuseport' } },
};

export function reusePortSupport(version = process.versions.node, platform = process.platform): string | null {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const newEnough = major > 22 || (major === 22 && minor >= 12);
  if (!newEnough) return `--strategy reuseport needs Node >= 22.12 (this is ${version}); use --strategy os or rr, or upgrade Node`;
  if (!['linux', 'freebsd', 'openbsd', 'netbsd', 'dragonfly', 'sunos', 'aix'].includes(platform)) {
    return `--strategy reuseport is not supported on ${platform}; use --strategy os or rr`;
  }
  return null;
}

export interface StrategyChoice {
  balancer: Balancer;
  /** Why auto chose what it chose, for the log. */
  note?: string;
}

/**
 * `auto` takes `os`: workers accept on the shared socket themselves. With a
 * new connection per request it costs about what a single process does per
 * request, where round-robin's hand-off costs ~3.2x (bench/), and unlike
 * reusePort a worker that stops accepting leaves its queued connections to
 * the others, so reloads drop nothing. Its cost: long-lived keep-alive
 * connections spread unevenly (see the README's numbers).
 */
export function chooseStrategy(requested: Strategy, version = process.versions.node, platform = process.platform): StrategyChoice {
  if (requested === 'reuseport') {
    const problem = reusePortSupport(version, platform);
    if (problem) throw new UsageError(problem);
    return { balancer: BALANCERS.reuseport };
  }
  if (requested !== 'auto') return { balancer: BALANCERS[requested] };
  if (platform === 'win32') return { balancer: BALANCERS.rr, note: 'auto: round-robin (Windows shares sockets poorly)' };
  return { balancer: BALANCERS.os, note: 'auto: os (workers accept on the shared socket)' };
}

/**
 * With SO_REUSEPORT each worker has its own accept queue; when a draining
 * worker closes its listener, Linux resets the connections still queued
 * there unless net.ipv4.tcp_migrate_req=1 (Linux >= 5.14) moves them to a
 * sibling. Returns a warning for the log, or null when reloads are safe.
 */
export function reusePortCaveat(read: (file: string) => string | undefined): string | null {
  const value = read('/proc/sys/net/ipv4/tcp_migrate_req')?.trim();
  if (value === '1') return null;
  return 'with --strategy reuseport a reload can reset connections still queued at a retiring worker; ' +
    'set sysctl net.ipv4.tcp_migrate_req=1 (Linux >= 5.14) or use --strategy os for drop-free reloads';
}
