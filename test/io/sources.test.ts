import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Field, Int32, List, Struct, Table, Utf8, tableFromArrays, tableToIPC, vectorFromArray } from "apache-arrow";
import * as parquetWasm from "parquet-wasm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InputError, type Source, type SourceItem } from "../../src/index.ts";
import {
  ShardedSink,
  arrowFormat,
  arrowSource,
  jsonlFormat,
  jsonlSource,
  memorySource,
  openSource,
  parquetFormat,
  parquetSource,
} from "../../src/io/index.ts";
import { plain, sampleRows, tempDir } from "./fixtures.ts";

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

async function batchesOf(source: Source, from = 0, signal = new AbortController().signal): Promise<SourceItem[][]> {
  const batches: SourceItem[][] = [];
  for await (const batch of source.batches({ from, signal })) batches.push([...batch]);
  return batches;
}

async function itemsOf(source: Source, from = 0): Promise<SourceItem[]> {
  return (await batchesOf(source, from)).flat();
}

/** Lines 1-8: good, blank, bad JSON, an array, numeric id, invalid UTF-8, CRLF, last line without newline. */
async function messyJsonl(): Promise<string> {
  const path = join(dir, "messy.jsonl");
  await writeFile(
    path,
    Buffer.concat([
      Buffer.from('{"id":"a","text":"first"}\n\n{bad json\n[1,2]\n{"id":7,"text":"seven"}\n'),
      Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x0a]),
      Buffer.from('{"text":"no id, crlf"}\r\n{"id":"last","text":"ünïcode ✓"}'),
    ]),
  );
  return path;
}

