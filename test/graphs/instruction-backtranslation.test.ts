import { resolveDataPath } from "../../src/index.ts";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import definition, { defaults } from "../../graphs/instruction-backtranslation.ts";
import { useGraphRuns } from "../support/graph-run.ts";

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
    const { rows, rejects } = await runGraph(definition, { threshold: 5 });
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length + rejects.length).toBe(documents.size);
    for (const row of rows) {
      expect(Object.keys(row.data).filter((key) => key !== "_extra").sort()).toEqual(["instruction", "output"]);
      expect((row.data.instruction as string).length).toBeGreaterThan(0);
      const [parent] = row.provenance.parents;
      expect(row.data.output).toBe(documents.get(parent!.replace("instruction-backtranslation:", "")));
      expect(row.scores.quality).toBeGreaterThanOrEqual(5);
      expect(row.provenance).toMatchObject({ origin: "synthetic", source: "instruction-backtranslation", depth: 1 });
      expect(row.provenance.steps.map((step) => step.op)).toEqual(["backtranslate", "self_curation"]);
      expect(row.provenance.steps[1]!.note!.length).toBeGreaterThan(0);
    }
    for (const row of rejects) {
      expect(row.reject).toMatchObject({ operator: "self_curation", reason: "low_score", threshold: 5 });
      expect(row.reject!.value).toBeLessThan(5);
    }
  });

  it("keeps only the paper's top grade by default", async () => {
    const { rows, rejects } = await runGraph(definition, {});
    for (const row of rows) expect(row.scores.quality).toBeGreaterThanOrEqual(9);
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
