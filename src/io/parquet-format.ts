import { rm } from "node:fs/promises";
import { Worker } from "node:worker_threads";
import { Table, tableToIPC, type RecordBatch } from "apache-arrow";
import type * as ParquetWasm from "parquet-wasm";
import { ConfigError } from "../errors.ts";
import type { ParquetStream, ParquetStreamOptions } from "./parquet-stream.mjs";
import {
  rowGroupLimits,
  LayoutMemory,
  RowGroupWriter,
  type RowGroupLimits,
} from "./row-groups.ts";
import type { ShardKind } from "./schema.ts";
import type { SinkFormat, ShardWriter } from "./types.ts";

export type ParquetCompression = "zstd" | "snappy" | "gzip" | "brotli" | "lz4" | "none";

export interface ParquetFormatOptions {
  /** Rows per row group. Default 10_000. */
  readonly rowGroupRows?: number;
  /**
   * Most bytes of encoded rows held in JS before they go to the writer, so large rows are handed over
   * in smaller batches. The file's row groups still close at `rowGroupRows` (parquet-wasm merges
   * batches, keeping the open group compressed in WASM memory). Default 64 MiB.
   */
  readonly bufferBytes?: number;
  /** Default "zstd" (level 1: fast, and smaller than snappy on text). */
  readonly compression?: ParquetCompression;
  /**
   * Encode and write in a worker thread (default true): the main thread only builds Arrow batches, so
   * compression overlaps with the graph's own work. False keeps everything on the calling thread.
   */
  readonly worker?: boolean;
}

let wasmModule: Promise<typeof ParquetWasm> | undefined;

/** parquet-wasm, loaded on first use: compiling the module costs time a run without Parquet need not pay. */
export function loadParquetWasm(): Promise<typeof ParquetWasm> {
  wasmModule ??= import("parquet-wasm");
  return wasmModule;
}

const CODECS: readonly ParquetCompression[] = ["zstd", "snappy", "gzip", "brotli", "lz4", "none"];

/**
 * Row groups sent to the worker and not yet taken by its writer. One is enough to keep the writer busy:
 * it waits in the worker's queue while the previous one is encoded, and the main thread, which is
 * several times faster, prepares the next meanwhile.
 */
const MAX_IN_FLIGHT = 1;

/**
 * Parquet shards written by parquet-wasm (the Rust `parquet` crate) from Arrow record batches.
 *
 * Writing streams: each row group is encoded to Arrow in JS and handed, as an IPC buffer, to
 * parquet-wasm's streaming writer (`transformParquetStream`), whose bytes go to the file before it
 * takes the next group. JS holds at most one row group being filled plus one in flight, and WASM
 * memory (which never shrinks) about two encoded groups. By default the writer runs in one shared
 * worker thread.
 */
export function parquetFormat(options: ParquetFormatOptions = {}): SinkFormat {
  const limits = rowGroupLimits(options.rowGroupRows, options.bufferBytes, { rows: "rowGroupRows", bytes: "bufferBytes" });
  const compression = options.compression ?? "zstd";
  if (!CODECS.includes(compression)) {
    throw new ConfigError(`parquet compression "${compression}" is not one of ${CODECS.join(", ")}`);
  }
  const streamOptions: ParquetStreamOptions = { compression, rowGroupRows: limits.rows };
  const layouts = new LayoutMemory();
  return {
    name: "parquet",
    extension: "parquet",
    async open(path: string, kind: ShardKind): Promise<ShardWriter> {
      if (options.worker === false) {
        const { openParquetStream } = await import("./parquet-stream.mjs");
        return new InlineParquetWriter(await openParquetStream(path, streamOptions), kind, limits, layouts);
      }
      const writer = await WorkerParquetWriter.open(path, streamOptions, kind, limits, layouts);
      return writer;
    },
  };
}

/** Arrow IPC bytes of one batch, in a buffer of their own so it can be transferred to the worker. */
function ipcOf(batch: RecordBatch): Uint8Array {
  const ipc = tableToIPC(new Table([batch]), "stream");
  return ipc.byteOffset === 0 && ipc.byteLength === ipc.buffer.byteLength ? ipc : ipc.slice();
}

