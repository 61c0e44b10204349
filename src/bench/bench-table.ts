import type { SweepResult } from "./endpoint-sweep.ts";
import type { GraphBenchResult } from "./graph-bench.ts";

/** Columns padded to their widest cell; numbers right-aligned, the first column left. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : "-");
const ms = (value: number) => fixed(value, value < 100 ? 1 : 0);
const rate = (value: number) => fixed(value, value < 100 ? 1 : 0);

/** When a level's client CPU is this close to one core, its figures are the client's limit. */
const CLIENT_BOUND_CPU = 0.85;

export function sweepTable(result: SweepResult): string {
  const rows = result.levels.map((level) => [
    String(level.concurrency),
    rate(level.requestsPerS),
    rate(level.outputTokensPerS),
    ms(level.latencyMs.p50),
    ms(level.latencyMs.p95),
    ms(level.latencyMs.p99),
    ms(level.ttftMs.p50),
    ms(level.ttftMs.p95),
    level.errors === 0 ? "0" : `${level.errors} (${Object.entries(level.errorKinds).map(([kind, n]) => `${kind} ${n}`).join(", ")})`,
    fixed(level.clientCpu, 2),
  ]);
  const knee = result.knee;
  const lines = [
    `${result.baseURL}  model ${result.model}`,
    table(["concurrency", "req/s", "out tok/s", "p50 ms", "p95 ms", "p99 ms", "ttft p50", "ttft p95", "errors", "client cpu"], rows),
    knee.reached
      ? `knee: ${knee.knee} (throughput / p50 latency is highest there; beyond it latency rises faster than throughput)`
      : `knee: not reached (throughput / p50 latency still rises at ${knee.knee}: add higher --levels)`,
    `use concurrency ${knee.recommended} (the highest level up to the knee whose p95 stays within 2x the unloaded p95); Little's law: about ${Math.round(knee.littleConcurrency)} requests served at once`,
  ];
  const bound = result.levels.filter((level) => level.clientCpu >= CLIENT_BOUND_CPU).map((level) => level.concurrency);
  if (bound.length > 0) lines.push(`note: this process used about one CPU core at concurrency ${bound.join(", ")}: those figures are the client's limit, not the server's`);
  return lines.join("\n");
}

export function graphBenchTable(result: GraphBenchResult): string {
  const rows = result.operators.map((op) => [
    op.name,
    op.kind,
    String(op.in),
    String(op.out),
    String(op.rejected),
    rate(op.outPerS),
    fixed(op.busyS, 2),
    `${fixed(op.busyShare * 100, 0)}%`,
    fixed(op.meanMs, 2),
    op.kind === "sync" ? "-" : fixed(op.queuedS, 1),
  ]);
  const bottleneck = result.operators.find((op) => op.name === result.bottleneck);
  const why =
    bottleneck === undefined ? "none (no operator held samples)"
    : result.bottleneckBy === "queued" ? `${bottleneck.name} (samples waited ${fixed(bottleneck.queuedS, 1)} sample-s for its slots)`
    : `${bottleneck.name} (held samples ${fixed(bottleneck.heldS, 1)} sample-s)`;
  return [
    table(["operator", "kind", "in", "out", "rejected", "out/s", "busy s", "busy", "mean ms", "queued s"], rows),
    `${result.graph}: ${result.accepted} accepted in ${fixed(result.elapsedS, 1)} s = ${fixed(result.samplesPerS, 1)} samples/s (${result.sourceRecords} source records, ${result.status})`,
    `bottleneck: ${why}`,
    `llm: ${result.llm.requests} requests, ${fixed(result.llm.seconds, 1)} request-s, ${fixed(result.llm.meanInFlight, 1)} in flight on average, ${fixed(result.llm.timeShare * 100, 0)}% of operator time`,
    `peak RSS: ${fixed(result.memory.peakRssBytes / 1_000_000, 0)} MB`,
  ].join("\n");
}
