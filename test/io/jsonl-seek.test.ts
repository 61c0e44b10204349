// A JSONL source read from a position seeks to the nearest line start it has seen instead of counting
// every line before it again (a scaled-out worker reads one file chunk after chunk). Whatever it has
// read before, and in whatever order, a read from `from` must yield exactly what a fresh source yields.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { jsonlSource } from "../../src/io/jsonl-source.ts";
import type { SourceItem } from "../../src/io/types.ts";

const dir = mkdtempSync(join(tmpdir(), "rxsynth-jsonl-seek-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** About 3.5 MiB over several 1 MiB reads: blank lines, a bad line, a line longer than a read, no final newline. */
function writeFile(): { path: string; lines: number } {
  const lines: string[] = [];
  for (let i = 0; i < 30_000; i++) {
    if (i % 997 === 0) lines.push("");
    else if (i === 12_345) lines.push("{not json");
    else if (i === 20_000) lines.push(JSON.stringify({ i, text: "x".repeat(1_300_000) }));
    else lines.push(JSON.stringify({ i, text: "y".repeat(i % 90) }));
  }
  const path = join(dir, "big.jsonl");
  writeFileSync(path, lines.join("\n"));
  return { path, lines: lines.length };
}

async function read(source: ReturnType<typeof jsonlSource>, from: number, limit: number): Promise<SourceItem[]> {
  const items: SourceItem[] = [];
  for await (const batch of source.batches({ from, signal: new AbortController().signal })) {
    items.push(...batch);
    if (items.length >= limit) break;
  }
  return items.slice(0, limit);
}

const summary = (items: readonly SourceItem[]) => items.map((item) => `${item.position}:${item.error ? "error" : (item.data as { i: number }).i}`);

describe("jsonlSource from a position", () => {
  it("yields what a fresh source yields, after any earlier reads", async () => {
    const { path, lines } = writeFile();
    const warm = jsonlSource(path);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: lines + 5 }), { minLength: 1, maxLength: 6 }), async (froms) => {
        for (const from of froms) {
          const fresh = summary(await read(jsonlSource(path), from, 40));
          expect(summary(await read(warm, from, 40))).toEqual(fresh);
        }
      }),
      { seed: 20261202, numRuns: 12 },
    );
  }, 120_000);
});
