import { openAsBlob } from "node:fs";
import { tableFromIPC } from "apache-arrow";
import type * as ParquetWasm from "parquet-wasm";
import { InputError, errorMessage } from "../errors.ts";
import { inBatches, itemsFromBatch } from "./arrow-source.ts";
import { nonEmptyInputFile } from "./files.ts";
import { loadParquetWasm } from "./parquet-format.ts";
import { DEFAULT_BATCH_SIZE, defaultSourceName, type FileSource, type FileSourceOptions } from "./source-common.ts";
import type { SourceItem } from "./types.ts";

/**
 * Opens a Parquet file for reading by parts. The file is a Blob backed by the disk, so parquet-wasm
 * fetches the footer and then one row group at a time, never the whole file.
 */
export async function openParquetFile(path: string): Promise<ParquetWasm.ParquetFile> {
  await nonEmptyInputFile(path);
  const wasm = await loadParquetWasm();
  try {
    return await wasm.ParquetFile.fromFile(await openAsBlob(path));
  } catch (error) {
    throw new InputError(`not a Parquet file: ${errorMessage(error)}`, { file: path }, { cause: error });
  }
}

/** One row group of an open Parquet file as Arrow JS record batches. */
export async function readRowGroup(file: ParquetWasm.ParquetFile, index: number) {
  const table = await file.read({ rowGroups: [index] });
  return tableFromIPC(table.intoIPCStream()).batches;
}

/**
 * Parquet, read row group by row group through parquet-wasm. Position = row number in the file;
 * row groups wholly before `from` are not read. Nested structs and lists become plain objects and
 * arrays, int64 values numbers when they are safe integers.
 */
export function parquetSource(path: string, options: FileSourceOptions = {}): FileSource {
  const name = options.name ?? defaultSourceName(path);
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;

  async function rowCount(): Promise<number> {
    const file = await openParquetFile(path);
    try {
      return file.metadata().fileMetadata().numRows();
    } finally {
      file.free();
    }
  }

  async function* batchesFrom(
    offset: number,
    { from, signal }: { readonly from: number; readonly signal: AbortSignal },
  ): AsyncGenerator<SourceItem[]> {
    const file = await openParquetFile(path);
    try {
      const metadata = file.metadata();
      const groups = metadata.numRowGroups();
      let first = 0;
      for (let group = 0; group < groups; group++) {
        if (signal.aborted) return;
        const rows = metadata.rowGroup(group).numRows();
        if (first + rows <= from) {
          first += rows;
          continue;
        }
        for (const batch of await readRowGroup(file, group)) {
          const items = itemsFromBatch(batch, first, from, offset);
          first += batch.numRows;
          for (const slice of inBatches(items, batchSize)) {
            if (signal.aborted) return;
            yield slice;
          }
        }
      }
    } finally {
      file.free();
    }
  }

  return {
    path,
    name,
    origin: options.origin ?? "human",
    size: rowCount,
    span: rowCount,
    batchesFrom,
    batches(options) {
      return batchesFrom(0, options);
    },
  };
}
