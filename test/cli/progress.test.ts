import { describe, expect, it } from "vitest";
import { ProgressView, clearLines, costText, progressLines, summaryText } from "../../src/cli/progress.ts";
import type { RunProgress, RunSummary } from "../../src/run/run.ts";

function progress(totals: Record<string, number> = {}, reasons: Record<string, number> = {}): RunProgress {
  return {
    elapsedMs: 2_000,
    operators: [{ name: "generate", in: 10, out: 8, rejected: 2, inFlight: 1, reasons }],
    totals: { "llm.requests": 12, "llm.retries": 2, "llm.prompt_tokens": 300, "llm.completion_tokens": 200, ...totals },
    source: { pulled: 10, skipped: 0, inFlight: 1, committed: 8, rejected: 2 },
    inFlight: 1,
    budget: 64,
    expected: 100,
  };
}

function summary(totals: Record<string, number>): RunSummary {
  const { inFlight: _inFlight, budget: _budget, expected: _expected, ...metrics } = progress(totals);
  const cost = { spentUsd: totals["llm.cost_usd"] ?? 0, projectedUsd: undefined, maxUsd: undefined };
  return { status: "complete", graph: "g", out: undefined, accepted: 8, rejected: 2, maxInFlight: 4, budget: 64, resumed: false, shards: [], metrics, cost, committed: true };
}

/** A terminal stand-in that records every write. */
function fakeTty(columns = 200) {
  const writes: string[] = [];
  const stream = { isTTY: true, columns, write: (chunk: string) => (writes.push(chunk), true) } as unknown as NodeJS.WriteStream;
  return { stream, writes };
}

describe("cost in the progress view", () => {
  it("shows spend so far, the projection at completion and the cap in one line", () => {
    const lines = progressLines("g", { ...progress({ "llm.cost_usd": 0.5 }), cost: { spentUsd: 0.5, projectedUsd: 5, maxUsd: 2 } });
    expect(lines.at(-1)).toBe("cost: $0.5000 spent, $5.00 projected at completion, --max-cost $2.00");
  });

  it("projects nothing for a run without a price or a known extent, and says tokens without a price escape the cap", () => {
    expect(progressLines("g", { ...progress(), cost: { spentUsd: 0, projectedUsd: 0, maxUsd: undefined } }).at(-1)).not.toMatch(/^cost:/);
    const unpriced = progressLines("g", { ...progress({ "llm.unpriced_tokens": 40 }), cost: { spentUsd: 0, projectedUsd: undefined, maxUsd: 1 } });
    expect(unpriced.at(-1)).toBe("cost: $0.0000 spent, --max-cost $1.00 (tokens without a price do not count: set RXSYNTH_PRICE)");
  });

  it("shows dollars for a priced model, even when they round to nothing", () => {
    expect(costText({ "llm.cost_usd": 0.01234 })).toBe("$0.0123");
    expect(costText({ "llm.cost_usd": 12.345 })).toBe("$12.35");
    expect(costText({ "llm.requests": 0, "llm.cache_hits": 51 })).toBe("$0.00 (all cached)");
    expect(costText({ "llm.cost_usd": 0 })).toBe("$0.0000");
  });

  it("labels the simulator's answers as free", () => {
    expect(costText({ "llm.simulated_tokens": 500 })).toBe("$0.00 (simulator)");
  });

  it("says the cost is unknown, and how to set it, for a model with no price, not $0", () => {
    expect(costText({ "llm.unpriced_tokens": 500 })).toBe("cost unknown: set RXSYNTH_PRICE");
    expect(costText({ "llm.cost_usd": 0.5, "llm.unpriced_tokens": 1_500 })).toBe("$0.5000 + cost unknown for 1,500 tokens: set RXSYNTH_PRICE");
  });

  it("puts the cost on the llm line of the live view and of the final summary, once", () => {
    const live = progressLines("g", progress({ "llm.unpriced_tokens": 500 }));
    expect(live.at(-1)).toBe("llm: 12 requests, 0 cached, 2 retries, 500 tokens, cost unknown: set RXSYNTH_PRICE");
    const text = summaryText(summary({ "llm.cost_usd": 0.0042 }));
    expect(text).toContain("500 tokens, $0.0042\n");
    expect(summaryText(summary({ "llm.simulated_tokens": 500 }))).toContain("500 tokens, $0.00 (simulator)\n");
    expect(summaryText(summary({ "llm.unpriced_tokens": 500 })).match(/cost unknown/g)).toHaveLength(1);
  });
});

describe("ProgressView on a terminal", () => {
  it("prints a log line after clearing the live block and before drawing it again, in one write", () => {
    const { stream, writes } = fakeTty();
    const view = new ProgressView("g", stream);
    view.update(progress());
    const block = progressLines("g", progress());
    expect(writes).toEqual([`${block.join("\n")}\n`]);
    view.log("llm: retry 1/6 in 5 ms");
    expect(writes).toHaveLength(2);
    const written = writes[1]!;
    const clear = clearLines(block.length);
    expect(written.startsWith(clear)).toBe(true);
    expect(written.slice(clear.length)).toBe(`llm: retry 1/6 in 5 ms\n${block.join("\n")}\n`);
    // A second line goes above the block again: the block is redrawn, never written through.
    view.log("second");
    expect(writes[2]).toBe(`${clear}second\n${block.join("\n")}\n`);
  });

  it("prints log lines plainly before anything is drawn", () => {
    const { stream, writes } = fakeTty();
    new ProgressView("g", stream).log("opening");
    expect(writes).toEqual(["opening\n"]);
  });

  it("keeps every live line within the terminal's width, so the block's height is what the cursor moves count", () => {
    const { stream, writes } = fakeTty(40);
    const view = new ProgressView("g", stream);
    view.update(progress({}, { a_very_long_reason_name: 3, another_long_reason: 2 }));
    const rows = writes[0]!.split("\n").slice(0, -1);
    expect(rows).toHaveLength(progressLines("g", progress()).length);
    for (const row of rows) expect([...row].length).toBeLessThanOrEqual(39);
  });

  it("clears the block for good when stopped, so the summary is printed alone", () => {
    const { stream, writes } = fakeTty();
    const view = new ProgressView("g", stream);
    view.update(progress());
    view.stop();
    view.log("summary");
    view.update(progress());
    expect(writes.slice(1)).toEqual([clearLines(progressLines("g", progress()).length), "summary\n"]);
  });
});
