import { extname } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { rowsOf } from "../io/read.ts";
import { openParquetFile } from "../io/parquet-source.ts";
import { decodeBatch } from "../io/schema.ts";

/**
 * Rows per batch parquet-wasm hands over. Small: a batch's rows stay alive across an await, and what
 * survives makes V8 grow its young generation (on a 50k-row folder, 1,024-row batches peaked at 405 MB
 * RSS, 64-row batches at 321 MB, at the same speed).
 */
const PARQUET_BATCH_ROWS = 64;

/**
 * Rows of one shard, a small batch at a time. Parquet is streamed batch by batch within each row group
 * (src/io/read.ts reads a whole row group at once, which grows parquet-wasm's never-shrinking memory by
 * the group's decoded size); other formats come from the shared readers, already batch by batch.
 */
export async function* shardBatches(file: string): AsyncGenerator<Record<string, unknown>[]> {
  if (extname(file).toLowerCase() !== ".parquet") {
    yield* rowsOf(file);
    return;
  }
  const parquet = await openParquetFile(file);
  try {
    const groups = parquet.metadata().numRowGroups();
    for (let group = 0; group < groups; group++) {
      const reader = (await parquet.stream({ rowGroups: [group], batchSize: PARQUET_BATCH_ROWS })).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const batch of tableFromIPC(value.intoIPCStream()).batches) yield decodeBatch(batch);
      }
    }
  } finally {
    parquet.free();
  }
}
