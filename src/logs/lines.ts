/**
 * Splits a byte stream into whole lines. A line longer than `maxLine` is cut
 * and emitted in pieces, so a worker that never prints a newline cannot make
 * the primary buffer without bound.
 */
export class LineSplitter {
  #partial = '';
  readonly #maxLine: number;
  readonly #emit: (line: string) => void;
  readonly #onOverflow: (() => void) | undefined;
  #overflowed = false;

  /** With `onOverflow`, an overlong line is refused (reported once, then input is ignored) instead of cut. */
  constructor(emit: (line: string) => void, maxLine = 64 * 1024, onOverflow?: () => void) {
    this.#emit = emit;
    this.#maxLine = maxLine;
    this.#onOverflow = onOverflow;
  }

  push(chunk: string): void {
    if (this.#overflowed) return;
    let text = this.#partial + chunk;
    let nl: number;
    while ((nl = text.indexOf('\n')) !== -1) {
      if (nl > this.#maxLine && this.#onOverflow) return this.#overflow();
      this.#emit(text.slice(0, nl).replace(/\r$/, ''));
      text = text.slice(nl + 1);
    }
    if (text.length > this.#maxLine && this.#onOverflow) return this.#overflow();
    while (text.length > this.#maxLine) {
      this.#emit(text.slice(0, this.#maxLine));
      text = text.slice(this.#maxLine);
    }
    this.#partial = text;
  }

  #overflow(): void {
    this.#overflowed = true;
    this.#partial = '';
    this.#onOverflow?.();
  }

  /** Emit what is left when the stream ends without a final newline. */
  flush(): void {
    if (this.#partial !== '') this.#emit(this.#partial);
    this.#partial = '';
  }
}
