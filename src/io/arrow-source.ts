import { open } from "node:fs/promises";
import { RecordBatchReader, type RecordBatch } from "apache-arrow";
import { InputError, errorMessage } from "../errors.ts";
import { nonEmptyInputFile } from "./files.ts";
import { decodeData, isSampleSchema, jsonDataFields, plainRows } from "./schema.ts";
import {
  DEFAULT_BATCH_SIZE,
  defaultSourceName,
  itemFromRecord,
  type FileSource,
  type FileSourceOptions,
} from "./source-common.ts";
import type { SourceItem } from "./types.ts";

/**
 * Items for the rows of one Arrow batch whose first row is at `first`; rows before `from` are left out.
 * A batch in the layout our sinks write yields each sample's `data` and `id`, so outputs feed graphs.
 */
export function itemsFromBatch(batch: RecordBatch, first: number, from: number, offset: number): SourceItem[] {
  const skip = Math.max(0, from - first);
  if (skip >= batch.numRows) return [];
  const part = skip > 0 ? batch.slice(skip) : batch;
  const start = first + skip + offset;
  const rows = plainRows(part);
  if (!isSampleSchema(batch.schema)) return rows.map((row, i) => itemFromRecord(start + i, row));
  const jsonFields = jsonDataFields(batch.schema);
  return rows.map((row, i) => ({
    position: start + i,
    id: row.id as string,
    data: decodeData(row.data as Record<string, unknown> | null, jsonFields),
  }));
}

/** Cuts items into batches of at most `size`. */
export function* inBatches(items: SourceItem[], size: number): Generator<SourceItem[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}

/**
 * Arrow IPC, stream or file format (`.arrow`, `.arrows`, `.ipc`), read one record batch at a time.
 * Position = row number in the file. Nested structs and lists become plain objects and arrays.
 */
/** Record batches of an Arrow IPC file or stream, read one at a time; a file that is not Arrow is an InputError. */
export async function* readArrowBatches(path: string): AsyncGenerator<RecordBatch> {
  const handle = await open(path, "r");
  try {
    let reader;
    try {
      reader = await RecordBatchReader.from(handle);
      await reader.open();
    } catch (error) {
      throw new InputError(`not an Arrow IPC file: ${errorMessage(error)}`, { file: path }, { cause: error });
    }
    for await (const batch of reader) yield batch;
  } finally {
    await handle.close();
  }
}

export function arrowSource(path: string, options: FileSourceOptions = {}): FileSource {
  const name = options.name ?? defaultSourceName(path);
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  let rowCount: number | undefined;

  async function* recordBatches(): AsyncGenerator<RecordBatch> {
    await nonEmptyInputFile(path);
    yield* readArrowBatches(path);
  }

  async function countRows(): Promise<number> {
    if (rowCount === undefined) {
      let rows = 0;
      for await (const batch of recordBatches()) rows += batch.numRows;
      rowCount = rows;
    }
    return rowCount;
  }

  async function* batchesFrom(
    offset: number,
    { from, signal }: { readonly from: number; readonly signal: AbortSignal },
  ): AsyncGenerator<SourceItem[]> {
    let first = 0;
    for await (const batch of recordBatches()) {
      if (signal.aborted) return;
      const items = itemsFromBatch(batch, first, from, offset);
      first += batch.numRows;
      for (const slice of inBatches(items, batchSize)) {
        if (signal.aborted) return;
        yield slice;
      }
    }
    rowCount = first;
  }

  return {
    path,
    name,
    origin: options.origin ?? "human",
    size: countRows,
    span: countRows,
    batchesFrom,
    batches(options) {
      return batchesFrom(0, options);
    },
  };
}