class InlineParquetWriter extends RowGroupWriter {
  constructor(
    private readonly stream: ParquetStream,
    kind: ShardKind,
    limits: RowGroupLimits,
    layouts: LayoutMemory,
  ) {
    super(kind, limits, layouts);
  }

  protected writeBatch(batch: RecordBatch): Promise<void> {
    return this.stream.write(ipcOf(batch));
  }

  protected close(): Promise<{ readonly bytes: number }> {
    return this.stream.finish();
  }

  abort(): Promise<void> {
    return this.stream.abort();
  }
}

interface WorkerRequest {
  readonly type: "open" | "write" | "finish" | "abort";
  readonly writer: number;
  readonly path?: string;
  readonly options?: ParquetStreamOptions;
  readonly ipc?: Uint8Array;
}

interface WorkerReply {
  readonly seq: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly message?: string;
}

/**
 * The one worker thread every Parquet writer of the process shares. It keeps the process alive only
 * while a request is pending (an open but idle shard does not, any more than an open file would), and
 * a crashed worker is replaced by the next request.
 */
class ParquetWorker {
  private static shared: ParquetWorker | undefined;
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private seq = 0;
  private nextWriter = 0;
  private failure: Error | undefined;

  static get(): ParquetWorker {
    ParquetWorker.shared ??= new ParquetWorker();
    return ParquetWorker.shared;
  }

  private constructor() {
    this.worker = new Worker(new URL("./parquet-worker.mjs", import.meta.url));
    this.worker.unref();
    this.worker.on("message", (reply: WorkerReply) => {
      const waiter = this.pending.get(reply.seq);
      this.pending.delete(reply.seq);
      if (this.pending.size === 0) this.worker.unref();
      if (reply.ok) waiter?.resolve(reply.result);
      else waiter?.reject(new Error(reply.message));
    });
    const broken = (error: Error): void => {
      this.failure ??= error;
      if (ParquetWorker.shared === this) ParquetWorker.shared = undefined;
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    };
    this.worker.on("error", broken);
    this.worker.on("exit", (code) => broken(new Error(`parquet worker exited with code ${code}`)));
  }

  newWriterId(): number {
    return this.nextWriter++;
  }

  request(message: WorkerRequest): Promise<unknown> {
    const seq = this.seq++;
    return new Promise((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(seq, { resolve, reject });
      const transfer = message.ipc ? [message.ipc.buffer as ArrayBuffer] : [];
      this.worker.postMessage({ ...message, seq }, transfer);
    });
  }
}

class WorkerParquetWriter extends RowGroupWriter {
  private inFlight: Promise<unknown>[] = [];

  static async open(
    path: string,
    options: ParquetStreamOptions,
    kind: ShardKind,
    limits: RowGroupLimits,
    layouts: LayoutMemory,
  ): Promise<WorkerParquetWriter> {
    const worker = ParquetWorker.get();
    const id = worker.newWriterId();
    await worker.request({ type: "open", writer: id, path, options });
    return new WorkerParquetWriter(worker, id, path, kind, limits, layouts);
  }

  private constructor(
    private readonly worker: ParquetWorker,
    private readonly id: number,
    private readonly path: string,
    kind: ShardKind,
    limits: RowGroupLimits,
    layouts: LayoutMemory,
  ) {
    super(kind, limits, layouts);
  }

  protected async writeBatch(batch: RecordBatch): Promise<void> {
    const ipc = ipcOf(batch);
    while (this.inFlight.length >= MAX_IN_FLIGHT) await this.inFlight.shift();
    const taken = this.worker.request({ type: "write", writer: this.id, ipc });
    // Awaited later (above, or in close); until then a failure must not count as unhandled.
    taken.catch(() => {});
    this.inFlight.push(taken);
  }

  protected async close(): Promise<{ readonly bytes: number }> {
    for (const taken of this.inFlight.splice(0)) await taken;
    return (await this.worker.request({ type: "finish", writer: this.id })) as { bytes: number };
  }

  async abort(): Promise<void> {
    this.inFlight = [];
    try {
      await this.worker.request({ type: "abort", writer: this.id });
    } catch {
      // The worker's writer is gone already (failed or crashed); the file may still be there.
    }
    await rm(this.path, { force: true });
  }
}
