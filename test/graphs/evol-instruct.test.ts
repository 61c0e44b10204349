import { describe, expect, it, vi } from "vitest";
import { SIMULATOR_MODEL, buildGraph, startSimulator } from "../../src/index.ts";
import definition, { defaults, eliminationVerdict } from "../../graphs/evol-instruct.ts";
import { useGraphRuns, type OutputRow } from "../support/graph-run.ts";

const { runGraph, tempDir } = useGraphRuns();

/** Accepted rows (id and data) and rejects (id and reason), by id. */
function dataset(rows: OutputRow[], rejects: OutputRow[]) {
  const byId = <T>(list: [string, T][]) => list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    accepted: byId(rows.map((row) => [row.id, row.data] as [string, unknown])),
    rejected: byId(rejects.map((row) => [row.id, `${row.reject!.operator}:${row.reject!.reason}`] as [string, string])),
  };
}

const RULES = { gainCheck: "rouge", gainThreshold: 0.8, apologyMaxWords: 80, minOutputWords: 3 } as const;

describe("graphs/evol-instruct", () => {
  it("writes every round's survivors as rows whose depth is their round, with the evolution kind in the step note", async () => {
    const { summary, rows } = await runGraph(definition, { count: 4, rounds: 3 });
    expect(summary.status).toBe("complete");
    expect(rows).toHaveLength(12);
    for (const row of rows) {
      expect(Object.keys(row.data).filter((key) => key !== "_extra").sort()).toEqual(["evolution", "instruction", "output", "parent_instruction", "round"]);
      const round = row.data.round as number;
      expect(row.provenance).toMatchObject({ origin: "synthetic", source: "self_instruct_seed_tasks", depth: round });
      expect(defaults.kinds).toContain(row.data.evolution);
      const ops = row.provenance.steps.map((step) => step.op);
      const expected: string[] = [];
      for (let k = 1; k <= round; k++) expected.push(`evolve_${k}`, `respond_${k}`, ...(k < 3 ? [`fork_${k}`] : []));
      expect(ops).toEqual(expected);
      const evolve = row.provenance.steps.find((step) => step.op === `evolve_${round}`)!;
      const scope = row.data.evolution === "breadth" ? "in-breadth" : "in-depth";
      expect(evolve.note).toBe(`${row.data.evolution} (${scope}), round ${round}`);
      // A round's row leaves through its fork as the row copy; later rounds evolve the other copy.
      if (round < 3) expect(row.provenance.steps.at(-1)!.note).toBe("row of its round");
    }
    expect([1, 2, 3].map((round) => rows.filter((row) => row.data.round === round).length)).toEqual([4, 4, 4]);
    // Each round-k instruction is the parent of a round-(k+1) one.
    const instructions = new Set(rows.filter((row) => (row.data.round as number) < 3).map((row) => row.data.instruction));
    for (const row of rows.filter((r) => (r.data.round as number) > 1)) expect(instructions.has(row.data.parent_instruction)).toBe(true);
  });

  it("eliminates failed evolutions into rejects with their reason, ending their lineage", async () => {
    const { rows, rejects } = await runGraph(definition, { count: 3, rounds: 2, minOutputWords: 100_000 });
    expect(rows).toEqual([]);
    expect(rejects).toHaveLength(3);
    for (const row of rejects) {
      expect(row.reject).toMatchObject({ operator: "eliminate_1", reason: "too_short", threshold: 100_000 });
      expect(row.reject!.value).toBeGreaterThan(0);
      expect(row.provenance.depth).toBe(1);
    }
  });

  it("asks a judge for information gain when gainCheck is judge", async () => {
    const { rows, rejects, summary } = await runGraph(definition, { count: 6, rounds: 2, gainCheck: "judge" });
    const names = summary.metrics.operators.map((op) => op.name);
    expect(names).toEqual(["evolution", "evolve_1", "gain_judge_1", "respond_1", "eliminate_1", "fork_1", "evolve_2", "gain_judge_2", "respond_2", "eliminate_2"]);
    const noGain = rejects.filter((row) => row.reject!.reason === "no_information_gain");
    expect(noGain.length).toBeGreaterThan(0);
    for (const row of noGain) {
      expect(row.reject!.operator).toMatch(/^gain_judge_[12]$/);
      expect(row.reject!.message!.length).toBeGreaterThan(0);
    }
    expect(rows.length + noGain.length).toBeGreaterThanOrEqual(6);
  });

  it("eliminates copied prompt words, apologies, stop-word answers, short answers and rewrites without gain", () => {
    const parent = "Explain how vaccines train the immune system.";
    const answer = "Vaccines show the immune system a harmless piece of a germ so it learns to recognise it.";
    expect(eliminationVerdict("Explain, in three steps and for a nurse, how mRNA vaccines train the immune system.", parent, answer, RULES)).toBe(true);
    expect(eliminationVerdict("#Rewritten Prompt#: Explain vaccines to a nurse.", parent, answer, RULES)).toMatchObject({ reason: "copied_prompt_words" });
    expect(eliminationVerdict("Explain how vaccines train the immune system!", parent, answer, RULES)).toMatchObject({
      reason: "no_information_gain",
      value: 1,
      threshold: 0.8,
    });
    expect(eliminationVerdict("Explain mRNA vaccines to a nurse in three steps.", parent, "Sorry, I cannot explain that.", RULES)).toMatchObject({
      reason: "apology",
      value: 5,
      threshold: 80,
    });
    expect(eliminationVerdict("Explain mRNA vaccines to a nurse in three steps.", parent, "... it is the, and!", RULES)).toMatchObject({ reason: "stop_words_only" });
    expect(eliminationVerdict("Explain mRNA vaccines to a nurse in three steps.", parent, "Antigens.", RULES)).toMatchObject({ reason: "too_short", value: 1, threshold: 3 });
    // With a judge deciding gain, a near copy is not eliminated here.
    expect(eliminationVerdict("Explain how vaccines train the immune system!", parent, answer, { ...RULES, gainCheck: "judge" })).toBe(true);
  });

  it("refuses unknown evolution kinds when the graph is built", async () => {
    await expect(buildGraph(definition, { kinds: ["deepen", "translate"] })).rejects.toThrow(/unknown: translate/);
  });

  it("writes the same rows at any concurrency and answer timing, and after a stopped run is resumed", async () => {
    const options = { count: 8, rounds: 2 };
    const whole = await runGraph(definition, { ...options, concurrency: 32 });
    expect(whole.rows.length).toBeGreaterThan(8);
    const slow = await startSimulator({ seed: defaults.seed, latencyMs: 1, tokensPerS: 20_000, maxConcurrency: 2 });
    try {
      vi.stubEnv("OPENAI_BASE_URL", slow.url);
      vi.stubEnv("RXSYNTH_MODEL", SIMULATOR_MODEL);
      // Every answer from the slow server, none from a response cache shared with the first run.
      vi.stubEnv("RXSYNTH_CACHE_DIR", "off");
      const jittered = await runGraph(definition, { ...options, concurrency: 2 }, { run: { budget: 4 } });
      expect(dataset(jittered.rows, jittered.rejects)).toEqual(dataset(whole.rows, whole.rejects));
    } finally {
      await slow.close();
    }
    vi.stubEnv("OPENAI_BASE_URL", "");
    const out = await tempDir();
    await runGraph(definition, options, { out, run: { limit: 3 } });
    const resumed = await runGraph(definition, options, { out });
    expect(dataset(resumed.rows, resumed.rejects)).toEqual(dataset(whole.rows, whole.rejects));
  }, 120_000);
});
