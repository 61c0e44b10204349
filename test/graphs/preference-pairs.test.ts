import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildGraph } from "../../src/index.ts";
import { exportRun } from "../../src/io/export.ts";
import definition, { defaults, promptText } from "../../graphs/preference-pairs.ts";
import { useGraphRuns } from "../support/graph-run.ts";

const { runGraph } = useGraphRuns();

type Step = { op: string; model: string | null; note: string | null };
const COLUMNS = ["prompt", "chosen", "rejected", "chosen_model", "rejected_model", "chosen_temperature", "rejected_temperature"];

describe("graphs/preference-pairs", () => {
  it("turns prompts into judged DPO pairs, rejecting pairs whose two orders disagree", async () => {
    const { summary, rows, rejects } = await runGraph(definition, { count: 8 });
    // 8 prompts x 3 pairs; the simulator's random verdicts agree across orders about a third of the time.
    expect(summary.accepted + summary.rejected).toBe(24);
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rejects.map((row) => (row.reject as { reason: string }).reason))).toEqual(new Set(["position_bias", "tie"]));

    for (const row of rows) {
      const data = row.data as Record<string, unknown>;
      expect(Object.keys(data).filter((key) => key !== "_extra")).toEqual(COLUMNS);
      expect(data.chosen).not.toBe(data.rejected);
      expect(defaults.temperatures).toContain(data.chosen_temperature);
      expect(defaults.temperatures).toContain(data.rejected_temperature);
      expect(data.chosen_temperature).not.toBe(data.rejected_temperature);
      const scores = row.scores as Record<string, number>;
      expect(scores.judge_agreement).toBe(1);
      expect(typeof scores.judge_margin).toBe("number");
      const provenance = row.provenance as { origin: string; depth: number; parents: string[]; steps: Step[] };
      expect(provenance).toMatchObject({ origin: "synthetic", source: "prompts", depth: 1 });
      expect(provenance.parents).toHaveLength(1);
      expect(provenance.steps.map((step) => step.op)).toEqual(["candidates", "pairs", "judge", "dpo"]);
      expect(provenance.steps[0]!.note).toBe("3 of 3 responses");
      // The judge's note keeps both verdicts, each with its rationale.
      const verdicts = JSON.parse(provenance.steps[2]!.note!) as Record<string, { winner: string; rationale: string }>;
      expect(Object.keys(verdicts)).toEqual(["ab", "ba"]);
    }
  });

  it("exports its rows as dpo JSONL", async () => {
    const { out, rows } = await runGraph(definition, { count: 4 });
    const summary = await exportRun(out, { format: "dpo", out: join(out, "dpo.jsonl") });
    const lines = (await readFile(join(out, "dpo.jsonl"), "utf8")).trim().split("\n").map((line) => JSON.parse(line) as Record<string, string>);
    expect(summary).toMatchObject({ written: rows.length, skipped: 0 });
    expect(lines.map((line) => Object.keys(line))).toEqual(rows.map(() => ["prompt", "chosen", "rejected"]));
    expect(lines.map((line) => line.chosen).sort()).toEqual(rows.map((row) => (row.data as { chosen: string }).chosen).sort());
  });

  it("asks each model in `models` and records which one wrote the chosen response", async () => {
    const { rows } = await runGraph(definition, { count: 16, models: ["sim-small", "sim-large"], temperatures: [0.7] });
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const data = row.data as Record<string, unknown>;
      expect(new Set([data.chosen_model, data.rejected_model])).toEqual(new Set(["sim-small", "sim-large"]));
      expect((row.provenance as { steps: Step[] }).steps[0]!.model).toBe("sim-small,sim-large");
    }
  });

  it("drops agreed pairs below minMargin as low_margin", async () => {
    const { rows, rejects } = await runGraph(definition, { count: 8, minMargin: 3 });
    for (const row of rows) expect((row.scores as Record<string, number>).judge_margin).toBeGreaterThanOrEqual(3);
    const low = rejects.filter((row) => (row.reject as { reason: string }).reason === "low_margin");
    expect(low.length).toBeGreaterThan(0);
    for (const row of low) expect((row.reject as { value: number; threshold: number }).threshold).toBe(3);
  });

  it("builds a prompt from a prompt field, or an instruction with its input", () => {
    expect(promptText({ prompt: " Hi " })).toBe("Hi");
    expect(promptText({ instruction: "Sort these.", instances: [{ input: "3, 1, 2", output: "1, 2, 3" }] })).toBe("Sort these.\n\n3, 1, 2");
    expect(promptText({ instruction: "Tell a joke.", input: "" })).toBe("Tell a joke.");
    expect(promptText({ text: "no prompt here" })).toBe("");
  });

  it("refuses a setup that gives fewer than two responses per prompt", async () => {
    await expect(buildGraph(definition, { temperatures: [0.7] })).rejects.toThrow(/a pair needs at least two/);
  });

  it("judges pairs in a seeded order, not index order, so response 0 is not in every pair when k > 3", async () => {
    const { rows, rejects } = await runGraph(definition, { count: 12, temperatures: [0.2, 0.5, 0.8, 1.1], maxPairsPerPrompt: 3 });
    const notes = [...rows, ...rejects]
      .map((row) => (row.provenance as { steps: Step[] } | undefined)?.steps.find((step) => step.op === "pairs")?.note)
      .filter((note): note is string => typeof note === "string");
    expect(notes.length).toBeGreaterThan(12);
    const withZero = notes.filter((note) => / 0 and /.test(note)).length;
    // 3 of the 6 pairs of 4 responses hold response 0: about half by chance, every one in index order.
    expect(withZero / notes.length).toBeLessThan(0.8);
    expect(notes.some((note) => !/ 0 and /.test(note))).toBe(true);
  });
});
