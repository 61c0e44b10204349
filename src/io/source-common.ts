import { basename, extname } from "node:path";
import type { Origin, SampleData } from "../sample.ts";
import type { Source, SourceItem } from "./types.ts";

/** Options every file source takes. */
export interface FileSourceOptions {
  /** Recorded as `provenance.source` and used in ids. Default: the file name without its extension. */
  readonly name?: string;
  /** Default "human". */
  readonly origin?: Origin;
  /** Records per batch. Default 1024. */
  readonly batchSize?: number;
}

export const DEFAULT_BATCH_SIZE = 1024;

/**
 * A source backed by one file. `span` is how many positions the file occupies (lines for JSONL, rows
 * for Parquet and Arrow), which lets several files be read as one source with positions that do not
 * depend on which files have been read.
 */
export interface FileSource extends Source {
  readonly path: string;
  span(): Promise<number>;
  /** Batches with every position shifted by `offset` (error line numbers stay those of the file). */
  batchesFrom(offset: number, options: { readonly from: number; readonly signal: AbortSignal }): AsyncIterable<SourceItem[]>;
}

export function defaultSourceName(path: string): string {
  const file = basename(path);
  const extension = extname(file);
  return extension ? file.slice(0, -extension.length) : file;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** True for a row our sinks wrote (id, data, provenance, scores): reading it back yields its `data`. */
export function isSampleRecord(record: Record<string, unknown>): boolean {
  return (
    typeof record.id === "string" && isObject(record.data) && isObject(record.provenance) && isObject(record.scores)
  );
}

export function recordId(value: unknown): string | undefined {
  if (typeof value === "string" && value.length > 0) return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

/** The item for one parsed record: a written sample is unwrapped to its data, anything else kept whole. */
export function itemFromRecord(position: number, record: Record<string, unknown>): SourceItem {
  if (isSampleRecord(record)) return { position, id: record.id as string, data: record.data as SampleData };
  const id = recordId(record.id);
  return id === undefined ? { position, data: record } : { position, id, data: record };
}
