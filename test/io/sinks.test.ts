// Every sink format, written through ShardedSink and read back by a reader that shares no code with the
// writer: hyparquet for Parquet, apache-arrow's IPC reader for Arrow, JSON.parse for JSONL.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { parquetMetadata, parquetReadObjects, parquetSchema } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ShardedSink,
  arrowFormat,
  jsonlFormat,
  listShardFiles,
  parquetFormat,
  readRows,
} from "../../src/io/index.ts";
import type { OutputRow, RejectRow, Sample, SinkFormat, StepRecord } from "../../src/index.ts";
import { plain, rejectRows, sampleRows, tempDir } from "./fixtures.ts";

/** `data` columns the first shard stores as JSON text (objects, arrays, a key that changed type). */
const JSON_COLUMNS = new Set(["tags", "meta", "mixed"]);

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

async function writeShards(format: SinkFormat, kind: "accepted" | "rejects", rows: readonly OutputRow[]) {
  const sink = new ShardedSink(dir, format, kind, { maxRowsPerShard: 10 });
  await sink.write(rows.slice(0, 7));
  await sink.write(rows.slice(7));
  const shards = await sink.commit();
  return shards;
}

/** The record given to the sink, rebuilt from stored columns the way a reader of the files would. */
function storedData(data: Record<string, unknown>): Record<string, unknown> {
  const { _extra, ...columns } = data;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(columns)) {
    if (value !== null) out[key] = JSON_COLUMNS.has(key) ? JSON.parse(value as string) : value;
  }
  return { ...out, ...(typeof _extra === "string" ? (JSON.parse(_extra) as object) : {}) };
}

function storedStep(step: StepRecord): Record<string, unknown> {
  return {
    op: step.op,
    version: step.version,
    at: step.at,
    params: step.params ?? null,
    model: step.model ?? null,
    prompt_hash: step.promptHash ?? null,
    prompt_tokens: step.promptTokens ?? null,
    completion_tokens: step.completionTokens ?? null,
    latency_ms: step.latencyMs ?? null,
    note: step.note ?? null,
    reasoning: step.reasoning ?? null,
  };
}

function storedReject(reject: RejectRow["reject"]): Record<string, unknown> {
  return {
    operator: reject.operator,
    reason: reject.reason,
    value: reject.value ?? null,
    threshold: reject.threshold ?? null,
    message: reject.message ?? null,
    raw: reject.raw ?? null,
    duplicate_of: reject.duplicateOf ?? null,
    at: reject.at,
  };
}

/** Field-by-field comparison of stored rows (timestamps as epoch ms) against what was written. */
function expectStored(stored: Record<string, unknown>[], written: readonly OutputRow[]): void {
  expect(stored).toHaveLength(written.length);
  stored.forEach((row, i) => {
    const original = written[i]!;
    expect(row.id).toBe(original.id);
    expect(storedData(row.data as Record<string, unknown>)).toEqual((plain([original])[0] as { data: unknown }).data);
    const provenance = row.provenance as Record<string, unknown>;
    expect(provenance.origin).toBe(original.provenance.origin);
    expect(provenance.source).toBe(original.provenance.source);
    expect(provenance.parents).toEqual(original.provenance.parents);
    expect(provenance.depth).toBe(original.provenance.depth);
    expect(provenance.steps).toEqual(original.provenance.steps.map(storedStep));
    expect(row.scores).toEqual(original.scores);
    const reject = (original as Partial<RejectRow>).reject;
    if (reject) expect(row.reject).toEqual(storedReject(reject));
  });
}

async function hyparquetRows(file: string): Promise<Record<string, unknown>[]> {
  const bytes = await readFile(file);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const rows = await parquetReadObjects({ file: buffer, compressors });
  // hyparquet gives timestamps as Dates; the comparison speaks epoch milliseconds.
  return JSON.parse(JSON.stringify(rows, (_key, value: unknown) => (typeof value === "bigint" ? Number(value) : value)), (key, value: unknown) =>
    key === "at" && typeof value === "string" ? Date.parse(value) : value,
  ) as Record<string, unknown>[];
}

async function arrowRows(file: string): Promise<Record<string, unknown>[]> {
  const table = tableFromIPC(await readFile(file));
  return JSON.parse(JSON.stringify(table.toArray())) as Record<string, unknown>[];
}

