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
}

/** Per-run registry: counters per operator in the order they were first seen, plus named totals. */
export class Metrics {
  readonly startedAt = Date.now();
  private readonly operators = new Map<string, OperatorCounters>();
  private readonly totals = new Map<string, number>();
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
    };
  }
}

export function countReason(counters: OperatorCounters, reason: string): void {
  counters.rejected++;
  counters.reasons.set(reason, (counters.reasons.get(reason) ?? 0) + 1);
}
