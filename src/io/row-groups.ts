import { ConfigError } from "../errors.ts";
import type { RecordBatch } from "apache-arrow";
import { inferDataColumns, encodeSamples, sampleLayout, type SampleLayout, type ShardKind } from "./schema.ts";
import type { OutputRow, ShardWriter } from "./types.ts";

/**
 * The `data` layout of each shard kind, fixed by the first rows one format instance writes, so every
 * shard of a run has the same schema (engines can then read the folder as one table).
 */
export class LayoutMemory {
  private readonly layouts = new Map<ShardKind, SampleLayout>();

  layoutFor(kind: ShardKind, firstRows: readonly OutputRow[]): SampleLayout {
    let layout = this.layouts.get(kind);
    if (!layout) {
      layout = sampleLayout(kind, inferDataColumns(firstRows));
      this.layouts.set(kind, layout);
    }
    return layout;
  }
}

export interface RowGroupLimits {
  /** Most rows per batch handed to the file writer (a Parquet row group, an Arrow record batch). */
  readonly rows: number;
  /** Most encoded bytes per batch; batches get fewer rows when rows are large. */
  readonly bytes: number;
}

/**
 * A shard writer that buffers at most one row group of rows, encodes it to one Arrow record batch and
 * hands it on. The byte limit is learnt from the previous group (encoded bytes per row), which keeps
 * memory bounded when rows are large without measuring every row up front.
 */
export abstract class RowGroupWriter implements ShardWriter {
  private pending: OutputRow[] = [];
  private layout: SampleLayout | undefined;
  private groupRows: number;
  private rowsWritten = 0;

  protected constructor(
    private readonly kind: ShardKind,
    private readonly limits: RowGroupLimits,
    private readonly layouts: LayoutMemory,
  ) {
    this.groupRows = limits.rows;
  }

  async append(rows: readonly OutputRow[]): Promise<void> {
    for (const row of rows) this.pending.push(row);
    while (this.pending.length >= this.groupRows) {
      await this.flushGroup(this.pending.splice(0, this.groupRows));
    }
  }

  async finish(): Promise<{ readonly bytes: number }> {
    while (this.pending.length > this.groupRows) await this.flushGroup(this.pending.splice(0, this.groupRows));
    // A shard with no rows still gets a batch, so the file carries its schema.
    if (this.pending.length > 0 || this.rowsWritten === 0) await this.flushGroup(this.pending.splice(0));
    return this.close();
  }

  abstract abort(): Promise<void>;

  protected abstract writeBatch(batch: RecordBatch): Promise<void>;

  protected abstract close(): Promise<{ readonly bytes: number }>;

  private async flushGroup(rows: OutputRow[]): Promise<void> {
    this.layout ??= this.layouts.layoutFor(this.kind, rows);
    const batch = encodeSamples(this.layout, rows);
    if (rows.length > 0) {
      const perRow = Math.max(1, batch.data.byteLength / rows.length);
      this.groupRows = Math.max(1, Math.min(this.limits.rows, Math.floor(this.limits.bytes / perRow)));
    }
    this.rowsWritten += rows.length;
    await this.writeBatch(batch);
  }
}

/** Defaults shared by the columnar formats. */
export const DEFAULT_ROW_GROUP_ROWS = 10_000;
export const DEFAULT_ROW_GROUP_BYTES = 64 * 1024 * 1024;

/** Limits for a columnar format's batches, checked once; `names` are the option names to cite in errors. */
export function rowGroupLimits(
  rows: number | undefined,
  bytes: number | undefined,
  names: { readonly rows: string; readonly bytes: string },
): RowGroupLimits {
  const limits = { rows: rows ?? DEFAULT_ROW_GROUP_ROWS, bytes: bytes ?? DEFAULT_ROW_GROUP_BYTES };
  if (!(limits.rows >= 1)) throw new ConfigError(`${names.rows} must be at least 1 (got ${limits.rows})`);
  if (!(limits.bytes >= 1)) throw new ConfigError(`${names.bytes} must be at least 1 (got ${limits.bytes})`);
  return limits;
}
