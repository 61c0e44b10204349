import { resolveDataPath } from "../../src/index.ts";
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import definition, { defaults } from "../../graphs/augment.ts";
import { rougeL } from "../../operators/diversity/rouge.ts";
import { useGraphRuns } from "../support/graph-run.ts";

const { runGraph } = useGraphRuns();

async function examples(): Promise<Map<string, { text: string; label: string }>> {
  const lines = (await readFile(resolveDataPath(defaults.input), "utf8")).trim().split("\n");
  return new Map(lines.map((line) => JSON.parse(line) as { id: string; text: string; label: string }).map((e) => [e.id, e]));
}

describe("graphs/augment", () => {
  it("writes originals and their paraphrases, style rewrites and expansions, each with the original's label", async () => {
    const input = await examples();
    const { rows } = await runGraph(definition, { count: 3, checkLabel: false });
    // Per example: the original, 2 paraphrases, 3 styles, 2 expansions.
    expect(rows).toHaveLength(3 * 8);
    const kinds = rows.map((row) => row.data.augmentation as string).sort();
    expect(new Set(kinds)).toEqual(new Set(["original", "paraphrase", "style:formal", "style:casual", "style:technical", "expansion"]));
    for (const row of rows) {
      expect(Object.keys(row.data).filter((key) => key !== "_extra").sort()).toEqual(["augmentation", "label", "original_text", "text"]);
      // Sample ids are <source>:<record id>: the parent names the example by its own id behind its source.
      const example = input.get(row.provenance.parents[0]!.replace(`${row.provenance.source}:`, ""));
      expect(example).toBeDefined();
      if (row.data.augmentation === "original") {
        expect(row.provenance).toMatchObject({ origin: "human", depth: 0 });
        expect(row.data).toMatchObject({ text: example!.text, label: example!.label, original_text: example!.text });
        continue;
      }
      expect(row.data).toMatchObject({ label: example!.label, original_text: example!.text });
      expect(row.data.text).not.toBe(example!.text);
      expect(row.provenance).toMatchObject({ origin: "synthetic", depth: 1 });
      expect(row.provenance.steps.map((step) => step.op)).toEqual(["augment"]);
      expect(row.provenance.steps[0]!.note).toBe(row.data.augmentation);
    }
  });

  it("rejects variants too similar to their original, with the ROUGE-L and the threshold", async () => {
    const { rows, rejects } = await runGraph(definition, { count: 2, checkLabel: false, maxSimilarity: 0.08 });
    const near = rejects.filter((row) => row.reject!.reason === "near_copy");
    expect(near.length).toBeGreaterThan(0);
    for (const row of near) {
      expect(row.reject!.operator).toBe("near_copy_filter");
      expect(row.reject!.threshold).toBe(0.08);
      expect(row.reject!.value).toBeCloseTo(rougeL(row.data.text as string, row.data.original_text as string), 12);
      expect(row.reject!.value).toBeGreaterThanOrEqual(0.08);
    }
    for (const row of rows.filter((r) => r.data.augmentation !== "original")) {
      expect(rougeL(row.data.text as string, row.data.original_text as string)).toBeLessThan(0.08);
    }
  });

  it("drops variants whose zero-shot label differs from the example's", async () => {
    const { rows, rejects } = await runGraph(definition, { count: 2 });
    const changed = rejects.filter((row) => row.reject!.reason === "label_changed");
    expect(changed.length).toBeGreaterThan(0);
    for (const row of changed) {
      expect(row.reject!.operator).toBe("check_label");
      expect(row.reject!.message).toMatch(new RegExp(`^labelled ${row.data.label as string}, classified as (positive|negative|neutral)$`));
      expect(row.reject!.message).not.toMatch(new RegExp(`classified as ${row.data.label as string}$`));
    }
    expect(rows.filter((row) => row.data.augmentation === "original")).toHaveLength(2);
  });
});
