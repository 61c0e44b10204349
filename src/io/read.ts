import { open, readdir, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { RecordBatchReader, tableFromIPC, type Schema } from "apache-arrow";
import { InputError } from "../errors.ts";
import { readArrowBatches } from "./arrow-source.ts";
import { jsonlSource } from "./jsonl-source.ts";
import { openParquetFile, readRowGroup } from "./parquet-source.ts";
import { decodeBatch, describeSchema } from "./schema.ts";
import { listShardFiles } from "./shards.ts";

export type OutputFormat = "parquet" | "arrow" | "jsonl";

export interface ReadRowsOptions {
  /** Stop after this many rows. Default: all. */
  readonly limit?: number;
  /** For a directory: only shards named `<prefix>-NNNNN.*` ("part", "rejects"). Default: every shard. */
  readonly prefix?: string;
}

export interface OutputFileInfo {
  readonly file: string;
  readonly format: OutputFormat;
  readonly rows: number;
  readonly bytes: number;
}

export interface OutputDescription {
  /** The files described, in reading order. */
  readonly files: readonly string[];
  /** Format, rows and bytes of each file. */
  readonly fileDetails: readonly OutputFileInfo[];
  /** The columns and their types, one per line, nested fields indented. */
  readonly schema: string;
  readonly rowCount: number;
  readonly firstRows: readonly Record<string, unknown>[];
}

const FORMATS: Record<string, OutputFormat> = {
  ".parquet": "parquet",
  ".arrow": "arrow",
  ".arrows": "arrow",
  ".ipc": "arrow",
  ".jsonl": "jsonl",
  ".ndjson": "jsonl",
};

function formatOf(file: string): OutputFormat {
  const format = FORMATS[extname(file).toLowerCase()];
  if (!format) throw new InputError(`cannot read "${extname(file)}" files; use .parquet, .arrow or .jsonl`, { file });
  return format;
}

/** Files behind a path: the file itself, or a directory's committed shards (else its readable files). */
export async function outputFiles(path: string, prefix?: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new InputError("file does not exist", { file: path }, { cause: error });
    }
    throw error;
  }
  if (!info.isDirectory()) return [path];
  const shards = [...(await listShardFiles(path, prefix === undefined ? {} : { prefix })), ...(await chunkShards(path, prefix))];
  if (shards.length > 0 || prefix !== undefined) return shards;
  return (await readdir(path))
    .filter((name) => !name.startsWith(".") && FORMATS[extname(name).toLowerCase()])
    .sort()
    .map((name) => join(path, name));
}

/**
 * A scaled-out run's folder holds one folder per chunk (chunks/<source>-<start>/, see src/scale): its
 * dataset is the union of their shards, in chunk order.
 */
async function chunkShards(path: string, prefix: string | undefined): Promise<string[]> {
  const chunks = join(path, "chunks");
  let names: string[];
  try {
    names = (await readdir(chunks)).sort();
  } catch {
    return [];
  }
  const lists = await Promise.all(names.map((name) => listShardFiles(join(chunks, name), prefix === undefined ? {} : { prefix })));
  return lists.flat();
}

async function* arrowRows(file: string): AsyncGenerator<Record<string, unknown>[]> {
  for await (const batch of readArrowBatches(file)) yield decodeBatch(batch);
}

async function* parquetRows(file: string): AsyncGenerator<Record<string, unknown>[]> {
  const parquet = await openParquetFile(file);
  try {
    const groups = parquet.metadata().numRowGroups();
    for (let group = 0; group < groups; group++) {
      for (const batch of await readRowGroup(parquet, group)) yield decodeBatch(batch);
    }
  } finally {
    parquet.free();
  }
}

/** JSONL output rows are stored in the Sample's own shape, so they come back as parsed, whole. */
async function* jsonlOutputRows(file: string): AsyncGenerator<Record<string, unknown>[]> {
  const source = jsonlSource(file, { whole: true });
  for await (const items of source.batches({ from: 0, signal: new AbortController().signal })) {
    const rows: Record<string, unknown>[] = [];
    for (const item of items) {
      if (item.error) throw item.error;
      rows.push(item.data!);
    }
    yield rows;
  }
}

