import { readFile, rename, writeFile } from "node:fs/promises";
import { makeVector, Table, tableFromIPC, tableToIPC } from "apache-arrow";
import { readParquet, Table as WasmTable, writeParquet, Compression, WriterPropertiesBuilder } from "parquet-wasm";
import { ConfigError, InputError } from "../../src/index.ts";
import { fieldList, type Fields } from "./fields.ts";
import { LshIndex, resolveBands } from "./lsh.ts";
import { createMinHasher, isEmptySignature } from "./minhash.ts";
import type { NearDuplicateMatch } from "./near-dedup.ts";

/** Same matching options as `nearDedup`; `fields` name Parquet columns here. */
export interface ClusterDuplicatesOptions extends NearDuplicateMatch {
  /** Name of the added column (replaced if present). Default "cluster_id". */
  readonly column?: string;
}

export interface ClusterSummary {
  readonly rows: number;
  /** Distinct cluster ids. */
  readonly clusters: number;
  /** Rows whose cluster id is not their own row number (what a dedup keeping the first would drop). */
  readonly duplicates: number;
}

/**
 * Offline near-duplicate clustering of a finished dataset: reads a Parquet file, links rows whose estimated
 * Jaccard similarity reaches `threshold` (LSH candidates confirmed on signatures), and writes the same rows
 * with a `cluster_id` column: the row number of the first row of each connected group (a row unlike any
 * other gets its own number). Keeping the rows where `cluster_id` equals the row number deduplicates.
 *
 * @example
 * await clusterDuplicates("out/accepted.parquet", "out/clustered.parquet", { fields: ["instruction", "output"] })
 */
export async function clusterDuplicates(
  inputParquet: string,
  outputParquet: string,
  options: ClusterDuplicatesOptions = {},
): Promise<ClusterSummary> {
  const fields = fieldList(options.fields ?? "text");
  const threshold = options.threshold ?? 0.8;
  const numPerm = options.numPerm ?? 128;
  const column = options.column ?? "cluster_id";
  if (!(threshold > 0 && threshold < 1)) throw new ConfigError(`clusterDuplicates threshold must be in (0, 1), got ${threshold}`);
  const hasher = createMinHasher({ numPerm, seed: options.seed ?? 1, shingle: options.shingle ?? { kind: "word", n: 5 } });
  const shape = resolveBands({ numPerm, threshold, recall: options.candidateRecall ?? 0.99, bands: options.bands, rows: options.rows });

  let table: Table;
  try {
    table = tableFromIPC(readParquet(await readFile(inputParquet)).intoIPCStream());
  } catch (error) {
    throw new InputError("could not read Parquet", { file: inputParquet }, { cause: error });
  }
  const columns = fields.map((field) => {
    const vector = table.getChild(field);
    if (!vector) throw new InputError(`no column "${field}" (columns: ${table.schema.fields.map((f) => f.name).join(", ")})`, { file: inputParquet, field });
    return vector;
  });

  const count = table.numRows;
  // Union-find whose root is always the smallest row of its group, so the root is the cluster id.
  const parent = new Int32Array(count);
  for (let i = 0; i < count; i++) parent[i] = i;
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  const index = new LshIndex({ numPerm, bands: shape.bands, rows: shape.rows });
  for (let row = 0; row < count; row++) {
    let text = "";
    for (const vector of columns) {
      const part = cellText(vector.get(row));
      if (part.length > 0) text = text.length === 0 ? part : `${text}\n\n${part}`;
    }
    const sig = hasher.signature(text);
    if (isEmptySignature(sig)) continue;
    for (const doc of index.candidates(sig)) {
      if (index.estimate(sig, doc) < threshold) continue;
      const a = find(row);
      const b = find(Number(index.idOf(doc)));
      if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
    }
    index.insert(String(row), sig);
  }

  const ids = new Int32Array(count);
  const clusters = new Set<number>();
  let duplicates = 0;
  for (let row = 0; row < count; row++) {
    ids[row] = find(row);
    clusters.add(ids[row]!);
    if (ids[row] !== row) duplicates++;
  }

  const kept = table.schema.fields.filter((field) => field.name !== column).map((field) => field.name);
  const withClusters = table.select(kept).assign(new Table({ [column]: makeVector(ids) }));
  const wasm = WasmTable.fromIPCStream(tableToIPC(withClusters, "stream"));
  const properties = new WriterPropertiesBuilder().setCompression(Compression.SNAPPY).build();
  const bytes = writeParquet(wasm, properties);
  const temp = `${outputParquet}.${process.pid}.tmp`;
  await writeFile(temp, bytes, { flush: true });
  await rename(temp, outputParquet);
  return { rows: count, clusters: clusters.size, duplicates };
}

function cellText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined || value === null) return "";
  if (typeof value === "object" && "toJSON" in value && typeof value.toJSON === "function") value = value.toJSON();
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}
