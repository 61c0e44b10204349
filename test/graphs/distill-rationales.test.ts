import { describe, expect, it } from "vitest";
import { buildGraph } from "../../src/index.ts";
import definition, { defaults } from "../../graphs/distill-rationales.ts";
import { readSeedTasks } from "../../graphs/lib/self-instruct-steps.ts";
import { useGraphRuns } from "../support/graph-run.ts";

const { runGraph } = useGraphRuns();

describe("graphs/distill-rationales", () => {
  it("answers each prompt under its system instructions, recorded in the data and the provenance", async () => {
    const seeds = await readSeedTasks(defaults.input);
    const { rows, rejects, summary } = await runGraph(definition, { count: 6, systemsPerPrompt: 3 });
    expect(summary.metrics.operators.find((op) => op.name === "assign_system")!.out).toBe(18);
    expect(rows.length + rejects.length).toBe(18);
    expect(rows.length).toBeGreaterThan(12);
    const byName = new Map(defaults.systemInstructions.map((system) => [system.name, system.text]));
    for (const row of rows) {
      expect(Object.keys(row.data).filter((key) => key !== "_extra").sort()).toEqual(["input", "instruction", "output", "system", "system_name"]);
      expect(row.data.system).toBe(byName.get(row.data.system_name as string));
      const seed = seeds.find((task) => task.instruction === row.data.instruction)!;
      expect(seed).toBeDefined();
      expect(row.data.input).toBe(seed.instances[0]!.input.trim());
      expect(row.provenance).toMatchObject({ origin: "synthetic", depth: 1 });
      expect(row.provenance.steps.map((step) => step.op)).toEqual(["assign_system", "teacher"]);
      expect(row.provenance.steps[0]!.note).toBe(`system: ${row.data.system_name as string}`);
      expect(row.provenance.steps[1]!.model).toBe("rxsynth-sim");
      expect((row.data.output as string).split(/\s+/).length).toBeGreaterThanOrEqual(defaults.minOutputWords);
    }
    // With all three instructions per prompt, every prompt is answered under distinct ones.
    const perPrompt = new Map<string, string[]>();
    for (const row of rows) perPrompt.set(row.data.instruction as string, [...(perPrompt.get(row.data.instruction as string) ?? []), row.data.system_name as string]);
    expect(perPrompt.size).toBe(6);
    for (const names of perPrompt.values()) expect(new Set(names).size).toBe(names.length);
    for (const row of rejects) expect(["refusals", "rationale_heuristics", "dedup_answers"]).toContain(row.reject!.operator);
  });

  it("takes system instructions from its options and checks how many a prompt may get", async () => {
    const custom = [{ name: "socratic", text: "Answer by asking and then answering the questions that lead to the solution." }];
    const { rows } = await runGraph(definition, { count: 3, systemInstructions: custom });
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.data).toMatchObject({ system_name: "socratic", system: custom[0]!.text });
    await expect(buildGraph(definition, { systemInstructions: custom, systemsPerPrompt: 2 })).rejects.toThrow(/systemsPerPrompt must be an integer from 1 to 1/);
  });
});
