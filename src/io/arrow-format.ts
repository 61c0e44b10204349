import { open, rm, type FileHandle } from "node:fs/promises";
import { RecordBatchStreamWriter, type RecordBatch } from "apache-arrow";
import { writeFully } from "./files.ts";
import {
  rowGroupLimits,
  LayoutMemory,
  RowGroupWriter,
  type RowGroupLimits,
} from "./row-groups.ts";
import type { ShardKind } from "./schema.ts";
import type { ShardWriter, SinkFormat } from "./types.ts";

export interface ArrowFormatOptions {
  /** Rows per record batch. Default 10_000. */
  readonly batchRows?: number;
  /** Encoded bytes per record batch, as a ceiling when rows are large. Default 64 MiB. */
  readonly batchBytes?: number;
}

/**
 * An IPC stream writer that hands its bytes over synchronously. The stock writer queues them for an
 * async reader that gives no signal when the queue is drained; collecting them per batch lets the
 * shard write a batch to disk before taking the next one.
 */
class CollectingStreamWriter extends RecordBatchStreamWriter {
  chunks: Uint8Array[] = [];

  protected override _write(chunk: ArrayBufferView): this {
    if (this._started && chunk.byteLength > 0) {
      this.chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this._position += chunk.byteLength;
    }
    return this;
  }

  take(): Uint8Array[] {
    const chunks = this.chunks;
    this.chunks = [];
    return chunks;
  }
}

/** Arrow IPC stream shards (`.arrow`), with the same typed schema as the Parquet shards. */
export function arrowFormat(options: ArrowFormatOptions = {}): SinkFormat {
  const limits = rowGroupLimits(options.batchRows, options.batchBytes, { rows: "batchRows", bytes: "batchBytes" });
  const layouts = new LayoutMemory();
  return {
    name: "arrow",
    extension: "arrow",
    async open(path: string, kind: ShardKind): Promise<ShardWriter> {
      return new ArrowShardWriter(await open(path, "w"), path, kind, limits, layouts);
    },
  };
}

class ArrowShardWriter extends RowGroupWriter {
  private readonly writer = new CollectingStreamWriter();
  private bytes = 0;

  constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    kind: ShardKind,
    limits: RowGroupLimits,
    layouts: LayoutMemory,
  ) {
    super(kind, limits, layouts);
  }

  private async drain(): Promise<void> {
    for (const chunk of this.writer.take()) {
      await writeFully(this.handle, chunk);
      this.bytes += chunk.byteLength;
    }
  }

  protected async writeBatch(batch: RecordBatch): Promise<void> {
    this.writer.write(batch);
    await this.drain();
  }

  protected async close(): Promise<{ readonly bytes: number }> {
    try {
      this.writer.finish();
      await this.drain();
      await this.handle.sync();
    } finally {
      await this.handle.close();
    }
    return { bytes: this.bytes };
  }

  async abort(): Promise<void> {
    this.writer.take();
    await this.handle.close().catch(() => {});
    await rm(this.path, { force: true });
  }
}
