import { resolveDataPath } from "../../src/index.ts";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import definition, { backtranslationShots, defaults } from "../../graphs/instruction-backtranslation.ts";
import { useGraphRuns, useRecordingSimulator } from "../support/graph-run.ts";

const { runGraph, tempDir } = useGraphRuns();

describe("graphs/instruction-backtranslation", () => {
  it("pairs each kept document with a generated instruction and its self-curation grade", async () => {
    const documents = new Map(
      (await readFile(resolveDataPath(defaults.input), "utf8"))
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { id: string; text: string })
        .map((doc) => [doc.id, doc.text]),
    );
    const { rows, rejects } = await runGraph(definition, { threshold: 4 });
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length + rejects.length).toBe(documents.size);
    for (const row of rows) {
      expect(Object.keys(row.data).filter((key) => key !== "_extra").sort()).toEqual(["augmentation_tag", "instruction", "output"]);
      expect(row.data.augmentation_tag).toBe("Answer with knowledge from web search");
      expect((row.data.instruction as string).length).toBeGreaterThan(0);
      const [parent] = row.provenance.parents;
      expect(row.data.output).toBe(documents.get(parent!.replace("instruction-backtranslation:", "")));
      expect(row.scores.quality).toBeGreaterThanOrEqual(4);
      expect(row.scores.quality).toBeLessThanOrEqual(5);
      expect(row.provenance).toMatchObject({ origin: "synthetic", source: "instruction-backtranslation", depth: 1 });
      expect(row.provenance.steps.map((step) => step.op)).toEqual(["backtranslate", "self_curation"]);
      expect(row.provenance.steps[1]!.note!.length).toBeGreaterThan(0);
    }
    for (const row of rejects) {
      expect(row.reject).toMatchObject({ operator: "self_curation", reason: "low_score", threshold: 4 });
      expect(row.reject!.value).toBeLessThan(4);
    }
  });

  it("keeps only the paper's top grade, 5 of 5, by default", async () => {
    const { rows, rejects } = await runGraph(definition, {});
    for (const row of rows) expect(row.scores.quality).toBe(5);
    expect(rejects.filter((row) => row.reject!.reason === "low_score").length).toBeGreaterThan(rows.length);
  });

  it("reads a folder of plain-text documents, one document per file, and skips those too short to be answers", async () => {
    const folder = join(await tempDir(), "docs");
    await mkdir(folder);
    const long = "Rinse the rice until the water runs clear, then soak it for twenty minutes. Use one and a quarter cups of water for each cup of rice, bring it to a boil, cover the pot and simmer on the lowest heat for fifteen minutes. Let it rest, still covered, for ten more minutes before fluffing it with a fork.";
    await writeFile(join(folder, "a-rice.txt"), long);
    await writeFile(join(folder, "b-short.md"), "Too short to answer anything.");
    const { rows, rejects } = await runGraph(definition, { input: folder, threshold: 1 });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.data.output).toBe(long);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]!.reject).toMatchObject({ operator: "document_heuristics", reason: "too_few_words", threshold: 30 });
  });
});

describe("graphs/instruction-backtranslation, as the paper ran it (Li et al. 2023)", () => {
  const { requests } = useRecordingSimulator();
  const prompts = () => requests.map((request) => request.text);

  it("shows the model human-written answer -> request pairs, and grades on the paper's 5-point scale", async () => {
    const shots = await backtranslationShots(defaults.shots);
    expect(shots).toHaveLength(3);
    await runGraph(definition, { count: 4 });
    const backtranslations = prompts().filter((prompt) => prompt.includes("Infer the single request"));
    const gradings = prompts().filter((prompt) => prompt.includes("good example of how an AI assistant should answer"));
    expect(backtranslations.length).toBeGreaterThan(0);
    expect(gradings.length).toBeGreaterThan(0);
    for (const prompt of backtranslations) for (const shot of shots) expect(prompt).toContain(JSON.stringify({ instruction: shot.instruction }));
    for (const prompt of gradings) {
      expect(prompt).toMatch(/\b1\b[^\n]*\b5\b|\b5\b[^\n]*\b1\b/);
      expect(prompt).toContain("5: a perfect assistant answer");
      expect(prompt).not.toMatch(/\b10\b/);
    }
  });

  it("sends no examples with shots=0", async () => {
    await runGraph(definition, { count: 2, shots: 0 });
    const backtranslations = prompts().filter((prompt) => prompt.includes("Infer the single request"));
    expect(backtranslations.length).toBeGreaterThan(0);
    for (const prompt of backtranslations) expect(prompt).not.toContain("Examples, each a text");
  });
});
