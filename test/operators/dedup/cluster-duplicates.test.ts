import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet";
import { Table as WasmTable, writeParquet } from "parquet-wasm";
import { afterAll, describe, expect, it } from "vitest";
import { InputError } from "../../../src/index.ts";
import { clusterDuplicates } from "../../../operators/dedup/cluster-duplicates.ts";
import { corpus } from "./fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "rxsynth-cluster-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeInput(path: string, columns: Record<string, unknown[] | Float64Array | Int32Array>): void {
  const table = tableFromArrays(columns as Parameters<typeof tableFromArrays>[0]);
  writeFileSync(path, writeParquet(WasmTable.fromIPCStream(tableToIPC(table, "stream"))));
}

describe("clusterDuplicates", () => {
  it("adds a cluster_id column naming the first row of each near-duplicate group, readable by hyparquet", async () => {
    const gen = corpus(31);
    const a = gen.document(200);
    const b = gen.document(200);
    const c = gen.document(200);
    const texts = [a, b, gen.edit(a, 0.005), c, gen.edit(b, 0.005), gen.edit(a, 0.3), a];
    const input = join(dir, "in.parquet");
    const output = join(dir, "out.parquet");
    writeInput(input, { id: texts.map((_, i) => `r${i}`), text: texts, score: Float64Array.from(texts, (_, i) => i / 10) });

    const summary = await clusterDuplicates(input, output, { fields: "text", threshold: 0.8 });
    expect(summary).toEqual({ rows: 7, clusters: 4, duplicates: 3 });

    const rows = await parquetReadObjects({ file: await asyncBufferFromFile(output) });
    expect(rows.map((row) => row.cluster_id)).toEqual([0, 1, 0, 3, 1, 5, 0]);
    expect(rows.map((row) => row.id)).toEqual(texts.map((_, i) => `r${i}`));
    expect(rows[2]!.text).toBe(texts[2]);
    expect(rows[6]!.score).toBeCloseTo(0.6);
  });

  it("replaces an existing cluster column instead of adding a second", async () => {
    const input = join(dir, "again.parquet");
    const output = join(dir, "again-out.parquet");
    writeInput(input, { text: ["same words here", "same words here"], cluster_id: Int32Array.from([9, 9]) });
    await clusterDuplicates(input, output);
    const rows = await parquetReadObjects({ file: await asyncBufferFromFile(output) });
    expect(rows).toEqual([
      { text: "same words here", cluster_id: 0 },
      { text: "same words here", cluster_id: 0 },
    ]);
  });

  it("names the file and column when the text column is missing", async () => {
    const input = join(dir, "missing.parquet");
    writeInput(input, { body: ["x"] });
    await expect(clusterDuplicates(input, join(dir, "never.parquet"), { fields: "text" })).rejects.toThrow(InputError);
    await expect(clusterDuplicates(join(dir, "absent.parquet"), join(dir, "never.parquet"))).rejects.toThrow(/absent\.parquet/);
  });
});
