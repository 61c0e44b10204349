import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import { syncDirectory } from "./files.ts";
import type { ShardKind } from "./schema.ts";
import type { OutputRow, ShardInfo, ShardWriter, SinkFormat } from "./types.ts";

export interface ShardedSinkOptions {
  /** File name prefix. Default "part" for accepted rows, "rejects" for rejects. */
  readonly prefix?: string;
  /** Number of the first shard; a resumed run starts after the shards its manifest committed. Default 0. */
  readonly startIndex?: number;
  /** Rows per shard; a full shard is closed and a new one opened. Default 100_000. */
  readonly maxRowsPerShard?: number;
}

export const DEFAULT_MAX_ROWS_PER_SHARD = 100_000;

/** `part-00042.parquet`: five digits keep names sorted in shard order up to 100,000 shards. */
export function shardFileName(prefix: string, index: number, extension: string): string {
  return `${prefix}-${String(index).padStart(5, "0")}.${extension}`;
}

/**
 * This process's mark in the names of files it is still writing: two processes that write one folder
 * (a scaled-out worker that stalled past its lease, and the one that took its chunk over) never write
 * into each other's files, and the one that lost its lease is stopped before it renames anything.
 */
export const WRITER_TOKEN = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

/** The name a shard has while it is written; readers and `listShardFiles` never see it. */
export function temporaryShardName(finalName: string): string {
  return `.${finalName}.${WRITER_TOKEN}.tmp`;
}

const TEMPORARY = /^\..+\.tmp$/;
const SHARD = /^[^.].*-\d{5,}\.(parquet|arrow|jsonl)$/;

interface OpenShard {
  readonly writer: ShardWriter;
  readonly name: string;
  rows: number;
}

interface FinishedShard {
  readonly name: string;
  readonly rows: number;
  readonly bytes: number;
}

/**
 * Output split into shard files that appear only when committed.
 *
 * Rows go to the current shard, opened lazily as `.part-00000.parquet.tmp`. A shard that reaches
 * `maxRowsPerShard` is finished (closed and fsync'd) but keeps its temporary name; `commit()` finishes
 * the current shard and renames every finished one to its final name. So a crash between checkpoints
 * leaves only `.tmp` files (removed by `cleanTemporaryFiles` on resume), and each shard named in a
 * manifest is complete. Calls are serialised: a `write` issued before the previous one settled waits.
 */
export class ShardedSink {
  readonly prefix: string;
  readonly maxRowsPerShard: number;
  private index: number;
  private current: OpenShard | undefined;
  private finished: FinishedShard[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private madeDir = false;

  constructor(
    readonly dir: string,
    readonly format: SinkFormat,
    readonly kind: ShardKind,
    options: ShardedSinkOptions = {},
  ) {
    this.prefix = options.prefix ?? (kind === "accepted" ? "part" : "rejects");
    this.index = options.startIndex ?? 0;
    this.maxRowsPerShard = options.maxRowsPerShard ?? DEFAULT_MAX_ROWS_PER_SHARD;
    if (!Number.isInteger(this.index) || this.index < 0) {
      throw new ConfigError(`startIndex must be a non-negative integer (got ${options.startIndex})`);
    }
    if (!Number.isInteger(this.maxRowsPerShard) || this.maxRowsPerShard < 1) {
      throw new ConfigError(`maxRowsPerShard must be a positive integer (got ${options.maxRowsPerShard})`);
    }
  }

  /** Number the next shard will get; a manifest records it so a resumed run does not reuse names. */
  get nextIndex(): number {
    return this.index;
  }

  write(rows: readonly OutputRow[]): Promise<void> {
    return this.serial(async () => {
      let offset = 0;
      while (offset < rows.length) {
        const shard = this.current ?? (await this.openShard());
        const take = Math.min(rows.length - offset, this.maxRowsPerShard - shard.rows);
        await shard.writer.append(offset === 0 && take === rows.length ? rows : rows.slice(offset, offset + take));
        shard.rows += take;
        offset += take;
        if (shard.rows >= this.maxRowsPerShard) await this.finishCurrent();
      }
    });
  }

  /** Finishes the current shard and publishes every finished shard under its final name. */
  commit(): Promise<ShardInfo[]> {
    return this.serial(async () => {
      await this.finishCurrent();
      const finished = this.finished;
      if (finished.length === 0) return [];
      for (const shard of finished) {
        await rename(join(this.dir, temporaryShardName(shard.name)), join(this.dir, shard.name));
      }
      await syncDirectory(this.dir);
      this.finished = [];
      return finished.map((shard) => ({
        file: join(this.dir, shard.name),
        kind: this.kind,
        format: this.format.name,
        rows: shard.rows,
        bytes: shard.bytes,
      }));
    });
  }

  /** Drops everything not yet committed: the open shard and finished shards still under temporary names. */
  abort(): Promise<void> {
    return this.serial(async () => {
      const current = this.current;
      this.current = undefined;
      await current?.writer.abort();
      for (const shard of this.finished) await rm(join(this.dir, temporaryShardName(shard.name)), { force: true });
      this.finished = [];
    });
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => {});
    return result;
  }

  private async openShard(): Promise<OpenShard> {
    if (!this.madeDir) {
      await mkdir(this.dir, { recursive: true });
      this.madeDir = true;
    }
    const name = shardFileName(this.prefix, this.index, this.format.extension);
    const writer = await this.format.open(join(this.dir, temporaryShardName(name)), this.kind);
    this.index++;
    this.current = { writer, name, rows: 0 };
    return this.current;
  }

  private async finishCurrent(): Promise<void> {
    const shard = this.current;
    if (!shard) return;
    this.current = undefined;
    const { bytes } = await shard.writer.finish();
    this.finished.push({ name: shard.name, rows: shard.rows, bytes });
  }
}

/** Removes shards left under temporary names by an interrupted run; returns their names. */
export async function cleanTemporaryFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const removed = names.filter((name) => TEMPORARY.test(name)).sort();
  for (const name of removed) await rm(join(dir, name), { force: true });
  return removed;
}

/** Committed shard files in `dir` (optionally only those named `<prefix>-NNNNN.*`), sorted by name. */
export async function listShardFiles(dir: string, options: { readonly prefix?: string } = {}): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  return names
    .filter((name) => SHARD.test(name) && (options.prefix === undefined || name.startsWith(`${options.prefix}-`)))
    .sort()
    .map((name) => join(dir, name));
}
