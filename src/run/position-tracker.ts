import type { SourceProgress } from "../io/manifest.ts";

const INITIAL_WINDOW_BITS = 4096;

/**
 * Which positions of one source are finished: all below the watermark, and a bitmap of those above it
 * (records finish out of order: rejects before accepted rows of one batch, async stages as answers come
 * back). One bit per position from the watermark to the highest finished one, in a ring that grows
 * while an old record is still in flight: a record stuck for a million positions costs 128 KB, not a set
 * entry per finished record. O(1) amortised per record, and nothing allocated per record.
 */
export class PositionTracker {
  private mark: number;
  private bits = new Uint32Array(INITIAL_WINDOW_BITS / 32);
  /** Positions finished above the watermark. */
  private above = 0;

  constructor(progress?: SourceProgress) {
    this.mark = progress?.watermark ?? 0;
    for (const position of progress?.done ?? []) this.finish(position);
  }

  get watermark(): number {
    return this.mark;
  }

  isDone(position: number): boolean {
    if (position < this.mark) return true;
    if (this.above === 0 || position - this.mark >= this.windowBits) return false;
    return this.isSet(position);
  }

  finish(position: number): void {
    if (position < this.mark) return;
    if (position !== this.mark) {
      if (position - this.mark >= this.windowBits) this.widen(position - this.mark + 1);
      if (this.isSet(position)) return;
      this.bits[this.wordOf(position)]! |= 1 << (position & 31);
      this.above++;
      return;
    }
    this.mark++;
    while (this.above > 0 && this.isSet(this.mark)) {
      this.bits[this.wordOf(this.mark)]! &= ~(1 << (this.mark & 31));
      this.above--;
      this.mark++;
    }
  }

  progress(): SourceProgress {
    const done: number[] = [];
    for (let position = this.mark + 1; done.length < this.above; position++) if (this.isSet(position)) done.push(position);
    return { watermark: this.mark, done };
  }

  private get windowBits(): number {
    return this.bits.length * 32;
  }

  private wordOf(position: number): number {
    return (position % this.windowBits) >>> 5;
  }

  private isSet(position: number): boolean {
    return (this.bits[this.wordOf(position)]! & (1 << (position & 31))) !== 0;
  }

  /** A ring of at least `span` bits holding the same finished positions (they sit elsewhere in a wider ring). */
  private widen(span: number): void {
    const finished = this.above > 0 ? this.progress().done : [];
    let words = this.bits.length * 2;
    while (words * 32 < span) words *= 2;
    this.bits = new Uint32Array(words);
    for (const position of finished) this.bits[this.wordOf(position)]! |= 1 << (position & 31);
  }
}
