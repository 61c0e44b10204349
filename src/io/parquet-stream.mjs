// The Parquet file writer proper, around parquet-wasm's streaming writer. Plain JavaScript (typed by
// parquet-stream.d.mts) because it also runs in a worker thread, which starts without a TypeScript
// loader (under vitest, or plain node).
import { open, rm } from "node:fs/promises";
import * as wasm from "parquet-wasm";

const CODECS = {
  zstd: wasm.Compression.ZSTD,
  snappy: wasm.Compression.SNAPPY,
  gzip: wasm.Compression.GZIP,
  brotli: wasm.Compression.BROTLI,
  lz4: wasm.Compression.LZ4_RAW,
  none: wasm.Compression.UNCOMPRESSED,
};

async function writeFully(handle, bytes) {
  let offset = 0;
  while (offset < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.byteLength - offset);
    offset += bytesWritten;
  }
}

function writerProperties(options) {
  return (
    new wasm.WriterPropertiesBuilder()
      .setCompression(CODECS[options.compression])
      .setMaxRowGroupSize(options.rowGroupRows)
      // Row-group min/max (what engines use to skip groups) without page indexes, which cost time on
      // long text columns for no use in this kind of data.
      .setStatisticsEnabled(wasm.EnabledStatistics.Chunk)
      // Ids and generated text are unique per row, so their dictionaries are built and then thrown
      // away (10% of the writer's time); zstd already squeezes the few low-cardinality columns.
      .setDictionaryEnabled(false)
      .setCreatedBy("rxsynth")
      .build()
  );
}

/**
 * Opens `path` for writing. Each `write` takes one Arrow IPC stream (one record batch = one row group)
 * and resolves once parquet-wasm has taken it, with room for one more; its bytes reach the file before
 * the writer takes the next batch. So one batch waits, one is encoded, and WASM memory (which never
 * shrinks) stays at about two row groups.
 */
export async function openParquetStream(path, options) {
  const handle = await open(path, "w");
  let controller;
  let room;
  let failure;
  let bytes = 0;
  let output;

  const fail = (error) => {
    failure ??= error;
    room?.reject(error);
    room = undefined;
  };
  const check = () => {
    if (failure !== undefined) {
      throw new Error(`writing ${path} failed: ${failure?.message ?? failure}`, { cause: failure });
    }
  };

  const input = new ReadableStream(
    {
      start(c) {
        controller = c;
      },
      pull() {
        room?.resolve();
        room = undefined;
      },
      cancel(reason) {
        fail(reason ?? new Error("parquet writer stopped reading"));
      },
    },
    { highWaterMark: 1 },
  );

  const pump = (async () => {
    const stream = await wasm.transformParquetStream(input, writerProperties(options));
    output = stream.getReader();
    for (;;) {
      const { done, value } = await output.read();
      if (done) return;
      await writeFully(handle, value);
      bytes += value.byteLength;
    }
  })();
  pump.catch(fail);

  return {
    async write(ipc) {
      check();
      const table = wasm.Table.fromIPCStream(ipc);
      const batches = table.recordBatches();
      // The table keeps its own references to the batches' buffers; left to the GC, WASM memory
      // grows by a row group per write.
      table.free();
      for (const batch of batches) {
        controller.enqueue(batch);
        if ((controller.desiredSize ?? 1) <= 0) {
          await new Promise((resolve, reject) => {
            room = { resolve, reject };
          });
        }
      }
    },
    async finish() {
      check();
      controller.close();
      try {
        await pump;
        check();
        await handle.sync();
      } finally {
        await handle.close();
      }
      return { bytes };
    },
    async abort() {
      fail(new Error("aborted"));
      try {
        controller.error(new Error("aborted"));
      } catch {
        // Already closed or errored.
      }
      await output?.cancel().catch(() => {});
      await pump.catch(() => {});
      await handle.close().catch(() => {});
      await rm(path, { force: true });
    },
  };
}
