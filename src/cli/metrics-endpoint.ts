import { InvalidArgumentError } from "commander";
import type { HistogramSnapshot } from "../metrics.ts";
import { serveMetrics, type MetricsServer } from "../report/prometheus.ts";
import type { RunProgress } from "../run/run.ts";

export function portNumber(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535) throw new InvalidArgumentError("expected a port number (0 picks a free one)");
  return parsed;
}

const EMPTY: RunProgress = {
  elapsedMs: 0,
  operators: [],
  totals: {},
  source: { pulled: 0, skipped: 0, inFlight: 0, committed: 0, rejected: 0 },
  inFlight: 0,
  budget: 0,
  expected: undefined,
};

/**
 * `--metrics-port`: what the process has done, for a scraper. A worker runs one chunk after another, each
 * a run of its own whose counts start at 0; the endpoint adds every finished chunk's final figures to the
 * current one's, so the counters it serves only grow over the process's life, as Prometheus expects.
 */
export class MetricsEndpoint {
  private current: (() => RunProgress) | undefined;
  private finished: RunProgress = EMPTY;

  private constructor(private readonly server: MetricsServer) {}

  static async start(port: number, labels: Record<string, string>): Promise<MetricsEndpoint> {
    let endpoint: MetricsEndpoint | undefined;
    const server = await serveMetrics({ port, labels, feed: () => endpoint!.progress() });
    endpoint = new MetricsEndpoint(server);
    return endpoint;
  }

  get url(): string {
    return this.server.url;
  }

  /** Pass as RunOptions.live: each new run's progress takes over from the one before, whose figures are kept. */
  readonly follow = (progress: () => RunProgress): void => {
    if (this.current) this.finished = added(this.finished, this.current());
    this.current = progress;
  };

  progress(): RunProgress {
    return this.current ? added(this.finished, this.current()) : this.finished;
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

/** Counts of `before` and `now` added up; gauges (in flight, budget, the last checkpoint, cost) are `now`'s. */
function added(before: RunProgress, now: RunProgress): RunProgress {
  if (before === EMPTY) return now;
  const operators = new Map(before.operators.map((op) => [op.name, { ...op, inFlight: 0, reasons: { ...op.reasons } }]));
  for (const op of now.operators) {
    const earlier = operators.get(op.name);
    if (!earlier) {
      operators.set(op.name, op);
      continue;
    }
    const reasons = { ...earlier.reasons };
    for (const [reason, count] of Object.entries(op.reasons)) reasons[reason] = (reasons[reason] ?? 0) + count;
    operators.set(op.name, { name: op.name, in: earlier.in + op.in, out: earlier.out + op.out, rejected: earlier.rejected + op.rejected, inFlight: op.inFlight, reasons });
  }
  const totals = { ...before.totals };
  for (const [key, value] of Object.entries(now.totals)) totals[key] = (totals[key] ?? 0) + value;
  const histograms: Record<string, HistogramSnapshot> = { ...before.histograms };
  for (const [name, histogram] of Object.entries(now.histograms ?? {})) {
    const earlier = histograms[name];
    histograms[name] = earlier
      ? { bounds: histogram.bounds, counts: histogram.counts.map((count, i) => count + (earlier.counts[i] ?? 0)), sum: earlier.sum + histogram.sum, count: earlier.count + histogram.count }
      : histogram;
  }
  const source = {
    pulled: before.source.pulled + now.source.pulled,
    skipped: before.source.skipped + now.source.skipped,
    inFlight: now.source.inFlight,
    committed: before.source.committed + now.source.committed,
    rejected: before.source.rejected + now.source.rejected,
  };
  return { ...now, elapsedMs: before.elapsedMs + now.elapsedMs, operators: [...operators.values()], totals, histograms, source };
}
