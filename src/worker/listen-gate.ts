/**
 * Decides when the app's listen() calls really happen. A regular worker
 * listens at once. A warm spare boots the app completely, but its listens
 * are held (the server object exists; its callback and 'listening' wait)
 * until the primary promotes it: it must never accept a connection before.
 */
export class ListenGate {
  #held: Array<() => void> | null;
  #readyHeld = false;

  /** `onHeld` runs once, when the first listen (or ready()) is held: the spare has booted. */
  constructor(
    open: boolean,
    private readonly onHeld: () => void,
  ) {
    this.#held = open ? null : [];
  }

  get isOpen(): boolean {
    return this.#held === null;
  }

  /** Run `listen` now, or keep it for open(). */
  pass(listen: () => void): void {
    if (this.#held === null) return listen();
    if (this.#held.length === 0 && !this.#readyHeld) this.onHeld();
    this.#held.push(listen);
  }

  /**
   * A script that never listens calls worker.ready(): true when it may be
   * reported now, false when this spare keeps it until promoted.
   */
  passReady(): boolean {
    if (this.#held === null) return true;
    if (this.#held.length === 0 && !this.#readyHeld) this.onHeld();
    this.#readyHeld = true;
    return false;
  }

  /** Perform the held listens, in the order the app made them. Returns whether ready() was held. */
  open(): boolean {
    const held = this.#held ?? [];
    this.#held = null;
    for (const listen of held) listen();
    const ready = this.#readyHeld;
    this.#readyHeld = false;
    return ready;
  }
}
