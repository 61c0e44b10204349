import { resolveDataPath } from "../../src/index.ts";
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { childSampleId } from "../../src/index.ts";
import { countTokens } from "../../src/llm/index.ts";
import definition, { chunkByTokens, defaults } from "../../graphs/qa-from-documents.ts";
import { useGraphRuns } from "../support/graph-run.ts";

const { runGraph } = useGraphRuns();

async function documents(): Promise<{ id: string; title: string; text: string }[]> {
  return (await readFile(resolveDataPath(defaults.input), "utf8"))
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { id: string; title: string; text: string });
}

describe("graphs/qa-from-documents", () => {
  it("cuts documents into token-bounded chunks that overlap and cover every word", async () => {
    for (const doc of await documents()) {
      const chunks = chunkByTokens(doc.text, 100, 20, "gpt-4o-mini");
      expect(chunks.length).toBeGreaterThan(2);
      const words = doc.text.split(/\s+/);
      const pieces = doc.text.match(/\s*\S+/g)!;
      expect(chunks[0]!.firstWord).toBe(0);
      expect(chunks.at(-1)!.endWord).toBe(words.length);
      chunks.forEach((chunk, i) => {
        expect(chunk.tokens).toBe(countTokens(chunk.text, "gpt-4o-mini"));
        expect(chunk.tokens).toBeLessThanOrEqual(100);
        expect(chunk.text.replace(/\s+/g, " ")).toBe(words.slice(chunk.firstWord, chunk.endWord).join(" "));
        const next = chunks[i + 1];
        if (!next) return;
        // The next chunk starts inside this one (overlap), at most 20 tokens back, and always moves on.
        expect(next.firstWord).toBeGreaterThan(chunk.firstWord);
        expect(next.firstWord).toBeLessThanOrEqual(chunk.endWord);
        expect(countTokens(pieces.slice(next.firstWord, chunk.endWord).join("").trim(), "gpt-4o-mini")).toBeLessThanOrEqual(20);
      });
      expect(chunks.slice(0, -1).some((chunk, i) => chunks[i + 1]!.firstWord < chunk.endWord)).toBe(true);
    }
  });

  it("writes grounded pairs whose provenance names their chunk, which names its document", async () => {
    const docs = await documents();
    const { rows, summary } = await runGraph(definition, { threshold: 1 });
    const chunkCounter = summary.metrics.operators.find((op) => op.name === "chunk")!;
    expect(chunkCounter.out).toBeGreaterThan(docs.length);
    expect(rows.length).toBeGreaterThanOrEqual(chunkCounter.out);
    for (const row of rows) {
      expect(Object.keys(row.data).filter((key) => key !== "_extra").sort()).toEqual(["answer", "chunk_id", "context", "document_id", "question", "title"]);
      // The document's sample id: <source>:<record id>.
      const doc = docs.find((d) => `${row.provenance.source}:${d.id}` === row.data.document_id)!;
      expect(row.data.title).toBe(doc.title);
      const [, index] = /^.+#(\d+)$/.exec(row.data.chunk_id as string)!;
      // Chunks are same-generation children of the document; the pair is the next generation of its chunk.
      expect(row.provenance.parents).toEqual([childSampleId(row.data.document_id as string, "chunk", Number(index))]);
      expect(row.provenance).toMatchObject({ origin: "synthetic", depth: 1 });
      expect(row.provenance.steps.map((step) => step.op)).toEqual(["chunk", "generate_qa", "grounding_judge"]);
      expect(row.provenance.steps[0]!.note).toMatch(/^chunk \d+ of \d+: words \d+-\d+, \d+ tokens$/);
      expect(row.provenance.steps[1]!.note).toContain(`from chunk ${row.data.chunk_id as string}`);
      expect(doc.text.replace(/\s+/g, " ")).toContain((row.data.context as string).replace(/\s+/g, " "));
      expect(countTokens(row.data.context as string)).toBeLessThanOrEqual(defaults.chunkTokens);
      expect(row.scores.grounding).toBeGreaterThanOrEqual(1);
    }
  });

  it("rejects answers the judge finds unsupported by their chunk", async () => {
    const { rows, rejects } = await runGraph(definition, { count: 2 });
    const low = rejects.filter((row) => row.reject!.reason === "low_score");
    expect(low.length).toBeGreaterThan(0);
    for (const row of low) {
      expect(row.reject).toMatchObject({ operator: "grounding_judge", threshold: 7 });
      expect(row.reject!.value).toBeLessThan(7);
    }
    for (const row of rows) expect(row.scores.grounding).toBeGreaterThanOrEqual(7);
  });
});
