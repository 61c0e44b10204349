import type { InputError } from "../errors.ts";
import type { RejectInfo } from "../context.ts";
import type { Origin, Sample, SampleData } from "../sample.ts";

/** One record as a source reads it; `position` orders records within the source and drives resume. */
export interface SourceItem {
  /** 0-based position in the source (for line-based files: line number - 1). */
  readonly position: number;
  /** The record's own id when it has one. */
  readonly id?: string;
  readonly data?: SampleData;
  /** Set instead of `data` when the record could not be read; `raw` keeps what was there. */
  readonly error?: InputError;
  readonly raw?: string;
}

/**
 * A pulled source: the runner asks for the next batch only when it has credit, so a source never
 * reads ahead more than one batch. Batches amortise the cost of an await over many records.
 */
export interface Source {
  /** Recorded as `provenance.source` and used in ids (`<name>:<position>` for records without an id). */
  readonly name: string;
  readonly origin: Origin;
  /** Fields each record has, when known; lets the graph check operators' `reads` before running. */
  readonly fields?: readonly string[];
  /** Total records when cheaply known (for ETA). */
  size?(): Promise<number | undefined>;
  /** Batches of records in position order, starting at `from` (records before it are not yielded). */
  batches(options: { readonly from: number; readonly signal: AbortSignal }): AsyncIterable<readonly SourceItem[]>;
}

/** A rejected sample as the rejects sink writes it. */
export interface RejectRow extends Sample {
  readonly reject: RejectInfo & { readonly at: number };
}

export type OutputRow = Sample | RejectRow;

/** Writes one shard file; rows arrive in batches and the file is complete only after `finish`. */
export interface ShardWriter {
  append(rows: readonly OutputRow[]): Promise<void>;
  /** Flushes and closes the file (fsync'd); returns its size. */
  finish(): Promise<{ readonly bytes: number }>;
  /** Closes and deletes the partial file. */
  abort(): Promise<void>;
}

/** A file format for shards (parquet, arrow, jsonl). */
export interface SinkFormat {
  readonly name: string;
  /** Extension without the dot: "parquet", "arrow", "jsonl". */
  readonly extension: string;
  open(path: string, kind: "accepted" | "rejects"): Promise<ShardWriter>;
}

export interface ShardInfo {
  readonly file: string;
  readonly kind: "accepted" | "rejects";
  readonly format: string;
  readonly rows: number;
  readonly bytes: number;
}

export type DataRecord = SampleData;

/** Where the runner puts rows: a sharded file sink, or a custom one (tests, benchmarks, a queue). */
export interface RunSink {
  /**
   * The sink holds rows as the objects they are and never serialises them (an in-memory sink, a counter),
   * so any value can be written to it. Unset, the runner first checks each row bound for the sink for
   * values no encoder can write (a function, a symbol, a cycle, a class instance) and rejects that one
   * sample as `unencodable`, instead of the batch failing in the encoder.
   */
  readonly storesObjects?: boolean;
  /** Accepts rows; the runner counts them as settled once this resolves. */
  write(rows: readonly OutputRow[]): Promise<void>;
  /** Makes everything written so far durable; returns the shards it completed. */
  commit(): Promise<ShardInfo[]>;
  /** Gives up the current, uncommitted part. */
  abort(): Promise<void>;
}
