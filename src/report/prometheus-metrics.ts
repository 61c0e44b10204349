import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from "prom-client";
import { LLM_LATENCY_HISTOGRAM, LLM_METRIC_KEYS } from "../llm/metrics.ts";
import { HISTOGRAM_BOUNDS, type HistogramSnapshot } from "../metrics.ts";
import type { LlmStats } from "../llm/types.ts";
import type { RunProgress } from "../run/run.ts";

/**
 * What a scrape reads: a run's progress at that moment. In a worker each chunk is its own run, so the
 * figures may start again from 0; the counters below stay monotonic for the life of the process anyway.
 */
export interface MetricsFeed extends RunProgress {}

export interface RunMetricsOptions {
  /** Read once per scrape, never cached. */
  readonly feed: () => MetricsFeed;
  /** Put on every series (e.g. `{ graph, worker }`). */
  readonly labels?: Record<string, string>;
}

/** A registry of the run's metrics and the process's own, brought up to date by each scrape. */
export interface RunMetrics {
  readonly registry: Registry;
  /** Reads the feed and renders every metric in the Prometheus text format (0.0.4). */
  scrape(): Promise<string>;
}

const PREFIX = "rxsynth_";

/** HELP text per LLM total; the series is `rxsynth_<total with . as _>_total` (rxsynth_llm_requests_total, ...). */
const LLM_HELP: Record<keyof LlmStats, string> = {
  requests: "HTTP requests sent to LLM endpoints, retries included.",
  retries: "LLM requests that were retries of an earlier attempt.",
  rateLimited: "429 (rate limited) answers from LLM endpoints.",
  cacheHits: "LLM calls answered from the response cache, nothing sent.",
  coalesced: "LLM calls that joined an identical call already in flight.",
  failures: "LLM calls that failed for good.",
  promptTokens: "Prompt tokens of LLM answers.",
  completionTokens: "Completion tokens of LLM answers.",
  costUsd: "USD spent on LLM answers whose model has a price.",
  unpricedTokens: "Tokens of LLM answers whose model has no known price (not in the cost).",
  simulatedTokens: "Tokens of the simulator's answers, which cost nothing.",
};

/**
 * One fed counter's reading at a scrape: the run's running figure, which the Prometheus counter follows
 * by its increase since the previous scrape.
 */
interface Reading {
  readonly counter: Counter<string>;
  readonly labels: Record<string, string>;
  readonly key: string;
  readonly value: number;
}

