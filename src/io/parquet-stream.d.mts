export interface ParquetStreamOptions {
  readonly compression: "zstd" | "snappy" | "gzip" | "brotli" | "lz4" | "none";
  readonly rowGroupRows: number;
}

export interface ParquetStream {
  /** Takes one Arrow IPC stream; resolves when parquet-wasm has taken it and has room for another. */
  write(ipc: Uint8Array): Promise<void>;
  /** Writes the footer, fsyncs and closes; returns the file size. */
  finish(): Promise<{ readonly bytes: number }>;
  /** Stops, closes and deletes the file. */
  abort(): Promise<void>;
}

export function openParquetStream(path: string, options: ParquetStreamOptions): Promise<ParquetStream>;
