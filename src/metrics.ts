/** Live counters of one operator; plain mutable numbers because they are bumped per sample on the hot path. */
export interface OperatorCounters {
  readonly name: string;
  in: number;
  out: number;
  rejected: number;
  inFlight: number;
  readonly reasons: Map<string, number>;
}

export interface MetricsSnapshot {
  readonly elapsedMs: number;
  readonly operators: ReadonlyArray<{
    name: string;
    in: number;
    out: number;
    rejected: number;
    inFlight: number;
    reasons: Record<string, number>;
  }>;
  /** Run-wide totals reported by operators (llm.requests, llm.prompt_tokens, llm.cost_usd, ...). */
  readonly totals: Record<string, number>;
  readonly source: { pulled: number; skipped: number; inFlight: number; committed: number; rejected: number };
  /**
   * Observed distributions by name (llm.latency_seconds, ...). Optional because a snapshot assembled
   * elsewhere (a worker's figures summed over its chunks) may carry none.
   */
  readonly histograms?: Record<string, HistogramSnapshot>;
}

/**
 * Upper bounds of every histogram's buckets, in seconds: an answer takes from a millisecond (the local
 * simulator) to minutes (a long reasoning answer). Fixed, so snapshots of different runs add up bucket by bucket.
 */
export const HISTOGRAM_BOUNDS: readonly number[] = Object.freeze([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]);

export interface HistogramSnapshot {
  /** Ascending upper bounds (inclusive); one more, unbounded bucket follows the last. */
  readonly bounds: readonly number[];
  /** Observations per bucket, not cumulative: `counts[i]` fell in (bounds[i-1], bounds[i]], the last above every bound. */
  readonly counts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

interface Histogram {
  readonly counts: number[];
  sum: number;
  count: number;
}

/** Per-run registry: counters per operator in the order they were first seen, plus named totals. */
export class Metrics {
  readonly startedAt = Date.now();
  private readonly operators = new Map<string, OperatorCounters>();
  private readonly totals = new Map<string, number>();
  private readonly histograms = new Map<string, Histogram>();
  readonly source = { pulled: 0, skipped: 0, inFlight: 0, committed: 0, rejected: 0 };

  counters(name: string): OperatorCounters {
    let counters = this.operators.get(name);
    if (!counters) {
      counters = { name, in: 0, out: 0, rejected: 0, inFlight: 0, reasons: new Map() };
      this.operators.set(name, counters);
    }
    return counters;
  }

  add(total: string, amount: number): void {
    this.totals.set(total, (this.totals.get(total) ?? 0) + amount);
  }

  total(name: string): number {
    return this.totals.get(name) ?? 0;
  }

  /** Counts one observation (a latency in seconds, ...) into the named histogram's fixed buckets. */
  observe(histogram: string, value: number): void {
    let h = this.histograms.get(histogram);
    if (!h) {
      h = { counts: new Array<number>(HISTOGRAM_BOUNDS.length + 1).fill(0), sum: 0, count: 0 };
      this.histograms.set(histogram, h);
    }
    let bucket = 0;
    while (bucket < HISTOGRAM_BOUNDS.length && value > HISTOGRAM_BOUNDS[bucket]!) bucket++;
    h.counts[bucket]!++;
    h.sum += value;
    h.count++;
  }

  snapshot(): MetricsSnapshot {
    return {
      elapsedMs: Date.now() - this.startedAt,
      operators: [...this.operators.values()].map((c) => ({
        name: c.name,
        in: c.in,
        out: c.out,
        rejected: c.rejected,
        inFlight: c.inFlight,
        reasons: Object.fromEntries(c.reasons),
      })),
      totals: Object.fromEntries(this.totals),
      source: { ...this.source },
      histograms: Object.fromEntries(
        [...this.histograms].map(([name, h]) => [name, { bounds: HISTOGRAM_BOUNDS, counts: [...h.counts], sum: h.sum, count: h.count }]),
      ),
    };
  }
}

export function countReason(counters: OperatorCounters, reason: string): void {
  counters.rejected++;
  counters.reasons.set(reason, (counters.reasons.get(reason) ?? 0) + 1);
}