describe("jsonlSource", () => {
  it("yields every readable line and an error item naming file and line for each bad one", async () => {
    const path = await messyJsonl();
    const items = await itemsOf(jsonlSource(path));
    expect(items.map((item) => item.position)).toEqual([0, 2, 3, 4, 5, 6, 7]);
    expect(items.filter((item) => item.data).map((item) => [item.position, item.id, item.data])).toEqual([
      [0, "a", { id: "a", text: "first" }],
      [4, "7", { id: 7, text: "seven" }],
      [6, undefined, { text: "no id, crlf" }],
      [7, "last", { id: "last", text: "ünïcode ✓" }],
    ]);
    const errors = items.filter((item) => item.error);
    expect(errors.map((item) => [item.error!.file, item.error!.line])).toEqual([
      [path, 3],
      [path, 4],
      [path, 6],
    ]);
    for (const item of errors) expect(item.error).toBeInstanceOf(InputError);
    expect(errors[0]!.error!.message).toMatch(new RegExp(`^${path}, line 3: invalid JSON`));
    expect(errors[0]!.raw).toBe("{bad json");
    expect(errors[1]!.error!.message).toMatch(/line 4: expected a JSON object, got an array/);
    expect(errors[2]!.error!.message).toMatch(/line 6: invalid UTF-8/);
    expect(errors[2]!.raw).toContain('{"t":"');
  });

  it("skips records before `from` and keeps their positions", async () => {
    const path = await messyJsonl();
    const items = await itemsOf(jsonlSource(path), 5);
    expect(items.map((item) => item.position)).toEqual([5, 6, 7]);
  });

  it("cuts batches at batchSize and counts non-blank lines as its size", async () => {
    const path = join(dir, "many.jsonl");
    await writeFile(path, Array.from({ length: 10 }, (_, i) => JSON.stringify({ i })).join("\n\n") + "\n");
    const source = jsonlSource(path, { batchSize: 4, name: "many", origin: "synthetic" });
    const batches = await batchesOf(source);
    expect(batches.map((batch) => batch.length)).toEqual([4, 4, 2]);
    expect(batches.flat().map((item) => item.position)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    expect(await source.size!()).toBe(10);
    expect([source.name, source.origin]).toEqual(["many", "synthetic"]);
  });

  it("reads lines longer than one read chunk", async () => {
    const path = join(dir, "long.jsonl");
    const long = "ł".repeat(1_500_000);
    await writeFile(path, `${JSON.stringify({ long })}\n${JSON.stringify({ after: true })}\n`);
    const items = await itemsOf(jsonlSource(path));
    expect(items.map((item) => [item.position, (item.data?.long as string | undefined)?.length])).toEqual([
      [0, 1_500_000],
      [1, undefined],
    ]);
  });

  it("throws an InputError naming a missing file", async () => {
    const path = join(dir, "nope.jsonl");
    await expect(itemsOf(jsonlSource(path))).rejects.toThrow(new InputError("file does not exist", { file: path }));
  });

  it("throws an InputError for an empty file", async () => {
    const path = join(dir, "empty.jsonl");
    await writeFile(path, "");
    await expect(itemsOf(jsonlSource(path))).rejects.toThrow(`${path}: file is empty`);
  });

  it("stops when the signal is aborted", async () => {
    const path = await messyJsonl();
    const controller = new AbortController();
    controller.abort();
    expect(await batchesOf(jsonlSource(path), 0, controller.signal)).toEqual([]);
  });

  it("unwraps samples a JSONL sink wrote to their data", async () => {
    const sink = new ShardedSink(dir, jsonlFormat(), "accepted");
    const rows = sampleRows(5);
    await sink.write(rows);
    const [shard] = await sink.commit();
    const items = await itemsOf(jsonlSource(shard!.file));
    expect(items.map((item) => [item.id, item.data])).toEqual(plain(rows).map((row) => [(row as { id: string }).id, (row as { data: unknown }).data]));
  });
});

describe("parquetSource and arrowSource", () => {
  it.each([
    ["parquet", () => parquetFormat({ rowGroupRows: 4 }), parquetSource],
    ["arrow", () => arrowFormat({ batchRows: 4 }), arrowSource],
  ] as const)("read back what the %s sink wrote: ids and data, in order, from any position", async (_name, format, open) => {
    const rows = sampleRows(17);
    const sink = new ShardedSink(dir, format(), "accepted");
    await sink.write(rows);
    const [shard] = await sink.commit();
    const source = open(shard!.file, { batchSize: 5 });
    const batches = await batchesOf(source);
    // One row group (or record batch) of 4 rows at most per batch, whatever the batchSize above it.
    expect(batches.map((batch) => batch.length)).toEqual([4, 4, 4, 4, 1]);
    const expected = plain(rows) as { id: string; data: unknown }[];
    expect(batches.flat().map((item) => [item.position, item.id, item.data])).toEqual(
      expected.map((row, i) => [i, row.id, row.data]),
    );
    expect((await itemsOf(source, 6)).map((item) => item.position)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    expect(await source.size!()).toBe(17);
  });

  it("reads plain Parquet as plain objects: structs as objects, lists as arrays, int64 as numbers", async () => {
    const table = new Table({
      id: vectorFromArray([1n, 2n, 3n]),
      name: vectorFromArray(["a", "b", null]),
      tags: vectorFromArray([["x"], [], ["y", "z"]], new List(new Field("item", new Utf8()))),
      meta: vectorFromArray(
        [{ lang: "en", n: 1 }, { lang: "fr", n: 2 }, { lang: "de", n: 3 }],
        new Struct([new Field("lang", new Utf8()), new Field("n", new Int32())]),
      ),
    });
    const path = join(dir, "plain.parquet");
    await writeFile(path, parquetWasm.writeParquet(parquetWasm.Table.fromIPCStream(tableToIPC(table, "stream"))));
    const items = await itemsOf(parquetSource(path));
    expect(items.map((item) => [item.id, item.data])).toEqual([
      ["1", { id: 1, name: "a", tags: ["x"], meta: { lang: "en", n: 1 } }],
      ["2", { id: 2, name: "b", tags: [], meta: { lang: "fr", n: 2 } }],
      ["3", { id: 3, name: null, tags: ["y", "z"], meta: { lang: "de", n: 3 } }],
    ]);
  });

  it("reads the Arrow IPC file format as well as the stream format", async () => {
    const path = join(dir, "table.arrow");
    await writeFile(path, tableToIPC(tableFromArrays({ text: ["one", "two"], n: Float64Array.from([1, 2]) }), "file"));
    expect((await itemsOf(arrowSource(path))).map((item) => item.data)).toEqual([
      { text: "one", n: 1 },
      { text: "two", n: 2 },
    ]);
  });

  it("throws InputError for a file that is not Parquet", async () => {
    const path = join(dir, "fake.parquet");
    await writeFile(path, "not parquet at all");
    await expect(itemsOf(parquetSource(path))).rejects.toThrow(/fake\.parquet: not a Parquet file/);
  });
});

describe("openSource", () => {
  it("reads an output folder as its accepted shards, with positions running across files", async () => {
    const rows = sampleRows(12);
    const sink = new ShardedSink(dir, parquetFormat(), "accepted", { maxRowsPerShard: 5 });
    await sink.write(rows);
    await sink.commit();
    const rejects = new ShardedSink(dir, parquetFormat(), "rejects");
    await rejects.write(sampleRows(2));
    await rejects.commit();
    await writeFile(join(dir, "manifest.json"), "{}");
    const source = await openSource(dir);
    const items = await itemsOf(source);
    expect(items.map((item) => [item.position, item.id])).toEqual(rows.map((row, i) => [i, row.id]));
    expect((await itemsOf(source, 7)).map((item) => item.id)).toEqual(rows.slice(7).map((row) => row.id));
    expect(await source.size!()).toBe(12);
  });

  it("reads a folder of mixed files in name order: JSON Lines, a JSON array, text files", async () => {
    await mkdir(join(dir, "in"));
    await writeFile(join(dir, "in", "a.jsonl"), '{"q":1}\n\n{"q":2}\n');
    await writeFile(join(dir, "in", "b.json"), '[{"q":3},{"q":4}]');
    await writeFile(join(dir, "in", "c.txt"), "a whole document\n\nwith paragraphs");
    await writeFile(join(dir, "in", "d.csv"), "ignored");
    const source = await openSource(join(dir, "in"), { name: "mixed" });
    expect(source.name).toBe("mixed");
    expect((await itemsOf(source)).map((item) => [item.position, item.data])).toEqual([
      [0, { q: 1 }],
      [2, { q: 2 }],
      [3, { q: 3 }],
      [4, { q: 4 }],
      [5, { text: "a whole document\n\nwith paragraphs" }],
    ]);
    expect((await itemsOf(source, 4)).map((item) => item.position)).toEqual([4, 5]);
  });

  it("expands a glob", async () => {
    await writeFile(join(dir, "x1.jsonl"), '{"n":1}\n');
    await writeFile(join(dir, "x2.jsonl"), '{"n":2}\n');
    await writeFile(join(dir, "y.jsonl"), '{"n":3}\n');
    const items = await itemsOf(await openSource(join(dir, "x*.jsonl")));
    expect(items.map((item) => item.data)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it("names a missing path and an unsupported type in InputErrors", async () => {
    await expect(openSource(join(dir, "missing.jsonl"))).rejects.toThrow(/missing\.jsonl: file does not exist/);
    await writeFile(join(dir, "data.csv"), "a,b\n");
    await expect(openSource(join(dir, "data.csv"))).rejects.toThrow(/data\.csv: unsupported file type "\.csv"/);
  });
});

describe("memorySource", () => {
  it("yields batches of about 1024 from a sync generator, with ids from the records", async () => {
    function* records() {
      for (let i = 0; i < 2500; i++) yield i % 2 === 0 ? { id: `r${i}`, i } : { i };
    }
    const batches = await batchesOf(memorySource("gen", records()));
    expect(batches.map((batch) => batch.length)).toEqual([1024, 1024, 452]);
    const items = batches.flat();
    expect(items[2]).toEqual({ position: 2, id: "r2", data: { id: "r2", i: 2 } });
    expect(items[3]).toEqual({ position: 3, data: { i: 3 } });
  });

  it("starts an array at `from` and knows its size", async () => {
    const source = memorySource("array", [{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }], { batchSize: 2 });
    expect((await batchesOf(source, 1)).map((batch) => batch.map((item) => item.position))).toEqual([[1, 2], [3, 4]]);
    expect(await source.size!()).toBe(5);
  });

  it("reads async iterables and skips to `from`", async () => {
    async function* records() {
      for (let i = 0; i < 10; i++) yield { i };
    }
    const items = await itemsOf(memorySource("async", records(), { batchSize: 3 }), 7);
    expect(items.map((item) => [item.position, item.data])).toEqual([
      [7, { i: 7 }],
      [8, { i: 8 }],
      [9, { i: 9 }],
    ]);
  });
});
