import { open, readFile, readdir, stat } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { glob, isDynamicPattern } from "tinyglobby";
import { InputError, errorMessage } from "../errors.ts";
import { arrowSource } from "./arrow-source.ts";
import { resolveDataPath } from "../data-files.ts";
import { STDIN, isStreamPath, nonEmptyInputFile } from "./files.ts";
import { jsonlSource } from "./jsonl-source.ts";
import { parquetSource } from "./parquet-source.ts";
import {
  DEFAULT_BATCH_SIZE,
  defaultSourceName,
  isObject,
  itemFromRecord,
  type FileSource,
  type FileSourceOptions,
} from "./source-common.ts";
import type { Source, SourceItem } from "./types.ts";

type Opener = (path: string, options: FileSourceOptions) => FileSource;

const OPENERS: Record<string, Opener> = {
  ".jsonl": jsonlSource,
  ".ndjson": jsonlSource,
  ".json": jsonSource,
  ".parquet": parquetSource,
  ".arrow": arrowSource,
  ".arrows": arrowSource,
  ".ipc": arrowSource,
  ".feather": arrowSource,
  ".txt": textSource,
  ".md": textSource,
};

/** Extensions `openSource` reads, with their dot. */
export const SOURCE_EXTENSIONS: readonly string[] = Object.keys(OPENERS);

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A whole text file as one record `{ text }` (position 0). Invalid UTF-8 is an error item. */
export function textSource(path: string, options: FileSourceOptions = {}): FileSource {
  const name = options.name ?? defaultSourceName(path);
  async function* batchesFrom(
    offset: number,
    { from, signal }: { readonly from: number; readonly signal: AbortSignal },
  ): AsyncGenerator<SourceItem[]> {
    await nonEmptyInputFile(path);
    if (from > 0 || signal.aborted) return;
    const bytes = await readFile(path);
    try {
      yield [{ position: offset, data: { text: strictUtf8.decode(bytes) } }];
    } catch (error) {
      const raw = new TextDecoder().decode(bytes);
      yield [{ position: offset, error: new InputError("invalid UTF-8", { file: path }, { cause: error }), raw }];
    }
  }
  return {
    path,
    name,
    origin: options.origin ?? "human",
    size: async () => 1,
    span: async () => 1,
    batchesFrom,
    batches: (options) => batchesFrom(0, options),
  };
}

/**
 * `.json`: a file whose first character is `[` is one JSON array of records (read whole, position =
 * index); any other `.json` file is read as JSON Lines.
 */
