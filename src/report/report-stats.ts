/**
 * The bounded accumulators of the report's streaming pass: each holds a fixed amount of state however
 * many rows go through it, and gives the same answer for the same rows in any order (sampling is by a
 * seeded hash of the row's id, not by arrival).
 */

/** 32-bit FNV-1a of `text` mixed with `seed`: the sampling key of a row, stable across runs and orders. */
export function hash32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // A final avalanche, so ids that differ in their last character do not land in neighbouring ranks.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Whether the row keyed `key` is in a seeded sample of `rate` (0..1) of all rows. */
export function sampled(key: string, rate: number, seed: number): boolean {
  return rate >= 1 || hash32(key, seed) < rate * 0x1_0000_0000;
}

/**
 * The `capacity` items with the smallest seeded hash of their key (bottom-k sampling): a uniform random
 * sample that does not depend on the order items arrive in.
 */
export class Reservoir<T> {
  private readonly items: { rank: number; item: T }[] = [];
  seen = 0;

  constructor(
    readonly capacity: number,
    private readonly seed: number,
  ) {}

  /** `make` runs only for items that enter, so the caller can defer building a costly summary. */
  offer(key: string, make: () => T): void {
    this.seen++;
    const rank = hash32(key, this.seed);
    const items = this.items;
    if (items.length >= this.capacity && rank >= items[items.length - 1]!.rank) return;
    let at = items.length;
    while (at > 0 && items[at - 1]!.rank > rank) at--;
    items.splice(at, 0, { rank, item: make() });
    if (items.length > this.capacity) items.pop();
  }

  values(): T[] {
    return this.items.map((entry) => entry.item);
  }
}

/**
 * Numbers seen: count, sum, min, max exactly, and a bottom-k sample of the values for quantiles and
 * histograms (exact while fewer than `capacity` values were seen).
 */
export class NumberSample {
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  private readonly sample: Reservoir<number>;

  constructor(capacity: number, seed: number) {
    this.sample = new Reservoir(capacity, seed);
  }

  add(key: string, value: number): void {
    if (!Number.isFinite(value)) return;
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    this.sample.offer(key, () => value);
  }

  get exact(): boolean {
    return this.sample.seen <= this.sample.capacity;
  }

  values(): number[] {
    return this.sample.values().sort((a, b) => a - b);
  }

  summary(bins = 30): NumberSummary | undefined {
    if (this.count === 0) return undefined;
    const values = this.values();
    return {
      count: this.count,
      mean: this.sum / this.count,
      min: this.min,
      max: this.max,
      p50: quantile(values, 0.5),
      p90: quantile(values, 0.9),
      p99: quantile(values, 0.99),
      sampled: values.length,
      exact: this.exact,
      histogram: histogramOf(values, this.count, bins),
    };
  }
}

export interface NumberSummary {
  readonly count: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  /** Values the quantiles and histogram were computed from; `count` when `exact`. */
  readonly sampled: number;
  readonly exact: boolean;
  readonly histogram: Histogram;
}

/** Bars: `counts[i]` values in [edges[i], edges[i+1]), the last bar closed. */
export interface Histogram {
  readonly edges: readonly number[];
  readonly counts: readonly number[];
}

/** Nearest-rank quantile of sorted values. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * Equal-width bars over the sample's range, scaled up to `total` when the values are a sample. Few
 * distinct integers (a judge's 1-10 scale) get one bar each, so a score's bar is that score.
 */
export function histogramOf(sorted: readonly number[], total: number, bins: number): Histogram {
  if (sorted.length === 0) return { edges: [], counts: [] };
  const lo = sorted[0]!;
  const hi = sorted[sorted.length - 1]!;
  const integers = sorted.every(Number.isInteger);
  let edges: number[];
  if (integers && hi - lo < bins) {
    edges = Array.from({ length: hi - lo + 2 }, (_, i) => lo + i);
  } else if (hi === lo) {
    edges = [lo, lo + 1];
  } else {
    const width = (hi - lo) / bins;
    edges = Array.from({ length: bins + 1 }, (_, i) => lo + i * width);
  }
  const counts = new Array<number>(edges.length - 1).fill(0);
  const last = counts.length - 1;
  for (const value of sorted) {
    let at = Math.floor(((value - lo) / (edges[edges.length - 1]! - lo)) * counts.length);
    if (integers && hi - lo < bins) at = value - lo;
    counts[Math.min(last, Math.max(0, at))]!++;
  }
  const scale = total / sorted.length;
  return { edges, counts: scale === 1 ? counts : counts.map((count) => Math.round(count * scale)) };
}

/**
 * Lengths in fixed geometric bars (four a doubling, from 1 to 2^20), exact however many rows: lengths
 * of text fields span four orders of magnitude, and accepted and rejected rows share the bars.
 */
export class LengthHistogram {
  static readonly EDGES: readonly number[] = [0, ...Array.from({ length: 81 }, (_, i) => Math.round(2 ** (i / 4)))].filter(
    (edge, i, all) => i === 0 || edge > all[i - 1]!,
  );
  readonly counts = new Array<number>(LengthHistogram.EDGES.length).fill(0);
  count = 0;
  sum = 0;

  add(length: number): void {
    const edges = LengthHistogram.EDGES;
    let lo = 0;
    let hi = edges.length - 1;
    // The last edge not above `length`: its bar holds it.
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (edges[mid]! <= length) lo = mid;
      else hi = mid - 1;
    }
    this.counts[lo]!++;
    this.count++;
    this.sum += length;
  }
}

/** Counts by key, for at most `capacity` keys; the rest are added up under `others`. */
export class CappedCounter {
  readonly counts = new Map<string, number>();
  others = 0;

  constructor(private readonly capacity: number) {}

  add(key: string, by = 1): void {
    const now = this.counts.get(key);
    if (now !== undefined) this.counts.set(key, now + by);
    else if (this.counts.size < this.capacity) this.counts.set(key, by);
    else this.others += by;
  }

  /** Entries by count, largest first, then by key. */
  sorted(): [string, number][] {
    return [...this.counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  }
}

/**
 * Whether a key was seen lately, in two generations of at most `capacity` keys each: bounded memory,
 * exact for keys that come back within `capacity` new keys (the siblings of a fan-out, committed together).
 */
export class RecentKeys {
  private current = new Set<number>();
  private previous = new Set<number>();

  constructor(private readonly capacity: number) {}

  /**
   * True the first time `key` is seen (within the window); false when it was seen before. Keys are held
   * as 31-bit hashes (small integers, no allocation): two keys collide once in about 16,000 sightings.
   */
  firstSight(key: string): boolean {
    const h = hash32(key, 1) >>> 1;
    if (this.current.has(h) || this.previous.has(h)) return false;
    if (this.current.size >= this.capacity) {
      this.previous = this.current;
      this.current = new Set();
    }
    this.current.add(h);
    return true;
  }
}
