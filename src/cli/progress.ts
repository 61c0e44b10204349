import type { CostFigures, RunProgress, RunSummary } from "../run/run.ts";

const number = new Intl.NumberFormat("en-US");
const dollars = (usd: number) => `$${usd.toFixed(usd >= 1 ? 2 : 4)}`;

function clock(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function reasonsText(reasons: Record<string, number>): string {
  return Object.entries(reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, count]) => `${reason} ${number.format(count)}`)
    .join(", ");
}

function totalsText(totals: Record<string, number>): string | undefined {
  const llmRequests = totals["llm.requests"];
  if (llmRequests === undefined && totals["llm.cache_hits"] === undefined) return undefined;
  const parts = [
    `llm: ${number.format(llmRequests ?? 0)} requests`,
    `${number.format(totals["llm.cache_hits"] ?? 0)} cached`,
    `${number.format(totals["llm.retries"] ?? 0)} retries`,
    `${number.format((totals["llm.prompt_tokens"] ?? 0) + (totals["llm.completion_tokens"] ?? 0))} tokens`,
  ];
  parts.push(costText(totals));
  return parts.join(", ");
}

/**
 * What the run's answers cost: dollars where the model has a price, labelled when the simulator gave
 * them, and said to be unknown (with the way to price it) when a real model has no price, never $0.
 */
export function costText(totals: Record<string, number>): string {
  const usd = totals["llm.cost_usd"] ?? 0;
  const unpriced = totals["llm.unpriced_tokens"] ?? 0;
  const simulated = totals["llm.simulated_tokens"] ?? 0;
  if (unpriced > 0) {
    const priced = usd > 0 ? `${dollars(usd)} + ` : "";
    return `${priced}cost unknown${usd > 0 ? ` for ${number.format(unpriced)} tokens` : ""}: set RXSYNTH_PRICE`;
  }
  if (simulated > 0 && usd === 0) return "$0.00 (simulator)";
  // A rerun answered from the response cache pays nothing, whichever model first answered.
  if (usd === 0 && (totals["llm.requests"] ?? 0) === 0 && (totals["llm.cache_hits"] ?? 0) > 0) return "$0.00 (all cached)";
  return dollars(usd);
}

/**
 * Spend so far (earlier sessions of the folder included), at completion by extrapolation, and the cap.
 * Shown where it says something: a priced run whose extent is known, or one under `--max-cost`.
 */
function costLine(cost: CostFigures, totals: Record<string, number>): string | undefined {
  const unpriced = (totals["llm.unpriced_tokens"] ?? 0) > 0;
  const projected = cost.projectedUsd !== undefined && cost.spentUsd > 0 && !unpriced ? `, ${dollars(cost.projectedUsd)} projected at completion` : "";
  const cap = cost.maxUsd === undefined ? "" : `, --max-cost ${dollars(cost.maxUsd)}${unpriced ? " (tokens without a price do not count: set RXSYNTH_PRICE)" : ""}`;
  if (!projected && !cap) return undefined;
  return `cost: ${dollars(cost.spentUsd)} spent${projected}${cap}`;
}

/** The lines of a progress view; shared by the live TTY view and the final summary. `extra`: lines of its own (batch mode's). */
export function progressLines(graph: string, progress: RunProgress, extra: readonly string[] = []): string[] {
  const elapsed = progress.elapsedMs;
  const processed = progress.source.pulled;
  const rate = elapsed > 0 ? (processed / elapsed) * 1000 : 0;
  const remaining = progress.expected === undefined ? undefined : progress.expected - progress.source.pulled - progress.source.skipped;
  const eta = remaining !== undefined && rate > 0 ? ` ETA ${clock((remaining / rate) * 1000)}` : "";
  const lines = [
    `rxsynth ▸ ${graph}  elapsed ${clock(elapsed)}${eta}  in flight ${number.format(progress.inFlight)}/${number.format(progress.budget)}`,
    `source: pulled ${number.format(processed)}${progress.source.skipped ? ` (skipped ${number.format(progress.source.skipped)} done earlier)` : ""}  accepted ${number.format(progress.source.committed)}  rejected ${number.format(progress.source.rejected)}  ${number.format(Math.round(rate))}/s`,
  ];
  const width = Math.max(8, ...progress.operators.map((op) => op.name.length));
  lines.push(`${"operator".padEnd(width)} ${"in".padStart(10)} ${"out".padStart(10)} ${"rejected".padStart(9)} ${"busy".padStart(5)} ${"rate/s".padStart(8)}  reasons`);
  for (const op of progress.operators) {
    const opRate = elapsed > 0 ? Math.round((op.in / elapsed) * 1000) : 0;
    lines.push(
      `${op.name.padEnd(width)} ${number.format(op.in).padStart(10)} ${number.format(op.out).padStart(10)} ${number.format(op.rejected).padStart(9)} ${String(op.inFlight).padStart(5)} ${number.format(opRate).padStart(8)}  ${reasonsText(op.reasons)}`,
    );
  }
  const totals = totalsText(progress.totals);
  if (totals) lines.push(totals);
  const cost = progress.cost && costLine(progress.cost, progress.totals);
  if (cost) lines.push(cost);
  lines.push(...extra);
  return lines;
}