/** Rows of one output file, a row group (or record batch) at a time, for readers that must not hold them all. */
export function rowsOf(file: string): AsyncGenerator<Record<string, unknown>[]> {
  switch (formatOf(file)) {
    case "parquet":
      return parquetRows(file);
    case "arrow":
      return arrowRows(file);
    case "jsonl":
      return jsonlOutputRows(file);
  }
}

/**
 * Rows of an output file or folder. Files in the sample layout come back as samples (and reject
 * rows), with `data` rebuilt exactly as it was given to the sink; other files as plain objects.
 */
export async function readRows(path: string, options: ReadRowsOptions = {}): Promise<Record<string, unknown>[]> {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const rows: Record<string, unknown>[] = [];
  for (const file of await outputFiles(path, options.prefix)) {
    for await (const batch of rowsOf(file)) {
      for (const row of batch) {
        if (rows.length >= limit) return rows;
        rows.push(row);
      }
    }
    if (rows.length >= limit) break;
  }
  return rows;
}

async function countRows(file: string, format: OutputFormat): Promise<number> {
  if (format === "parquet") {
    const parquet = await openParquetFile(file);
    try {
      return parquet.metadata().fileMetadata().numRows();
    } finally {
      parquet.free();
    }
  }
  if (format === "jsonl") return (await jsonlSource(file).size?.()) ?? 0;
  let rows = 0;
  for await (const batch of readArrowBatches(file)) rows += batch.numRows;
  return rows;
}

async function schemaOf(file: string, format: OutputFormat): Promise<Schema | undefined> {
  if (format === "parquet") {
    const parquet = await openParquetFile(file);
    try {
      return tableFromIPC(parquet.schema().intoIPCStream()).schema;
    } finally {
      parquet.free();
    }
  }
  if (format === "arrow") {
    const handle = await open(file, "r");
    try {
      const reader = await RecordBatchReader.from(handle);
      await reader.open();
      return reader.schema;
    } finally {
      await handle.close();
    }
  }
  return undefined;
}

/** The shape of a JSON value as text, for JSONL files (which carry no schema). */
function jsonShape(value: unknown, depth: number, name: string, lines: string[]): void {
  const pad = "  ".repeat(depth);
  if (Array.isArray(value)) {
    const first: unknown = value[0];
    const inner = first !== null && typeof first === "object" && !Array.isArray(first) ? "object" : typeof first;
    lines.push(`${pad}${name}: list<${value.length === 0 ? "unknown" : inner}>`);
    if (inner === "object") for (const [key, v] of Object.entries(first as object)) jsonShape(v, depth + 1, key, lines);
  } else if (value !== null && typeof value === "object") {
    lines.push(`${pad}${name}: object`);
    for (const [key, v] of Object.entries(value)) jsonShape(v, depth + 1, key, lines);
  } else {
    lines.push(`${pad}${name}: ${value === null ? "null" : typeof value}`);
  }
}

/** Files, schema, row count and first rows of an output file or folder, for `rxsynth inspect`. */
export async function describeOutput(
  fileOrDir: string,
  options: {
    /** First rows to return. Default 5. */
    readonly limit?: number;
    /** For a directory: only shards named `<prefix>-NNNNN.*` ("part", "rejects"). Default: every shard. */
    readonly prefix?: string;
  } = {},
): Promise<OutputDescription> {
  const paths = await outputFiles(fileOrDir, options.prefix);
  const files: OutputFileInfo[] = [];
  for (const file of paths) {
    const format = formatOf(file);
    files.push({ file, format, rows: await countRows(file, format), bytes: (await stat(file)).size });
  }
  const firstRows = await readRows(fileOrDir, { limit: options.limit ?? 5, prefix: options.prefix });
  let schema = "";
  const first = files[0];
  if (first) {
    const arrowSchema = await schemaOf(first.file, first.format);
    if (arrowSchema) {
      schema = describeSchema(arrowSchema);
    } else if (firstRows[0]) {
      const lines: string[] = [];
      for (const [key, value] of Object.entries(firstRows[0])) jsonShape(value, 0, key, lines);
      schema = lines.join("\n");
    }
  }
  return {
    files: paths,
    fileDetails: files,
    schema,
    rowCount: files.reduce((sum, file) => sum + file.rows, 0),
    firstRows,
  };
}