async function jsonlRows(file: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(file, "utf8");
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("parquet sink", () => {
  it("round-trips samples field by field through hyparquet", async () => {
    const rows = sampleRows(23);
    const shards = await writeShards(parquetFormat(), "accepted", rows);
    expect(shards.map((shard) => shard.rows)).toEqual([10, 10, 3]);
    const stored = (await Promise.all(shards.map((shard) => hyparquetRows(shard.file)))).flat();
    expectStored(stored, rows);
  });

  it("round-trips reject rows with their reject struct", async () => {
    const rows = rejectRows(12);
    const shards = await writeShards(parquetFormat({ worker: false }), "rejects", rows);
    const stored = (await Promise.all(shards.map((shard) => hyparquetRows(shard.file)))).flat();
    expectStored(stored, rows);
  });

  it("writes typed columns: int32 depth, a list of step structs, a utc timestamp, a score map", async () => {
    const [shard] = await writeShards(parquetFormat({ compression: "snappy" }), "accepted", sampleRows(3));
    const bytes = await readFile(shard!.file);
    const tree = parquetSchema(parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
    const child = (node: typeof tree, name: string) => node.children.find((c) => c.element.name === name)!;
    const provenance = child(tree, "provenance");
    expect(child(provenance, "depth").element.type).toBe("INT32");
    const steps = child(provenance, "steps");
    expect(steps.element.converted_type).toBe("LIST");
    const step = steps.children[0]!.children[0]!;
    expect(step.children.map((c) => c.element.name)).toEqual([
      "op",
      "version",
      "at",
      "params",
      "model",
      "prompt_hash",
      "prompt_tokens",
      "completion_tokens",
      "latency_ms",
      "note",
      "reasoning",
    ]);
    expect(child(step, "at").element.logical_type).toEqual({ type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" });
    expect(child(step, "prompt_tokens").element.type).toBe("INT32");
    expect(child(tree, "scores").element.converted_type).toBe("MAP");
    expect(child(child(tree, "data"), "n").element.type).toBe("DOUBLE");
    expect(child(child(tree, "data"), "flag").element.type).toBe("BOOLEAN");
  });

  it("is read back exactly by readRows, types and nulls included", async () => {
    const rows = [...sampleRows(15)];
    await writeShards(parquetFormat(), "accepted", rows);
    expect(await readRows(dir)).toEqual(plain(rows));
  });

  it("keeps a shard's rows across several row groups in order", async () => {
    const rows = sampleRows(10);
    await writeShards(parquetFormat({ rowGroupRows: 3 }), "accepted", rows);
    expect(await readRows(dir)).toEqual(plain(rows));
  });

  it("hands large rows to the writer in smaller batches yet closes row groups at rowGroupRows", async () => {
    const rows = sampleRows(14).map((row) => ({ ...row, data: { ...row.data, text: "x".repeat(1000) } }));
    const sink = new ShardedSink(dir, parquetFormat({ rowGroupRows: 8, bufferBytes: 3000 }), "accepted");
    await sink.write(rows);
    const [shard] = await sink.commit();
    const bytes = await readFile(shard!.file);
    const metadata = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    expect(metadata.row_groups.map((group) => Number(group.num_rows))).toEqual([8, 6]);
    expect(await readRows(dir)).toEqual(plain(rows));
  });

  it.each([true, false])("fails to open a shard it cannot create, naming the path (worker: %s)", async (worker) => {
    const path = join(dir, "missing-folder", "part-00000.parquet");
    await expect(parquetFormat({ worker }).open(path, "accepted")).rejects.toThrow(/missing-folder/);
  });
});

describe("arrow sink", () => {
  it("round-trips samples field by field through apache-arrow's IPC reader", async () => {
    const rows = sampleRows(23);
    const shards = await writeShards(arrowFormat(), "accepted", rows);
    const stored = (await Promise.all(shards.map((shard) => arrowRows(shard.file)))).flat();
    expectStored(stored, rows);
  });

  it("round-trips reject rows and is read back exactly by readRows", async () => {
    const rows = rejectRows(12);
    const shards = await writeShards(arrowFormat({ batchRows: 4 }), "rejects", rows);
    const stored = (await Promise.all(shards.map((shard) => arrowRows(shard.file)))).flat();
    expectStored(stored, rows);
    expect(await readRows(dir)).toEqual(plain(rows));
  });

  it("cuts record batches at batchBytes once it has seen how large rows are", async () => {
    const rows = sampleRows(14).map((row) => ({ ...row, data: { ...row.data, text: "x".repeat(1000) } }));
    const sink = new ShardedSink(dir, arrowFormat({ batchRows: 8, batchBytes: 3000 }), "accepted");
    await sink.write(rows.slice(0, 9));
    await sink.write(rows.slice(9));
    const [shard] = await sink.commit();
    const table = tableFromIPC(await readFile(shard!.file));
    expect(table.batches.map((batch) => batch.numRows)).toEqual([8, 2, 2, 2]);
    expect(await readRows(dir)).toEqual(plain(rows));
  });
});

describe("jsonl sink", () => {
  it("writes one JSON object per line in the sample's own shape", async () => {
    const rows = [...sampleRows(14), ...rejectRows(3)];
    const shards = await writeShards(jsonlFormat(), "rejects", rows);
    const stored = (await Promise.all(shards.map((shard) => jsonlRows(shard.file)))).flat();
    expect(stored).toEqual(plain(rows));
    expect(await readRows(dir)).toEqual(plain(rows));
  });
});

describe("all formats", () => {
  it.each([
    ["parquet", parquetFormat()],
    ["arrow", arrowFormat()],
    ["jsonl", jsonlFormat()],
  ] as const)("%s keeps strings with lone surrogates and BigInts without loss or crash", async (_name, format) => {
    const rows: Sample[] = sampleRows(2).map((row, i) => ({ ...row, data: { ...row.data, text: i === 0 ? "ok" : "bad \ud800 half" } }));
    rows.push({ ...sampleRows(1)[0]!, id: "big", data: { text: "big", count: 12n } });
    await writeShards(format, "accepted", rows);
    const back = await readRows(dir);
    expect((back[1]!.data as Record<string, unknown>).text).toBe("bad \ud800 half");
    expect((back[2]!.data as Record<string, unknown>).count).toBe(12);
    expect(await listShardFiles(dir)).toHaveLength(1);
  });
});
