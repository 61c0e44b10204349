import { readFile } from "node:fs/promises";
import { parquetMetadataAsync, parquetReadObjects, parquetSchema } from "hyparquet";
import { compressors } from "hyparquet-compressors";

/** Reads a Parquet file with hyparquet: an independent reader, not the parquet-wasm that wrote it. */
export async function readParquetRows(path: string): Promise<Record<string, unknown>[]> {
  const buffer = await readFile(path);
  const file = buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer;
  return parquetReadObjects({ file, compressors });
}

/** The Parquet schema tree as hyparquet sees it. */
export async function readParquetSchema(path: string) {
  const buffer = await readFile(path);
  const file = buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer;
  return parquetSchema(await parquetMetadataAsync(file));
}
