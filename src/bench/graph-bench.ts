import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import { buildGraph, type GraphDefinition, type GraphOptionValues } from "../graph.ts";
import { LLM_METRIC_KEYS } from "../llm/index.ts";
import { run, type RunStatus } from "../run/run.ts";
import { timeOperators, type OperatorTiming } from "./operator-timing.ts";

export interface GraphBenchOptions {
  /** Stop after this many source records. */
  readonly limit?: number;
  /** ...or after this many seconds (in-flight work then finishes, as after Ctrl-C). */
  readonly seconds?: number;
  readonly budget?: number;
  /** Aborting it stops the run as Ctrl-C does: in-flight work finishes, the figures cover what ran, the folder goes. */
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
}

export interface OperatorBench extends OperatorTiming {
  readonly in: number;
  readonly out: number;
  readonly rejected: number;
  /** Samples out per second of the run. */
  readonly outPerS: number;
  /** busyS over the run's length. */
  readonly busyShare: number;
  /** Mean time one sample spent in it (sync: in its body; async: in flight), in ms. */
  readonly meanMs: number;
  /** Sample-seconds it held: busyS for a sync stage, in flight plus queued for an async one. */
  readonly heldS: number;
}

export interface GraphBenchResult {
  readonly graph: string;
  readonly status: RunStatus;
  readonly limit: number | undefined;
  readonly seconds: number | undefined;
  readonly elapsedS: number;
  readonly sourceRecords: number;
  readonly accepted: number;
  readonly rejected: number;
  /** Accepted samples per second, end to end. */
  readonly samplesPerS: number;
  readonly operators: readonly OperatorBench[];
  /** The operator samples queued in front of longest, else the one that held them longest (see `heldS`); undefined when none held any. */
  readonly bottleneck: string | undefined;
  /** Which of the two named the bottleneck. */
  readonly bottleneckBy: "queued" | "held" | undefined;
  readonly llm: {
    readonly requests: number;
    /** Summed wall time of the answered requests (llm.latency_seconds). */
    readonly seconds: number;
    /** seconds / elapsedS: requests in flight on average. */
    readonly meanInFlight: number;
    /** Of the time operators worked on samples (sync bodies, async samples in flight), the share that was an LLM request. */
    readonly timeShare: number;
    readonly tokens: number;
  };
  readonly memory: { readonly peakRssBytes: number };
}

/**
 * Runs a graph into a temporary folder (removed afterwards, whatever happens) with the response cache
 * off, so every request is sent, and reports where the time went. The bottleneck is the operator samples
 * waited in front of longest because its slots were full; when none made samples wait (the budget bound
 * first), the one that held samples for the most sample-seconds, where by Little's law the budget sat.
 * An operator that holds samples for others (a wave barrier) holds them without working: it is named by
 * the second rule only, and counts as non-LLM time in the LLM share. Memory is the process's peak RSS.
 */
export async function benchGraph(definition: GraphDefinition, overrides: Partial<GraphOptionValues>, options: GraphBenchOptions = {}): Promise<GraphBenchResult> {
  if (options.seconds !== undefined && !(options.seconds > 0)) throw new ConfigError(`--seconds must be a positive number, got ${options.seconds}`);
  const out = await mkdtemp(join(tmpdir(), "rxsynth-bench-"));
  const stop = new AbortController();
  const timer = options.seconds === undefined ? undefined : setTimeout(() => stop.abort(), options.seconds * 1_000);
  const onAbort = () => stop.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const built = await buildGraph(definition, overrides, { log: options.log ?? (() => {}), out, cache: false });
    const { graph, timings } = timeOperators(built);
    const startedAt = performance.now();
    const summary = await run(graph, {
      out,
      limit: options.limit,
      budget: options.budget,
      signal: stop.signal,
      timeline: false,
      log: options.log,
    });
    const elapsedS = (performance.now() - startedAt) / 1_000;
    const measured = timings();
    const counts = new Map(summary.metrics.operators.map((op) => [op.name, op]));
    const operators = measured.map((timing): OperatorBench => {
      const count = counts.get(timing.name);
      const seen = count?.in ?? 0;
      const work = timing.kind === "sync" ? timing.busyS : timing.inFlightS;
      return {
        ...timing,
        in: seen,
        out: count?.out ?? 0,
        rejected: count?.rejected ?? 0,
        outPerS: (count?.out ?? 0) / elapsedS,
        busyShare: timing.busyS / elapsedS,
        meanMs: seen > 0 ? (work / seen) * 1_000 : 0,
        heldS: timing.kind === "sync" ? timing.busyS : timing.inFlightS + timing.queuedS,
      };
    });
    const most = (figure: (op: OperatorBench) => number) =>
      operators.reduce<OperatorBench | undefined>((best, op) => (figure(op) > (best ? figure(best) : 0) ? op : best), undefined);
    const queuedMost = most((op) => op.queuedS);
    const heldMost = most((op) => op.heldS);
    const bottleneck = queuedMost ?? heldMost;
    const latency = summary.metrics.histograms?.["llm.latency_seconds"];
    const llmSeconds = latency?.sum ?? 0;
    const workS = operators.reduce((sum, op) => sum + (op.kind === "sync" ? op.busyS : op.inFlightS), 0);
    const totals = summary.metrics.totals;
    return {
      graph: definition.name,
      status: summary.status,
      limit: options.limit,
      seconds: options.seconds,
      elapsedS,
      sourceRecords: summary.metrics.source.pulled,
      accepted: summary.accepted,
      rejected: summary.rejected,
      samplesPerS: summary.accepted / elapsedS,
      operators,
      bottleneck: bottleneck?.name,
      bottleneckBy: queuedMost ? "queued" : heldMost ? "held" : undefined,
      llm: {
        requests: totals[LLM_METRIC_KEYS.requests] ?? 0,
        seconds: llmSeconds,
        meanInFlight: llmSeconds / elapsedS,
        timeShare: workS > 0 ? Math.min(1, llmSeconds / workS) : 0,
        tokens: (totals[LLM_METRIC_KEYS.promptTokens] ?? 0) + (totals[LLM_METRIC_KEYS.completionTokens] ?? 0),
      },
      memory: { peakRssBytes: process.resourceUsage().maxRSS * 1_024 },
    };
  } finally {
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    await rm(out, { recursive: true, force: true });
  }
}
