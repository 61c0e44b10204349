import type { OutputRow, RunSink, ShardInfo } from "./types.ts";

/** Keeps rows in memory: for tests, notebooks and benchmarks that measure the engine without a file format. */
export class MemorySink implements RunSink {
  readonly rows: OutputRow[] = [];
  readonly storesObjects = true;
  private committed = 0;

  constructor(private readonly options: { readonly keepRows?: boolean; readonly delayMs?: number } = {}) {}

  /** Rows written so far (kept or not). */
  written = 0;

  async write(rows: readonly OutputRow[]): Promise<void> {
    if (this.options.delayMs) await new Promise((resolve) => setTimeout(resolve, this.options.delayMs));
    this.written += rows.length;
    if (this.options.keepRows !== false) this.rows.push(...rows);
  }

  async commit(): Promise<ShardInfo[]> {
    this.committed = this.written;
    return [];
  }

  async abort(): Promise<void> {
    if (this.options.keepRows !== false) this.rows.length = this.committed;
    this.written = this.committed;
  }
}