export function createRunMetrics(options: RunMetricsOptions): RunMetrics {
  // A registry of its own: two servers in one process (tests, a run beside a worker) never clash.
  const registry = new Registry();
  if (options.labels) registry.setDefaultLabels(options.labels);
  const registers = [registry];
  const names = new Map<Counter<string>, string>();
  const counter = (name: string, help: string, labelNames: string[] = []) => {
    const c = new Counter({ name: PREFIX + name, help, labelNames, registers });
    names.set(c, name);
    return c;
  };
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name: PREFIX + name, help, labelNames, registers });

  const operatorIn = counter("operator_in_total", "Samples into an operator.", ["operator"]);
  const operatorOut = counter("operator_out_total", "Samples out of an operator.", ["operator"]);
  const operatorRejected = counter("operator_rejected_total", "Samples an operator rejected, by reason.", ["operator", "reason"]);
  const operatorInFlight = gauge("operator_in_flight", "Samples inside an operator now.", ["operator"]);
  const inFlight = gauge("in_flight", "Samples in flight in the run now (source records pulled and not yet finished, and their children).");
  const budget = gauge("budget", "The run's in-flight budget: the most samples in flight at once.");
  const expected = gauge("source_expected", "Source records the run will read, when the sources know their size.");
  const pulled = counter("source_pulled_total", "Source records pulled.");
  const skipped = counter("source_skipped_total", "Source records skipped because an earlier session finished them.");
  const committed = counter("source_committed_total", "Samples committed to the accepted sinks.");
  const rejected = counter("source_rejected_total", "Samples committed to the rejects sink.");
  const llm = (Object.keys(LLM_METRIC_KEYS) as Array<keyof LlmStats>).map((stat) => ({
    total: LLM_METRIC_KEYS[stat],
    counter: counter(`${LLM_METRIC_KEYS[stat].replace(".", "_")}_total`, LLM_HELP[stat]),
  }));
  const latency = new FedHistogram(`${PREFIX}llm_request_duration_seconds`, "Wall time of answered LLM requests (cache hits excluded).");
  registry.registerMetric(latency as unknown as Metric);
  const checkpointAge = gauge("checkpoint_age_seconds", "Seconds since the run's last commit (absent before the first).");
  const costSpent = gauge("cost_spent_usd", "USD the run folder has spent, earlier sessions included.");
  const costProjected = gauge("cost_projected_usd", "USD the run is projected to have spent at completion (absent when its extent is unknown).");
  const costMax = gauge("cost_max_usd", "The run's cost cap in USD (absent without --max-cost).");
  const elapsed = gauge("run_elapsed_seconds", "Seconds since the run started.");
  // Unprefixed, under their usual names (process_cpu_seconds_total, nodejs_heap_size_used_bytes, ...).
  collectDefaultMetrics({ register: registry });

  /** Each fed counter's figure at the last scrape, by series. */
  const last = new Map<string, number>();
  const advance = (readings: readonly Reading[], restarted: boolean) => {
    // A new run counts from 0; forgetting the old figures keeps a series the new run has not reached yet
    // (a reject reason not seen again so far) from reading as a second restart when it comes back.
    if (restarted) last.clear();
    for (const r of readings) {
      // inc(0) still creates the series, so a dashboard sees 0 rather than nothing.
      r.counter.inc(r.labels, r.value - (last.get(r.key) ?? 0));
      last.set(r.key, r.value);
    }
  };

  /** The feed's running figures, one per counter series. */
  const readingsOf = (feed: MetricsFeed): Reading[] => {
    const readings: Reading[] = [];
    const read = (c: Counter<string>, value: number, labels: Record<string, string> = {}) => {
      readings.push({ counter: c, labels, key: `${names.get(c)}${JSON.stringify(labels)}`, value });
    };
    for (const op of feed.operators) {
      read(operatorIn, op.in, { operator: op.name });
      read(operatorOut, op.out, { operator: op.name });
      let reasoned = 0;
      for (const [reason, n] of Object.entries(op.reasons)) {
        read(operatorRejected, n, { operator: op.name, reason });
        reasoned += n;
      }
      // Every reject carries a reason today; should one not, the operator's sum still adds up.
      if (op.rejected > reasoned) read(operatorRejected, op.rejected - reasoned, { operator: op.name, reason: "unknown" });
    }
    read(pulled, feed.source.pulled);
    read(skipped, feed.source.skipped);
    read(committed, feed.source.committed);
    read(rejected, feed.source.rejected);
    for (const { total, counter: c } of llm) read(c, feed.totals[total] ?? 0);
    return readings;
  };

  const setGauges = (feed: MetricsFeed, now: number) => {
    // An operator the current run lacks keeps no stale figure.
    operatorInFlight.reset();
    for (const op of feed.operators) operatorInFlight.set({ operator: op.name }, op.inFlight);
    inFlight.set(feed.inFlight);
    budget.set(feed.budget);
    optional(expected, feed.expected);
    optional(checkpointAge, feed.lastCheckpointAt === undefined ? undefined : Math.max(0, now - feed.lastCheckpointAt) / 1000);
    optional(costSpent, feed.cost?.spentUsd);
    optional(costProjected, feed.cost?.projectedUsd);
    optional(costMax, feed.cost?.maxUsd);
    elapsed.set(feed.elapsedMs / 1000);
  };

  const update = (feed: MetricsFeed, now: number) => {
    const readings = readingsOf(feed);
    const histogram = feed.histograms?.[LLM_LATENCY_HISTOGRAM];
    // A figure lower than at the last scrape means a new run (a worker's next chunk) began from 0: every
    // figure then counts from 0, or one that had already climbed past its old value would lose the gap.
    const restarted = readings.some((r) => r.value < (last.get(r.key) ?? 0)) || latency.restartedBy(histogram);
    advance(readings, restarted);
    latency.advance(histogram, restarted);
    setGauges(feed, now);
  };

  return {
    registry,
    scrape: async () => {
      update(options.feed(), Date.now());
      return registry.metrics();
    },
  };
}

/** Sets an unlabelled gauge, or leaves no sample at all when the figure is unknown (rather than a false 0). */
function optional(gauge: Gauge<string>, value: number | undefined): void {
  if (value === undefined || !Number.isFinite(value)) gauge.remove({});
  else gauge.set(value);
}

/**
 * A Prometheus histogram of observations the run's Metrics already counted into the fixed buckets of
 * HISTOGRAM_BOUNDS. prom-client's Histogram takes one observation at a time, with no way to add a
 * bucket's increase, so this renders its own cumulative buckets in prom-client's value shape and is
 * registered beside the others.
 */
class FedHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly counts = new Array<number>(HISTOGRAM_BOUNDS.length + 1).fill(0);
  private sum = 0;
  private count = 0;
  private last: HistogramSnapshot | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  /** True when any bucket of the run's histogram holds fewer observations than at the last scrape (a new run began). */
  restartedBy(now: HistogramSnapshot | undefined): boolean {
    const before = this.last;
    if (!before) return false;
    if (!now) return true;
    return now.count < before.count || now.sum < before.sum || now.counts.some((n, i) => n < (before.counts[i] ?? 0));
  }

  advance(now: HistogramSnapshot | undefined, restarted: boolean): void {
    if (!now) {
      if (restarted) this.last = undefined;
      return;
    }
    if (now.bounds.length !== HISTOGRAM_BOUNDS.length || now.bounds.some((bound, i) => bound !== HISTOGRAM_BOUNDS[i])) {
      throw new Error(`${this.name}: the run's histogram has bounds ${now.bounds.join(",")}, not HISTOGRAM_BOUNDS`);
    }
    const before = restarted ? undefined : this.last;
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += (now.counts[i] ?? 0) - (before?.counts[i] ?? 0);
    this.sum += now.sum - (before?.sum ?? 0);
    this.count += now.count - (before?.count ?? 0);
    this.last = now;
  }

  async get() {
    const bucket = `${this.name}_bucket`;
    const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    let cumulative = 0;
    HISTOGRAM_BOUNDS.forEach((bound, i) => {
      cumulative += this.counts[i]!;
      values.push({ metricName: bucket, labels: { le: bound }, value: cumulative });
    });
    values.push({ metricName: bucket, labels: { le: "+Inf" }, value: this.count });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: this.count });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
    this.last = undefined;
  }
}
