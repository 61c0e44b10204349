import { rm, stat } from "node:fs/promises";
import { ConfigError } from "../errors.ts";
import { basename, join } from "node:path";
import type { OutputOptions } from "../graph.ts";
import { parquetFormat } from "./parquet-format.ts";
import { ShardedSink, cleanTemporaryFiles, listShardFiles } from "./shards.ts";
import type { RunSink, ShardInfo, SinkFormat } from "./types.ts";

const ACCEPTED_PREFIX = "part";
const REJECTS_PREFIX = "rejects";

/** Number after the last committed shard of this kind and format, so a resumed run never reuses a name. */
function nextShardIndex(committed: readonly ShardInfo[], prefix: string, format: SinkFormat): number {
  let next = 0;
  for (const shard of committed) {
    const match = new RegExp(`^${prefix}-(\\d+)\\.${format.extension}$`).exec(basename(shard.file));
    if (match) next = Math.max(next, Number(match[1]) + 1);
  }
  return next;
}

/** The sharded file sinks of a run folder: `part-NNNNN.<ext>` per format, and `rejects-NNNNN.<ext>`. */
export async function openFileSinks(
  out: string,
  output: OutputOptions | undefined,
  committed: readonly ShardInfo[],
): Promise<{ accepted: RunSink[]; rejects: RunSink }> {
  const formats = output?.formats && output.formats.length > 0 ? output.formats : [parquetFormat()];
  const rejectsFormat = output?.rejectsFormat ?? formats[0]!;
  const sinkFor = (format: SinkFormat, kind: "accepted" | "rejects", prefix: string) =>
    new ShardedSink(out, format, kind, {
      prefix,
      startIndex: nextShardIndex(committed, prefix, format),
      maxRowsPerShard: output?.shardRows,
    });
  return {
    accepted: formats.map((format) => sinkFor(format, "accepted", ACCEPTED_PREFIX)),
    rejects: sinkFor(rejectsFormat, "rejects", REJECTS_PREFIX),
  };
}

/**
 * Removes what a killed run left that its manifest does not vouch for: shards still under temporary names,
 * and shards renamed after the last manifest was written. Their samples are not marked finished, so the
 * resumed run writes them again, once.
 */
export async function removeUncommittedFiles(out: string, committed: readonly ShardInfo[]): Promise<string[]> {
  const removed = await cleanTemporaryFiles(out);
  const known = new Set(committed.map((shard) => basename(shard.file)));
  for (const file of await listShardFiles(out)) {
    const name = basename(file);
    if (name.startsWith(`${ACCEPTED_PREFIX}-`) || name.startsWith(`${REJECTS_PREFIX}-`)) {
      if (!known.has(name)) {
        await rm(join(out, name), { force: true });
        removed.push(name);
      }
    }
  }
  return removed;
}

/** Whether the output folder exists; a path that exists but is not a folder is a clear error, not ENOTDIR. */
export async function checkOutputFolder(out: string): Promise<boolean> {
  try {
    const info = await stat(out);
    if (!info.isDirectory()) throw new ConfigError(`--out ${out} is a file, not a folder: pass a folder path (it is created if missing)`);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    if ((error as NodeJS.ErrnoException).code === "ENOTDIR") throw new ConfigError(`--out ${out} lies under a file, not a folder: pass a folder path`);
    throw error;
  }
}