export function jsonSource(path: string, options: FileSourceOptions = {}): FileSource {
  const lines = jsonlSource(path, options);
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  let records: unknown[] | undefined;

  async function isArrayFile(): Promise<boolean> {
    await nonEmptyInputFile(path);
    const handle = await open(path, "r");
    try {
      const head = Buffer.alloc(256);
      const { bytesRead } = await handle.read(head, 0, head.length, 0);
      return /^(\uFEFF)?\s*\[/.test(head.subarray(0, bytesRead).toString("utf8"));
    } finally {
      await handle.close();
    }
  }

  async function load(): Promise<unknown[]> {
    if (records) return records;
    const text = await readFile(path, "utf8");
    try {
      const parsed: unknown = JSON.parse(text.replace(/^\uFEFF/, ""));
      if (!Array.isArray(parsed)) throw new Error("expected an array");
      records = parsed;
      return parsed;
    } catch (error) {
      throw new InputError(`invalid JSON array: ${errorMessage(error)}`, { file: path }, { cause: error });
    }
  }

  async function* batchesFrom(
    offset: number,
    options: { readonly from: number; readonly signal: AbortSignal },
  ): AsyncGenerator<SourceItem[]> {
    if (!(await isArrayFile())) {
      yield* lines.batchesFrom(offset, options);
      return;
    }
    const all = await load();
    for (let start = options.from; start < all.length; start += batchSize) {
      if (options.signal.aborted) return;
      const items: SourceItem[] = [];
      for (let position = start; position < Math.min(all.length, start + batchSize); position++) {
        const record = all[position];
        items.push(
          isObject(record)
            ? itemFromRecord(position + offset, record)
            : {
                position: position + offset,
                error: new InputError(`element ${position} is not a JSON object`, { file: path }),
                raw: JSON.stringify(record) ?? String(record),
              },
        );
      }
      yield items;
    }
  }

  return {
    path,
    name: lines.name,
    origin: lines.origin,
    size: async () => ((await isArrayFile()) ? (await load()).length : lines.size?.()),
    span: async () => ((await isArrayFile()) ? (await load()).length : lines.span()),
    batchesFrom,
    batches: (options) => batchesFrom(0, options),
  };
}

/**
 * Several files read as one source, in order. A file's positions start where the previous file's
 * end (its span), so a record's position never depends on how far an earlier run got.
 */
export function concatSources(name: string, sources: readonly FileSource[], options: FileSourceOptions = {}): Source {
  return {
    name,
    origin: options.origin ?? sources[0]?.origin ?? "human",
    async size() {
      let total = 0;
      for (const source of sources) {
        const size = await source.size?.();
        if (size === undefined) return undefined;
        total += size;
      }
      return total;
    },
    async *batches({ from, signal }) {
      let offset = 0;
      for (const source of sources) {
        if (signal.aborted) return;
        if (from > offset) {
          // Files wholly before `from` are only measured, not read.
          const span = await source.span();
          if (offset + span <= from) {
            offset += span;
            continue;
          }
        }
        yield* source.batchesFrom(offset, { from: Math.max(0, from - offset), signal });
        offset += await source.span();
      }
    },
  };
}

function openerFor(path: string): Opener | undefined {
  return OPENERS[extname(path).toLowerCase()];
}

/** Shards a sink committed (`part-00000.parquet` ...): reading an output folder means reading these. */
const ACCEPTED_SHARD = /^part-\d{5,}\.(parquet|arrow|jsonl)$/;

async function filesOf(pathOrGlob: string): Promise<string[]> {
  if (isDynamicPattern(pathOrGlob)) {
    const matches = await glob(pathOrGlob, { onlyFiles: true, expandDirectories: false });
    return matches.filter((file) => openerFor(file) && !basename(file).startsWith(".")).sort();
  }
  let info;
  try {
    info = await stat(pathOrGlob);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new InputError("file does not exist", { file: pathOrGlob }, { cause: error });
    }
    throw error;
  }
  if (!info.isDirectory()) return [pathOrGlob];
  const names = (await readdir(pathOrGlob)).filter((name) => !name.startsWith(".")).sort();
  const shards = names.filter((name) => ACCEPTED_SHARD.test(name));
  const chosen = shards.length > 0 ? shards : names.filter((name) => openerFor(name));
  return chosen.map((name) => join(pathOrGlob, name));
}

/**
 * A source for a file, a directory or a glob, chosen by extension: `.jsonl`/`.ndjson` (JSON Lines),
 * `.json` (an array, or JSON Lines), `.parquet`, `.arrow`/`.arrows`/`.ipc`/`.feather` (Arrow IPC),
 * `.txt`/`.md` (one record `{ text }` per file). A directory means its supported files, sorted by
 * name; a directory holding committed output shards (`part-NNNNN.*`) means those shards only, so one
 * graph's output folder is another graph's input. Several files are read as one source, in order.
 */
export async function openSource(pathOrGlob: string, options: FileSourceOptions = {}): Promise<Source> {
  const files = await filesOf(pathOrGlob === "-" ? STDIN : resolveDataPath(pathOrGlob));
  if (files.length === 0) throw new InputError("no readable files (.jsonl, .json, .parquet, .arrow, .txt) match", { file: pathOrGlob });
  const streams = await Promise.all(files.map(isStreamPath));
  const sources = files.map((file, index) => {
    // A pipe (`-`, /dev/stdin, a FIFO) has no extension to go by: records arrive as JSON Lines.
    const opener = streams[index] ? OPENERS[".jsonl"] : openerFor(file);
    if (!opener) {
      throw new InputError(
        `unsupported file type "${extname(file) || "(none)"}"; use one of ${SOURCE_EXTENSIONS.join(", ")}`,
        { file },
      );
    }
    return opener(file, files.length === 1 ? options : { ...options, name: undefined });
  });
  if (sources.length === 1) return sources[0]!;
  const name = isDynamicPattern(pathOrGlob) ? pathOrGlob : basename(pathOrGlob.replace(/[\\/]+$/, ""));
  return concatSources(options.name ?? name, sources, options);
}
