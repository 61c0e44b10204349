import { readdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ShardedSink,
  cleanTemporaryFiles,
  jsonlFormat,
  listShardFiles,
  parquetFormat,
  readRows,
} from "../../src/io/index.ts";
import { WRITER_TOKEN } from "../../src/io/shards.ts";
import { plain, rejectRows, sampleRows, tempDir } from "./fixtures.ts";

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

const names = async (): Promise<string[]> => (await readdir(dir)).sort();

describe("ShardedSink", () => {
  it("keeps shards under temporary names until commit, rotating at maxRowsPerShard", async () => {
    const sink = new ShardedSink(dir, parquetFormat(), "accepted", { maxRowsPerShard: 10 });
    await sink.write(sampleRows(25));
    expect(await names()).toEqual([`.part-00000.parquet.${WRITER_TOKEN}.tmp`, `.part-00001.parquet.${WRITER_TOKEN}.tmp`, `.part-00002.parquet.${WRITER_TOKEN}.tmp`]);
    expect(await listShardFiles(dir)).toEqual([]);

    const shards = await sink.commit();
    expect(await names()).toEqual(["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]);
    expect(shards.map((s) => [basename(s.file), s.rows, s.kind, s.format])).toEqual([
      ["part-00000.parquet", 10, "accepted", "parquet"],
      ["part-00001.parquet", 10, "accepted", "parquet"],
      ["part-00002.parquet", 5, "accepted", "parquet"],
    ]);
    for (const shard of shards) expect(shard.bytes).toBeGreaterThan(0);
    expect(await readRows(dir)).toEqual(plain(sampleRows(25)));
  });

  it("returns only the shards finished since the last commit, and nothing when nothing was written", async () => {
    const sink = new ShardedSink(dir, jsonlFormat(), "accepted", { maxRowsPerShard: 4 });
    await sink.write(sampleRows(3));
    expect((await sink.commit()).map((s) => basename(s.file))).toEqual(["part-00000.jsonl"]);
    expect(await sink.commit()).toEqual([]);
    await sink.write(sampleRows(5));
    expect((await sink.commit()).map((s) => [basename(s.file), s.rows])).toEqual([
      ["part-00001.jsonl", 4],
      ["part-00002.jsonl", 1],
    ]);
    expect(sink.nextIndex).toBe(3);
  });

  it("leaves a shard that was never committed as .tmp, which cleanTemporaryFiles removes", async () => {
    const sink = new ShardedSink(dir, parquetFormat(), "rejects", { maxRowsPerShard: 100 });
    await sink.write(rejectRows(2));
    await sink.commit();
    await sink.write(rejectRows(3));
    // A killed run stops here: the open shard never gets its final name.
    expect(await names()).toEqual([`.rejects-00001.parquet.${WRITER_TOKEN}.tmp`, "rejects-00000.parquet"]);
    expect(await cleanTemporaryFiles(dir)).toEqual([`.rejects-00001.parquet.${WRITER_TOKEN}.tmp`]);
    expect(await names()).toEqual(["rejects-00000.parquet"]);
    await sink.abort();
  });

  it.each([true, false])("abort deletes the open shard and uncommitted finished ones, keeping committed ones (worker: %s)", async (worker) => {
    const sink = new ShardedSink(dir, parquetFormat({ worker }), "accepted", { maxRowsPerShard: 2 });
    await sink.write(sampleRows(2));
    await sink.commit();
    await sink.write(sampleRows(3));
    expect(await names()).toEqual([`.part-00001.parquet.${WRITER_TOKEN}.tmp`, `.part-00002.parquet.${WRITER_TOKEN}.tmp`, "part-00000.parquet"]);
    await sink.abort();
    expect(await names()).toEqual(["part-00000.parquet"]);
  });

  it("starts numbering at startIndex with the given prefix", async () => {
    const sink = new ShardedSink(join(dir, "nested", "out"), jsonlFormat(), "accepted", {
      prefix: "train",
      startIndex: 41,
    });
    await sink.write(sampleRows(1));
    const [shard] = await sink.commit();
    expect(shard!.file).toBe(join(dir, "nested", "out", "train-00041.jsonl"));
  });

  it("serialises overlapping writes so rows keep their order", async () => {
    const sink = new ShardedSink(dir, jsonlFormat(), "accepted", { maxRowsPerShard: 7 });
    const rows = sampleRows(20);
    await Promise.all([sink.write(rows.slice(0, 5)), sink.write(rows.slice(5, 12)), sink.write(rows.slice(12))]);
    await sink.commit();
    expect(await readRows(dir)).toEqual(plain(rows));
  });

  it("rejects a non-positive maxRowsPerShard with a ConfigError", () => {
    expect(() => new ShardedSink(dir, jsonlFormat(), "accepted", { maxRowsPerShard: 0 })).toThrow(/maxRowsPerShard/);
  });
});

describe("listShardFiles", () => {
  it("lists committed shards sorted, ignoring temporary and unrelated files, optionally by prefix", async () => {
    for (const name of ["part-00001.parquet", "part-00000.parquet", "rejects-00000.parquet", ".part-00002.parquet.tmp", "manifest.json"]) {
      await writeFile(join(dir, name), "x");
    }
    expect((await listShardFiles(dir)).map((f) => basename(f))).toEqual([
      "part-00000.parquet",
      "part-00001.parquet",
      "rejects-00000.parquet",
    ]);
    expect((await listShardFiles(dir, { prefix: "rejects" })).map((f) => basename(f))).toEqual(["rejects-00000.parquet"]);
    expect(await listShardFiles(join(dir, "missing"))).toEqual([]);
  });
});
