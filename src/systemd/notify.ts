import { spawn } from 'node:child_process';
import type { ClusterHandle } from '../primary/run.js';

/**
 * Readiness for systemd's Type=notify: READY=1 once every app serves,
 * RELOADING=1 / READY=1 around a rolling reload, STOPPING=1 when the drain
 * begins.
 *
 * Node cannot send the Unix datagram sd_notify() uses (`dgram` has no
 * AF_UNIX), so each notification is one run of `systemd-notify`, one at a
 * time and in order. Run as root it sends with the primary's own pid; as
 * another user it sends with its own, which systemd accepts only with
 * NotifyAccess=all and attributes only while the sender is alive; it waits
 * for the manager to have read the message (BARRIER=1, systemd >= 246), so
 * it is. The test with a fake NOTIFY_SOCKET checks exactly that.
 */

/** Sends one notification; resolves once the manager has it. */
export type NotifySend = (fields: string[]) => Promise<void>;

export type ServiceState = 'starting' | 'ready' | 'reloading' | 'stopping';

const SEND_TIMEOUT_MS = 10_000;

export function systemdNotify(socket: string, mainPid = process.pid, command = 'systemd-notify'): NotifySend {
  return (fields) =>
    new Promise((resolve, reject) => {
      const child = spawn(command, [`--pid=${mainPid}`, ...fields], {
        env: { ...process.env, NOTIFY_SOCKET: socket },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), SEND_TIMEOUT_MS);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(stderr.trim() || `${command} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`));
      });
    });
}

/** A notification field's value on one line: sd_notify fields are newline-separated. */
const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, '; ');

export class ServiceNotifier {
  readonly #send: NotifySend;
  readonly #describe: () => string;
  readonly #warn: (message: string) => void;
  #started = false;
  #stopping = false;
  readonly #reloading = new Set<string>();
  #note = '';
  #sent: ServiceState = 'starting';
  #scheduled = false;
  #queue: Promise<void> = Promise.resolve();
  #broken = false;

  constructor(send: NotifySend, describe: () => string, warn: (message: string) => void) {
    this.#send = send;
    this.#describe = describe;
    this.#warn = warn;
  }

  /**
   * The notifier for this process when systemd asked for notifications.
   * NOTIFY_SOCKET is taken out of the environment so the workers (the app)
   * do not inherit it and announce readiness on the primary's behalf.
   */
  static fromEnv(env: NodeJS.ProcessEnv, describe: () => string, warn: (message: string) => void): ServiceNotifier | null {
    const socket = env.NOTIFY_SOCKET;
    if (!socket) return null;
    delete env.NOTIFY_SOCKET;
    return new ServiceNotifier(systemdNotify(socket), describe, warn);
  }

  /** Every app serves: READY=1, and follow their reloads and stop from now on. */
  watch(clusters: readonly ClusterHandle[]): void {
    for (const c of clusters) {
      c.on('reload:start', () => this.reloadStarted(c.name));
      c.on('reload:done', () => this.reloadEnded(c.name));
      c.on('reload:failed', ({ error }) => this.reloadEnded(c.name, `${c.name}: reload failed (${error}); the previous workers keep serving`));
      c.on('stopping', () => this.stopping());
    }
    this.#started = true;
    this.#schedule();
  }

  reloadStarted(app: string): void {
    this.#reloading.add(app);
    this.#schedule();
  }

  reloadEnded(app: string, note = ''): void {
    // A reload refused before it began (an unreadable release) changed nothing systemd saw.
    if (!this.#reloading.delete(app)) return;
    this.#note = note;
    this.#schedule();
  }

  stopping(): void {
    this.#stopping = true;
    this.#schedule();
  }

  /** Resolves once every notification so far was sent (or `ms` passed). */
  async idle(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#queue, new Promise((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  #state(): ServiceState {
    if (this.#stopping) return 'stopping';
    if (!this.#started) return 'starting';
    return this.#reloading.size > 0 ? 'reloading' : 'ready';
  }

  /** Changes in one tick collapse into one message (a queued reload starting as the last one ends). */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      const state = this.#state();
      if (state === this.#sent || state === 'starting') return;
      this.#sent = state;
      const fields = this.#fields(state);
      this.#queue = this.#queue.then(() => this.#deliver(fields));
    });
  }

  #fields(state: Exclude<ServiceState, 'starting'>): string[] {
    switch (state) {
      case 'ready': {
        const status = [this.#note, this.#describe()].filter(Boolean).join('; ');
        this.#note = '';
        return ['READY=1', `STATUS=${oneLine(status)}`];
      }
      case 'reloading':
        // systemd (Type=notify-reload) checks that the reload began after its signal.
        return ['RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`, `STATUS=${oneLine(`reloading ${[...this.#reloading].join(', ')}`)}`];
      case 'stopping':
        return ['STOPPING=1', 'STATUS=stopping: draining the workers'];
    }
  }

  async #deliver(fields: string[]): Promise<void> {
    if (this.#broken) return;
    try {
      await this.#send(fields);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') {
        this.#broken = true;
        this.#warn('NOTIFY_SOCKET is set but systemd-notify is not on PATH, so systemd never hears READY=1; install systemd-notify or use Type=simple in the unit');
      } else {
        this.#warn(`could not notify systemd (${fields[0]}): ${e.message}`);
      }
    }
  }
}

/** What `systemctl status` shows in its Status: line. */
export function describeClusters(clusters: readonly ClusterHandle[]): string {
  return clusters
    .map((c) => {
      const s = c.status();
      return `${s.name}: ${s.totals.ready}/${s.desired} workers ready, generation ${s.generation}`;
    })
    .join(', ');
}
