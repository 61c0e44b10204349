import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveDataPath } from "../../src/index.ts";
import definition, { defaults } from "../../graphs/curate.ts";
import { jaccard, MINHASH_DEFAULTS, shingles } from "../../operators/dedup/minhash.ts";
import { useGraphRuns } from "../support/graph-run.ts";

const { runGraph, tempDir } = useGraphRuns();

type Doc = { id: string; text: string; url: string };

/** What data/curate.jsonl plants, by record id: the rule that rejects it and, for a duplicate, the record it repeats. */
const PLANTED: Record<string, { operator: string; reason: string; duplicateOf?: string }> = {
  "doc-003": { operator: "document_heuristics", reason: "too_few_words" },
  "doc-017": { operator: "document_heuristics", reason: "too_few_words" },
  "doc-021": { operator: "document_heuristics", reason: "symbol_ratio" },
  "doc-031": { operator: "document_heuristics", reason: "bullet_lines" },
  "doc-040": { operator: "document_heuristics", reason: "ellipsis_lines" },
  "doc-048": { operator: "document_heuristics", reason: "dup_line_frac" },
  "doc-055": { operator: "document_heuristics", reason: "stop_words" },
  // A copy, a copy partly in capitals, one with extra spaces and a line break, one all lowercase.
  "doc-009": { operator: "exact_dedup", reason: "exact_duplicate", duplicateOf: "doc-004" },
  "doc-025": { operator: "exact_dedup", reason: "exact_duplicate", duplicateOf: "doc-013" },
  "doc-038": { operator: "exact_dedup", reason: "exact_duplicate", duplicateOf: "doc-019" },
  "doc-050": { operator: "exact_dedup", reason: "exact_duplicate", duplicateOf: "doc-029" },
  "doc-058": { operator: "exact_dedup", reason: "exact_duplicate", duplicateOf: "doc-041" },
  // A sentence appended, or a word or two of one sentence changed.
  "doc-012": { operator: "near_dedup", reason: "near_duplicate", duplicateOf: "doc-006" },
  "doc-027": { operator: "near_dedup", reason: "near_duplicate", duplicateOf: "doc-015" },
  "doc-033": { operator: "near_dedup", reason: "near_duplicate", duplicateOf: "doc-023" },
  "doc-043": { operator: "near_dedup", reason: "near_duplicate", duplicateOf: "doc-034" },
  "doc-053": { operator: "near_dedup", reason: "near_duplicate", duplicateOf: "doc-045" },
  "doc-061": { operator: "near_dedup", reason: "near_duplicate", duplicateOf: "doc-056" },
};

async function inputDocs(): Promise<Doc[]> {
  return (await readFile(resolveDataPath(defaults.input), "utf8"))
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Doc);
}

/**
 * Exact Jaccard similarity of the word 5-gram sets near-dedup estimates: the operator's own shingling
 * (`shingles` with its default shingle, lowercased words with punctuation deleted, each 5-gram hashed to 32
 * bits), so the sets are the ones MinHash summarises, not an approximation of them.
 */
function pairsAbove(texts: readonly { id: string; text: string }[], threshold: number): string[] {
  const sets = texts.map((doc) => new Set(shingles(doc.text, MINHASH_DEFAULTS.shingle)));
  const pairs: string[] = [];
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      const similarity = jaccard(sets[i]!, sets[j]!);
      if (similarity >= threshold) pairs.push(`${texts[i]!.id} ~ ${texts[j]!.id}: ${similarity.toFixed(3)}`);
    }
  }
  return pairs;
}

const recordId = (sampleId: string | null) => sampleId?.replace(/^curate:/, "");

describe("graphs/curate", () => {
  it("keeps the 44 distinct documents of the default input and rejects each planted duplicate and low-quality page with its reason", async () => {
    const docs = await inputDocs();
    expect(docs).toHaveLength(62);
    const { summary, rows, rejects } = await runGraph(definition, {});
    expect(summary.accepted).toBe(44);
    expect(rows).toHaveLength(44);
    const got = Object.fromEntries(
      rejects.map((row) => [
        recordId(row.id),
        { operator: row.reject!.operator, reason: row.reject!.reason, ...(row.reject!.duplicate_of ? { duplicateOf: recordId(row.reject!.duplicate_of) } : {}) },
      ]),
    );
    expect(got).toEqual(PLANTED);
    for (const row of rejects.filter((row) => row.reject!.reason === "near_duplicate")) {
      expect(row.reject!.threshold).toBe(defaults.threshold);
      expect(row.reject!.value).toBeGreaterThanOrEqual(defaults.threshold);
    }
    expect(rejects.find((row) => row.reject!.reason === "too_few_words")!.reject).toMatchObject({ threshold: 50 });
    // Every document once: kept or rejected.
    expect([...rows, ...rejects].map((row) => recordId(row.id)).sort()).toEqual(docs.map((doc) => doc.id).sort());
  });

  it("writes each kept document's fields unchanged, with no steps in its provenance", async () => {
    const docs = new Map((await inputDocs()).map((doc) => [doc.id, doc]));
    const { rows } = await runGraph(definition, {});
    for (const row of rows) {
      const { _extra, ...data } = row.data;
      expect(data).toEqual(docs.get(row.id.replace(/^curate:/, "")));
      expect(row.provenance).toMatchObject({ origin: "human", source: "curate", depth: 0, parents: [], steps: [] });
    }
  });

  it("leaves no kept pair whose word 5-gram Jaccard similarity reaches the threshold, where the input has several", async () => {
    const docs = await inputDocs();
    // The check can fail: the input holds the planted near-duplicate pairs (and the exact copies) above it.
    expect(pairsAbove(docs, defaults.threshold).length).toBeGreaterThanOrEqual(11);
    const { rows } = await runGraph(definition, {});
    expect(pairsAbove(rows.map((row) => ({ id: row.id, text: row.data.text as string })), defaults.threshold)).toEqual([]);
  });

  it("reads the document from `textField` and applies the word limits it is given", async () => {
    const file = join(await tempDir(), "pages.jsonl");
    const docs = (await inputDocs()).filter((doc) => !(doc.id in PLANTED)).slice(0, 6);
    const lines = docs.map((doc, n) => JSON.stringify({ page: n, content: doc.text }));
    await writeFile(file, `${lines.join("\n")}\n${lines[0]}\n`);
    const shortest = Math.min(...docs.map((doc) => doc.text.split(/\s+/).length));
    const { rows, rejects } = await runGraph(definition, { input: file, textField: "content", minWords: shortest + 1, count: 6 });
    // count=6 leaves out the repeated first line; the shortest document is now below minWords.
    expect(rows).toHaveLength(5);
    expect(rejects.map((row) => row.reject!.reason)).toEqual(["too_few_words"]);
    expect(rows.every((row) => Object.keys(row.data).includes("content"))).toBe(true);
  });
});
