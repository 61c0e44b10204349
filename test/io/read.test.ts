import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ShardedSink, arrowFormat, describeOutput, jsonlFormat, parquetFormat, readRows } from "../../src/io/index.ts";
import { plain, rejectRows, sampleRows, tempDir } from "./fixtures.ts";

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

describe("describeOutput", () => {
  it("describes a parquet output folder: files, typed schema, row count, first rows", async () => {
    const accepted = new ShardedSink(dir, parquetFormat(), "accepted", { maxRowsPerShard: 6 });
    await accepted.write(sampleRows(14));
    await accepted.commit();
    const rejects = new ShardedSink(dir, parquetFormat(), "rejects");
    await rejects.write(rejectRows(2));
    await rejects.commit();

    const description = await describeOutput(dir, { limit: 2 });
    expect(description.files.map((file) => basename(file))).toEqual([
      "part-00000.parquet",
      "part-00001.parquet",
      "part-00002.parquet",
      "rejects-00000.parquet",
    ]);
    expect(description.fileDetails.map((file) => file.rows)).toEqual([6, 6, 2, 2]);
    expect(description.rowCount).toBe(16);
    expect(description.schema).toContain("  depth: int32");
    expect(description.schema).toContain("  steps: list<struct>");
    expect(description.schema).toContain("    at: timestamp<millisecond, utc>");
    expect(description.schema).toContain("  tags: utf8 (json)");
    expect(description.schema).toContain("scores: map<utf8, float64>");
    expect(description.firstRows).toEqual(plain(sampleRows(2)));
  });

  it("describes a single arrow file and a jsonl file", async () => {
    const arrow = new ShardedSink(join(dir, "a"), arrowFormat(), "accepted");
    await arrow.write(sampleRows(3));
    const [arrowShard] = await arrow.commit();
    const arrowDescription = await describeOutput(arrowShard!.file);
    expect([arrowDescription.rowCount, arrowDescription.fileDetails[0]!.format]).toEqual([3, "arrow"]);
    expect(arrowDescription.schema).toContain("  depth: int32");

    const jsonl = new ShardedSink(join(dir, "j"), jsonlFormat(), "accepted");
    await jsonl.write(sampleRows(4));
    await jsonl.commit();
    const jsonlDescription = await describeOutput(join(dir, "j"), { limit: 1 });
    expect(jsonlDescription.rowCount).toBe(4);
    expect(jsonlDescription.schema).toContain("  depth: number");
    expect(jsonlDescription.firstRows).toEqual(plain(sampleRows(1)));
  });
});

describe("readRows", () => {
  it("stops at the limit and reads one prefix of a folder when asked", async () => {
    const accepted = new ShardedSink(dir, jsonlFormat(), "accepted", { maxRowsPerShard: 2 });
    await accepted.write(sampleRows(5));
    await accepted.commit();
    const rejects = new ShardedSink(dir, jsonlFormat(), "rejects");
    await rejects.write(rejectRows(1));
    await rejects.commit();
    expect(await readRows(dir, { limit: 3 })).toEqual(plain(sampleRows(3)));
    expect(await readRows(dir, { prefix: "rejects" })).toEqual(plain(rejectRows(1)));
  });
});

describe("reading JSONL output with invalid UTF-8", () => {
  it("names the file and line and says the bytes are not UTF-8", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rxsynth-read-utf8-"));
    const file = join(dir, "rows.jsonl");
    await writeFile(file, Buffer.concat([Buffer.from('{"id":"a","data":{}}\n'), Buffer.from([0xff, 0xfe]), Buffer.from(" bad\n")]));
    await expect(readRows(file)).rejects.toThrow(`${file}, line 2: invalid UTF-8`);
    await rm(dir, { recursive: true, force: true });
  });
});