/** Moves the cursor to the start of the line `lines` rows up and erases from there to the end of the screen. */
export const clearLines = (lines: number): string => (lines > 0 ? `\x1b[${lines}F\x1b[0J` : "");

/**
 * Redraws the progress block in place on a terminal; prints a plain line now and then otherwise. Log
 * lines go above the block: it is cleared, the line printed, the block drawn again below it.
 */
export class ProgressView {
  /** Rows the live block occupies on the terminal now (0: none drawn). */
  private drawn = 0;
  /** The block as last drawn, for redrawing it under a log line. */
  private block: string[] = [];
  private stopped = false;
  private lastPlain = 0;

  constructor(
    private readonly graph: string,
    private readonly stream: NodeJS.WriteStream,
    private readonly plainEveryMs = 10_000,
  ) {}

  get interactive(): boolean {
    return this.stream.isTTY === true;
  }

  update(progress: RunProgress, extra: readonly string[] = []): void {
    if (this.stopped) return;
    if (this.interactive) {
      // One row per line: a line the terminal wraps would take rows the cursor moves cannot count.
      const width = this.stream.columns > 0 ? this.stream.columns - 1 : Infinity;
      this.block = progressLines(this.graph, progress, extra).map((line) => clip(line, width));
      this.stream.write(`${clearLines(this.drawn)}${this.drawing()}`);
      this.drawn = this.block.length;
      return;
    }
    const now = Date.now();
    if (now - this.lastPlain < this.plainEveryMs) return;
    this.lastPlain = now;
    const s = progress.source;
    this.stream.write(
      `[${clock(progress.elapsedMs)}] ${this.graph}: pulled ${s.pulled} accepted ${s.committed} rejected ${s.rejected} in-flight ${progress.inFlight}${extra.map((line) => `; ${line}`).join("")}\n`,
    );
  }

  /** Writes a line above the live block: clears the block, prints the line, draws the block again, in one write. */
  log(line: string): void {
    if (this.interactive && this.drawn > 0) {
      this.stream.write(`${clearLines(this.drawn)}${line}\n${this.drawing()}`);
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  /** Clears the live block for good (before the summary, which repeats its figures); later updates draw nothing. */
  stop(): void {
    if (this.interactive && this.drawn > 0) this.stream.write(clearLines(this.drawn));
    this.drawn = 0;
    this.block = [];
    this.stopped = true;
  }

  private drawing(): string {
    return this.block.length > 0 ? `${this.block.join("\n")}\n` : "";
  }
}

/** The first `width` characters of `line` (by code point), with an ellipsis when cut. */
function clip(line: string, width: number): string {
  const chars = [...line];
  return chars.length <= width ? line : `${chars.slice(0, Math.max(0, width - 1)).join("")}…`;
}

export function summaryText(summary: RunSummary, extra: readonly string[] = []): string {
  const lines = progressLines(summary.graph, { ...summary.metrics, inFlight: 0, budget: summary.budget, expected: undefined, cost: summary.cost }, extra);
  const nothingToDo = summary.resumed && summary.metrics.source.pulled === 0;
  const verdict =
    nothingToDo && summary.status === "complete"
      ? "already complete, nothing to do (use another --out folder for a new run)"
      : summary.status === "complete"
      ? "complete"
      : summary.status === "limited"
        ? "stopped at --limit (run again with a higher limit to continue)"
        : summary.status === "incomplete"
          ? "incomplete"
          : summary.stopReason === "max_cost"
            ? "stopped at --max-cost"
            : "stopped before the end";
  lines.push(
    `${verdict}: ${number.format(summary.accepted)} accepted, ${number.format(summary.rejected)} rejected${summary.resumed ? " (resumed)" : ""}; max in flight ${number.format(summary.maxInFlight)} of ${number.format(summary.budget)}`,
  );
  if (summary.status === "incomplete") lines.push(`incomplete: ${summary.incompleteReason ?? "the sources ran out before the graph's goal"}`);
  if (summary.out) lines.push(`output: ${summary.out} (${summary.shards.length} shard${summary.shards.length === 1 ? "" : "s"} committed by this run; manifest.json lists all)`);
  return lines.join("\n");
}
