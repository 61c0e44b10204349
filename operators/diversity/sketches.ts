/**
 * Bounded-memory summaries used by the diversity tracker: a distinct counter (exact up to a cap, then
 * HyperLogLog), a space-saving top-k counter, a seeded reservoir and a length histogram.
 */
import { ConfigError } from "../../src/index.ts";
import { float64FromBase64, toBase64, uint8FromBase64 } from "./state-image.ts";

/** A seeded generator that can say where it is: `seededRandom(random.state())` continues the same sequence. */
export type SeededRandom = (() => number) & { readonly state: () => number };

/** Seeded uniform generator in [0, 1) (mulberry32): small, fast and deterministic across platforms. */
export function seededRandom(seed: number): SeededRandom {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Object.assign(next, { state: () => s >>> 0 });
}

/**
 * HyperLogLog (Flajolet et al. 2007) over two independent 32-bit hashes: the first picks the register,
 * the second gives the rank. Standard error about 1.04 / sqrt(2^precision): 0.8% at precision 14 (16 KiB).
 */
export class HyperLogLog {
  readonly precision: number;
  private readonly registers: Uint8Array;

  constructor(precision = 14) {
    if (!Number.isInteger(precision) || precision < 4 || precision > 18) {
      throw new ConfigError(`HyperLogLog precision must be an integer in 4..18, got ${precision}`);
    }
    this.precision = precision;
    this.registers = new Uint8Array(1 << precision);
  }

  add(h1: number, h2: number): void {
    const index = h1 >>> (32 - this.precision);
    const rank = Math.clz32(h2) + 1;
    if (rank > this.registers[index]!) this.registers[index] = rank;
  }

  estimate(): number {
    const m = this.registers.length;
    let sum = 0;
    let zeros = 0;
    for (let i = 0; i < m; i++) {
      const r = this.registers[i]!;
      sum += 2 ** -r;
      if (r === 0) zeros++;
    }
    const alpha = 0.7213 / (1 + 1.079 / m);
    const raw = (alpha * m * m) / sum;
    // Small cardinalities: linear counting over empty registers is far more accurate.
    if (raw <= 2.5 * m && zeros > 0) return m * Math.log(m / zeros);
    return raw;
  }

  get bytes(): number {
    return this.registers.byteLength;
  }

  /** A copy of the registers (index from a hash's top bits, rank of the first set bit of the other hash). */
  registerValues(): Uint8Array {
    return this.registers.slice();
  }

  /** The registers, to save with a checkpoint. */
  image(): string {
    return toBase64(this.registers);
  }

  restore(image: string): void {
    const registers = uint8FromBase64(image);
    if (registers.length !== this.registers.length) {
      throw new ConfigError(`saved HyperLogLog has ${registers.length} registers, precision ${this.precision} needs ${this.registers.length}`);
    }
    this.registers.set(registers);
  }
}

export interface DistinctCounterImage {
  /** The exact keys (53-bit integers as float64), or null once the HyperLogLog took over. */
  readonly exact: string | null;
  readonly hll: string;
}

/**
 * Distinct count of hashed items: exact (a Set of 53-bit keys) until `cap` distinct items, then the
 * HyperLogLog that was fed all along takes over and the set is dropped.
 */
export class DistinctCounter {
  private exact: Set<number> | undefined = new Set();
  private readonly hll: HyperLogLog;

  constructor(
    private readonly cap: number,
    precision: number,
  ) {
    this.hll = new HyperLogLog(precision);
  }

  /** Adds an item known by two independent 32-bit hashes. */
  add(h1: number, h2: number): void {
    this.hll.add(h1, h2);
    if (!this.exact) return;
    this.exact.add((h1 >>> 0) * 2097152 + (h2 >>> 11));
    if (this.exact.size > this.cap) this.exact = undefined;
  }

  get count(): number {
    return this.exact ? this.exact.size : Math.round(this.hll.estimate());
  }

  get isExact(): boolean {
    return this.exact !== undefined;
  }

  /** The HyperLogLog's registers (fed from the first item, exact phase included). */
  registerValues(): Uint8Array {
    return this.hll.registerValues();
  }

  image(): DistinctCounterImage {
    return { exact: this.exact ? toBase64(Float64Array.from(this.exact)) : null, hll: this.hll.image() };
  }

  restore(image: DistinctCounterImage): void {
    this.exact = image.exact === null ? undefined : new Set(float64FromBase64(image.exact));
    this.hll.restore(image.hll);
  }
}

/** Tracked items in the counter's own order (which decides evictions on ties): item, count, error. */
export type SpaceSavingImage = ReadonlyArray<readonly [string, number, number]>;

interface Counted {
  count: number;
  /** Upper bound of how much of `count` came from items it replaced. */
  error: number;
}

/**
 * Space-saving top-k (Metwally et al. 2005): at most `capacity` items are tracked; a new item evicts the
 * least counted one and inherits its count as error. Every item with true frequency above n / capacity
 * is tracked, and each count overestimates by at most its `error`.
 */
export class SpaceSaving {
  private readonly items = new Map<string, Counted>();

