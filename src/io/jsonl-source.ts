import { open } from "node:fs/promises";
import { InputError, errorMessage } from "../errors.ts";
import { STDIN, isStreamPath, nonEmptyInputFile } from "./files.ts";
import {
  DEFAULT_BATCH_SIZE,
  defaultSourceName,
  isObject,
  itemFromRecord,
  type FileSource,
  type FileSourceOptions,
} from "./source-common.ts";
import type { SourceItem } from "./types.ts";

/** Bytes read per call; lines longer than this are carried across reads. */
const READ_CHUNK = 1 << 20;
const NEWLINE = 0x0a;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const lenientUtf8 = new TextDecoder("utf-8");

/** True when text[start, end) holds only whitespace (a BOM included); stops at the first other char. */
function isBlank(text: string, start = 0, end = text.length): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0xfeff) return false;
  }
  return true;
}

/**
 * A file's bytes in reads of up to READ_CHUNK, each consumed before the next read reuses the buffer.
 * Standard input is read as the process's stream: a pipe or socket cannot always be opened by path.
 */
async function* reads(path: string, startByte = 0): AsyncGenerator<Buffer> {
  if (path === STDIN) {
    for await (const chunk of process.stdin) yield chunk as Buffer;
    return;
  }
  const handle = await open(path, "r");
  try {
    const chunk = Buffer.allocUnsafe(READ_CHUNK);
    for (let at = startByte; ; ) {
      const { bytesRead } = await handle.read(chunk, 0, READ_CHUNK, at);
      at += bytesRead;
      if (bytesRead === 0) break;
      yield chunk.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/** A file as runs of whole lines, read in chunks (the file's last line may lack its newline). */
async function* regions(path: string, startByte = 0): AsyncGenerator<Uint8Array> {
  // Pieces of a line longer than a chunk, joined once its end is found (not re-joined per read).
  let pieces: Buffer[] = [];
  for await (const bytes of reads(path, startByte)) {
    const lastNewline = bytes.lastIndexOf(NEWLINE);
    if (lastNewline < 0) {
      pieces.push(Buffer.from(bytes));
      continue;
    }
    const head = bytes.subarray(0, lastNewline + 1);
    const region = pieces.length > 0 ? Buffer.concat([...pieces, head]) : head;
    pieces = lastNewline + 1 < bytes.length ? [Buffer.from(bytes.subarray(lastNewline + 1))] : [];
    // The region is consumed before the next read reuses `chunk`.
    yield region;
  }
  if (pieces.length > 0) yield Buffer.concat(pieces);
}

/** Number of lines in a region (a last line without its newline counts). */
function countLines(region: Uint8Array): number {
  let lines = 0;
  let at = -1;
  const bytes = Buffer.from(region.buffer, region.byteOffset, region.byteLength);
  while ((at = bytes.indexOf(NEWLINE, at + 1)) >= 0) lines++;
  return region.length > 0 && region[region.length - 1] !== NEWLINE ? lines + 1 : lines;
}

/**
 * JSON Lines, streamed in 1 MiB reads: never more than one read (plus one long line) in memory.
 *
 * Position = line number - 1, so a record's position and an error's line always agree; blank lines
 * are skipped but keep their numbers. A line that is not valid UTF-8, not JSON, or not a
 * JSON object becomes an item with an `InputError` (file and line) and the raw text, never an
 * exception. A missing or empty file throws `InputError`. Records before `from` are counted, not parsed.
 */
export interface JsonlSourceOptions extends FileSourceOptions {
  /**
   * Yield each object as it is, even one in rxsynth's sample layout (whose `data` is otherwise taken as
   * the record). For reading a run's own JSONL shards back. Default false.
   */
  readonly whole?: boolean;
}

export function jsonlSource(path: string, options: JsonlSourceOptions = {}): FileSource {
  const name = options.name ?? defaultSourceName(path);
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  let counted: { lines: number; records: number } | undefined;
  // Known once the file has been read to the end; saves a counting pass when files are concatenated.
  let spanOfFile: number | undefined;
  /**
   * Where lines start, one mark per region read (1 MiB apart), in position order: a later read from a
   * position seeks to the nearest mark instead of counting every line before it again. A scaled-out
   * worker reads one file chunk after chunk; without marks the k-th chunk recounts k chunks' lines.
   */
  const marks: { readonly position: number; readonly byte: number }[] = [{ position: 0, byte: 0 }];
  const markAt = (position: number, byte: number) => {
    const last = marks[marks.length - 1]!;
    if (position > last.position && byte > last.byte) marks.push({ position, byte });
  };
  const nearestMark = (from: number) => {
    let low = 0;
    let high = marks.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (marks[middle]!.position <= from) low = middle;
      else high = middle - 1;
    }
    return marks[low]!;
  };

  const count = async (): Promise<{ lines: number; records: number }> => {
    if (counted) return counted;
    await nonEmptyInputFile(path);
    let lines = 0;
    let records = 0;
    for await (const region of regions(path)) {
      const text = lenientUtf8.decode(region);
      let start = 0;
      while (start < text.length) {
        let end = text.indexOf("\n", start);
        if (end < 0) end = text.length;
        lines++;
        if (!isBlank(text, start, end)) records++;
        start = end + 1;
      }
    }
    counted = { lines, records };
    return counted;
  };

  async function* batchesFrom(
    offset: number,
    { from, signal }: { readonly from: number; readonly signal: AbortSignal },
  ): AsyncGenerator<SourceItem[]> {
    await nonEmptyInputFile(path);
    // A pipe's records are handed on as they arrive, not held until a batch fills.
    const stream = await isStreamPath(path);
    const start = stream ? { position: 0, byte: 0 } : nearestMark(from);
    let position = start.position;
    let byte = start.byte;
    let items: SourceItem[] = [];

    const parseLine = (line: string, position: number): void => {
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (isBlank(line)) return;
      const where = { file: path, line: position + 1 };
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch (error) {
        items.push({
          position: position + offset,
          error: new InputError(`invalid JSON: ${errorMessage(error)}`, where, { cause: error }),
          raw: line,
        });
        return;
      }
      if (!isObject(record)) {
        const kind = record === null ? "null" : Array.isArray(record) ? "an array" : `a ${typeof record}`;
        items.push({
          position: position + offset,
          error: new InputError(`expected a JSON object, got ${kind}`, where),
          raw: line,
        });
        return;
      }
      items.push(options.whole ? { position: position + offset, data: record } : itemFromRecord(position + offset, record));
    };

    const parseText = (text: string): void => {
      let start = 0;
      while (start < text.length) {
        let end = text.indexOf("\n", start);
        if (end < 0) end = text.length;
        if (position >= from) parseLine(text.slice(start, end), position);
        position++;
        start = end + 1;
      }
    };

    // Decoding a whole region at once is fast; only a region with invalid bytes is split by line,
    // so each bad line becomes one error item and its neighbours still parse.
    const parseBytesByLine = (region: Uint8Array): void => {
      let start = 0;
      while (start < region.length) {
        let end = region.indexOf(NEWLINE, start);
        if (end < 0) end = region.length;
        if (position >= from) {
          const bytes = region.subarray(start, end);
          let line: string | undefined;
          try {
            line = strictUtf8.decode(bytes);
          } catch (error) {
            items.push({
              position: position + offset,
              error: new InputError("invalid UTF-8", { file: path, line: position + 1 }, { cause: error }),
              raw: lenientUtf8.decode(bytes),
            });
          }
          if (line !== undefined) parseLine(line, position);
        }
        position++;
        start = end + 1;
      }
    };

    for await (const region of regions(path, start.byte)) {
      if (signal.aborted) return;
      const lines = countLines(region);
      byte += region.length;
      // Regions are whole lines, so the next one starts a line: a place a later read may seek to.
      const endsLine = region.length > 0 && region[region.length - 1] === NEWLINE;
      if (position + lines <= from) {
        position += lines;
        if (!stream && endsLine) markAt(position, byte);
        continue;
      }
      if (!stream && endsLine) markAt(position + lines, byte);
      let text: string | undefined;
      try {
        text = strictUtf8.decode(region);
      } catch {
        parseBytesByLine(region);
      }
      if (text !== undefined) parseText(text);
      while (items.length >= batchSize || (stream && items.length > 0)) {
        if (signal.aborted) return;
        yield items.splice(0, batchSize);
      }
    }
    if (items.length > 0 && !signal.aborted) yield items;
    spanOfFile = position;
  }

  return {
    path,
    name,
    origin: options.origin ?? "human",
    async size() {
      // Counting would consume a pipe.
      return (await isStreamPath(path)) ? undefined : (await count()).records;
    },
    async span() {
      spanOfFile ??= (await count()).lines;
      return spanOfFile;
    },
    batchesFrom,
    batches(options) {
      return batchesFrom(0, options);
    },
  };
}
