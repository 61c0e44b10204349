import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import definition from "../../../graphs/back-translation.ts";
import * as graphs from "../../../graphs/index.ts";
import { summaryText } from "../../../src/cli/progress.ts";
import { ConfigError } from "../../../src/errors.ts";
import { buildGraph, type GraphDefinition, type GraphOptionValues } from "../../../src/index.ts";
import { BUILTIN_PRICES } from "../../../src/llm/index.ts";
import { startSimulator, type Simulator } from "../../../src/sim/index.ts";
import { useGraphRuns } from "../../support/graph-run.ts";

const { runGraph, tempDir } = useGraphRuns();
const retryLine = /^llm: .*; retry \d+\/\d+ in \d+ ms/;

describe("openEndpoint on the built-in simulator", () => {
  it("prices its answers at 0 and says so in the summary", async () => {
    const { summary, logs } = await runGraph(definition, { count: 4 });
    expect(summary.metrics.totals["llm.simulated_tokens"]).toBeGreaterThan(0);
    expect(summary.metrics.totals["llm.cost_usd"] ?? 0).toBe(0);
    expect(summaryText(summary)).toMatch(/ tokens, \$0\.00 \(simulator\)\n/);
    expect(logs.join("\n")).not.toContain("cost unknown");
  });
});

describe("openEndpoint on an endpoint that answers 429 now and then", () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ latencyMs: 1, faults: { "429": 0.25 }, faultRetryAfterMs: 1, seed: 11 });
  });
  afterAll(async () => {
    await sim.close();
  });
  const pointAt = (model: string) => {
    vi.stubEnv("OPENAI_BASE_URL", sim.url);
    vi.stubEnv("RXSYNTH_MODEL", model);
    vi.stubEnv("RXSYNTH_PRICE", "");
  };

  it("logs exactly one line per retry", async () => {
    pointAt("gpt-4o-mini");
    const { summary, logs } = await runGraph(definition, { count: 12 });
    const retries = summary.metrics.totals["llm.retries"] ?? 0;
    expect(retries).toBeGreaterThan(0);
    expect(logs.filter((line) => retryLine.test(line))).toHaveLength(retries);
  });

  it("prices a dated snapshot from the built-in table, shown in the summary", async () => {
    pointAt("gpt-4o-mini-2024-07-18");
    const { summary, logs } = await runGraph(definition, { count: 4 });
    const totals = summary.metrics.totals;
    const { input, output } = BUILTIN_PRICES["gpt-4o-mini"]!;
    const expected = (totals["llm.prompt_tokens"]! * input + totals["llm.completion_tokens"]! * output) / 1e6;
    expect(totals["llm.cost_usd"]).toBeCloseTo(expected, 12);
    expect(summaryText(summary)).toContain(` tokens, $${expected.toFixed(4)}\n`);
    expect(logs.find((line) => line.startsWith("LLM endpoint:"))).toMatch(/price \$0\.15\/\$0\.60 per 1M tokens in\/out .*list price as of \d{4}-\d{2}/);
  });

  it("lets the graph's price option override the table, and RXSYNTH_PRICE override both", async () => {
    pointAt("gpt-4o-mini");
    const option = await runGraph(definition, { count: 4, price: "input=1000,output=0" });
    const optionTotals = option.summary.metrics.totals;
    expect(optionTotals["llm.cost_usd"]).toBeCloseTo((optionTotals["llm.prompt_tokens"]! * 1000) / 1e6, 9);
    expect(option.logs.find((line) => line.startsWith("LLM endpoint:"))).toContain("from the price option");

    vi.stubEnv("RXSYNTH_PRICE", "input=0,output=1000");
    // The same requests again: from a cache of their own, or the answers would come free from the first run's.
    vi.stubEnv("RXSYNTH_CACHE_DIR", await tempDir("cache"));
    const env = await runGraph(definition, { count: 4, price: "input=1000,output=0" });
    const envTotals = env.summary.metrics.totals;
    expect(envTotals["llm.cost_usd"]).toBeCloseTo((envTotals["llm.completion_tokens"]! * 1000) / 1e6, 9);
    expect(env.logs.find((line) => line.startsWith("LLM endpoint:"))).toContain("from RXSYNTH_PRICE");
  });

  it("says the cost of a model with no known price is unknown, once, instead of $0", async () => {
    pointAt("my-finetune");
    const { summary, logs } = await runGraph(definition, { count: 4 });
    expect(summary.metrics.totals["llm.unpriced_tokens"]).toBeGreaterThan(0);
    const text = summaryText(summary);
    expect(text.match(/cost unknown: set RXSYNTH_PRICE/g)).toHaveLength(1);
    expect(text).not.toMatch(/\$0\.0000/);
    expect(logs.filter((line) => line.includes("cost unknown"))).toHaveLength(1);
  });

  it("refuses a malformed RXSYNTH_PRICE with the format it expects", async () => {
    pointAt("gpt-4o-mini");
    vi.stubEnv("RXSYNTH_PRICE", "0.15/0.60");
    const error = await buildGraph(definition, { count: 1 }, { log: () => {}, out: await tempDir() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/RXSYNTH_PRICE: .*expected input=<usd>,output=<usd>/);
  });
});

describe("every ready graph that calls an LLM", () => {
  // mix and curate call no LLM.
  const llmGraphs = Object.entries(graphs).filter(([name]) => !["mix", "curate", "openEndpoint"].includes(name)) as Array<[string, GraphDefinition]>;

  it.for(llmGraphs)("%s takes a price option and hands it to its endpoint", async ([, graph], context) => {
    expect(graph.defaults).toHaveProperty("price", "");
    const overrides: GraphOptionValues = { price: "input=free", ...("rewrite" in graph.defaults ? { rewrite: true } : {}) };
    const error = await buildGraph(graph, overrides, { log: () => {}, out: await tempDir() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    // code-exec checks for its sandbox before it opens the endpoint.
    if (/bubblewrap/.test((error as Error).message)) return context.skip("needs bubblewrap to reach its endpoint");
    expect((error as Error).message).toContain("the price option");
  });
});