  constructor(private readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new ConfigError(`top-k capacity must be a positive integer, got ${capacity}`);
  }

  add(item: string): void {
    const known = this.items.get(item);
    if (known) {
      known.count++;
      return;
    }
    if (this.items.size < this.capacity) {
      this.items.set(item, { count: 1, error: 0 });
      return;
    }
    let minItem = "";
    let min: Counted | undefined;
    for (const [key, counted] of this.items) {
      if (!min || counted.count < min.count) {
        min = counted;
        minItem = key;
      }
    }
    this.items.delete(minItem);
    this.items.set(item, { count: min!.count + 1, error: min!.count });
  }

  /** The `k` most counted items, highest first (ties by item, so output is deterministic). */
  top(k: number): Array<{ item: string; count: number; error: number }> {
    return [...this.items]
      .map(([item, c]) => ({ item, count: c.count, error: c.error }))
      .sort((a, b) => b.count - a.count || (a.item < b.item ? -1 : a.item > b.item ? 1 : 0))
      .slice(0, k);
  }

  image(): SpaceSavingImage {
    return [...this.items].map(([item, c]) => [item, c.count, c.error] as const);
  }

  restore(image: SpaceSavingImage): void {
    this.items.clear();
    for (const [item, count, error] of image) this.items.set(item, { count, error });
  }
}

/** Uniform sample of at most `size` items from a stream (Algorithm R), seeded. */
export class Reservoir<T> {
  readonly items: T[] = [];
  seen = 0;

  constructor(
    private readonly size: number,
    private readonly random: () => number,
  ) {}

  add(item: T): void {
    this.seen++;
    if (this.items.length < this.size) {
      this.items.push(item);
      return;
    }
    const slot = Math.floor(this.random() * this.seen);
    if (slot < this.size) this.items[slot] = item;
  }

  /** Puts back saved items and the count of items offered so far. */
  restore(items: readonly T[], seen: number): void {
    this.items.length = 0;
    this.items.push(...items);
    this.seen = seen;
  }
}

/** Upper bounds of the length histogram buckets (words); the last bucket is open. */
export const LENGTH_BUCKETS = [0, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096] as const;

export interface LengthSummary {
  readonly count: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
  /** From a reservoir of the lengths: exact while the stream is no longer than the reservoir. */
  readonly quantiles: { readonly p10: number; readonly p25: number; readonly p50: number; readonly p75: number; readonly p90: number };
  /** `le`: bucket upper bound in words (inclusive), null for the open last bucket. */
  readonly histogram: ReadonlyArray<{ readonly le: number | null; readonly count: number }>;
}

export interface LengthStatsImage {
  readonly count: number;
  readonly sum: number;
  /** null while nothing was counted (JSON has no Infinity). */
  readonly min: number | null;
  readonly max: number | null;
  readonly buckets: readonly number[];
  readonly sample: readonly number[];
  readonly seen: number;
}

/** Length distribution: exact count, mean, min, max and histogram; quantiles from a reservoir. */
export class LengthStats {
  private count = 0;
  private sum = 0;
  private min = Infinity;
  private max = -Infinity;
  private readonly buckets = new Array<number>(LENGTH_BUCKETS.length + 1).fill(0);
  private readonly sample: Reservoir<number>;

  constructor(reservoirSize: number, random: () => number) {
    this.sample = new Reservoir(reservoirSize, random);
  }

  add(length: number): void {
    this.count++;
    this.sum += length;
    if (length < this.min) this.min = length;
    if (length > this.max) this.max = length;
    let bucket = 0;
    while (bucket < LENGTH_BUCKETS.length && length > LENGTH_BUCKETS[bucket]!) bucket++;
    this.buckets[bucket]!++;
    this.sample.add(length);
  }

  image(): LengthStatsImage {
    const empty = this.count === 0;
    return {
      count: this.count,
      sum: this.sum,
      min: empty ? null : this.min,
      max: empty ? null : this.max,
      buckets: [...this.buckets],
      sample: [...this.sample.items],
      seen: this.sample.seen,
    };
  }

  restore(image: LengthStatsImage): void {
    this.count = image.count;
    this.sum = image.sum;
    this.min = image.min ?? Infinity;
    this.max = image.max ?? -Infinity;
    this.buckets.splice(0, this.buckets.length, ...image.buckets);
    this.sample.restore(image.sample, image.seen);
  }

  summary(): LengthSummary {
    const sorted = [...this.sample.items].sort((a, b) => a - b);
    // Nearest-rank quantile: the smallest value with at least q of the sample at or below it.
    const q = (p: number) => (sorted.length === 0 ? 0 : sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!);
    return {
      count: this.count,
      mean: this.count === 0 ? 0 : this.sum / this.count,
      min: this.count === 0 ? 0 : this.min,
      max: this.count === 0 ? 0 : this.max,
      quantiles: { p10: q(0.1), p25: q(0.25), p50: q(0.5), p75: q(0.75), p90: q(0.9) },
      histogram: this.buckets.map((count, i) => ({ le: i < LENGTH_BUCKETS.length ? LENGTH_BUCKETS[i]! : null, count })),
    };
  }
}
