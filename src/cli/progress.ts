import type { RunProgress, RunSummary } from "../run.ts";

const number = new Intl.NumberFormat("en-US");

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
  if (totals["llm.cost_usd"]) parts.push(`$${totals["llm.cost_usd"].toFixed(4)}`);
  return parts.join(", ");
}

/** The lines of a progress view; shared by the live TTY view and the final summary. */
export function progressLines(graph: string, progress: RunProgress): string[] {
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
  return lines;
}

/** Redraws the progress block in place on a terminal; prints a plain line now and then otherwise. */
export class ProgressView {
  private drawn = 0;
  private lastPlain = 0;

  constructor(
    private readonly graph: string,
    private readonly stream: NodeJS.WriteStream,
    private readonly plainEveryMs = 10_000,
  ) {}

  get interactive(): boolean {
    return this.stream.isTTY === true;
  }

  update(progress: RunProgress): void {
    if (this.interactive) {
      const lines = progressLines(this.graph, progress);
      const up = this.drawn > 0 ? `\x1b[${this.drawn}F` : "";
      this.stream.write(`${up}${lines.map((line) => `\x1b[2K${line}`).join("\n")}\n`);
      this.drawn = lines.length;
      return;
    }
    const now = Date.now();
    if (now - this.lastPlain < this.plainEveryMs) return;
    this.lastPlain = now;
    const s = progress.source;
    this.stream.write(
      `[${clock(progress.elapsedMs)}] ${this.graph}: pulled ${s.pulled} accepted ${s.committed} rejected ${s.rejected} in-flight ${progress.inFlight}\n`,
    );
  }

  /** Writes a line above the live block without breaking it. */
  log(line: string): void {
    if (this.interactive && this.drawn > 0) {
      this.stream.write(`\x1b[${this.drawn}F\x1b[0J${line}\n`);
      this.drawn = 0;
    } else {
      this.stream.write(`${line}\n`);
    }
  }
}

export function summaryText(summary: RunSummary): string {
  const lines = progressLines(summary.graph, { ...summary.metrics, inFlight: 0, budget: summary.budget, expected: undefined });
  const nothingToDo = summary.resumed && summary.metrics.source.pulled === 0;
  const verdict =
    nothingToDo && summary.status === "complete"
      ? "already complete, nothing to do (use another --out folder for a new run)"
      : summary.status === "complete"
      ? "complete"
      : summary.status === "limited"
        ? "stopped at --limit (run again with a higher limit to continue)"
        : "stopped before the end";
  lines.push(
    `${verdict}: ${number.format(summary.accepted)} accepted, ${number.format(summary.rejected)} rejected${summary.resumed ? " (resumed)" : ""}; max in flight ${number.format(summary.maxInFlight)} of ${number.format(summary.budget)}`,
  );
  if (summary.out) lines.push(`output: ${summary.out} (${summary.shards.length} shard${summary.shards.length === 1 ? "" : "s"} committed by this run; manifest.json lists all)`);
  return lines.join("\n");
}
