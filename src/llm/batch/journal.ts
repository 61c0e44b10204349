import { mkdirSync, readFileSync, truncateSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { ConfigError, errorMessage } from "../../errors.ts";

/** One line of a request in an intent: its custom_id, the cache keys of its choices, its token estimate. */
export interface IntentLine {
  readonly id: string;
  readonly keys: readonly string[];
  readonly tokens: number;
}

/**
 * What the batch journal (`<run>/state/batches.jsonl`) records, one JSON object a line, each appended and
 * fsynced before the protocol takes its next step (see protocol.ts for the order).
 */
export type JournalRecord =
  /** A group of requests is about to be submitted under `key` (the batch's metadata rxsynth_journal_key). */
  | { readonly type: "intent"; readonly key: string; readonly at: number; readonly lines: readonly IntentLine[] }
  | { readonly type: "file"; readonly key: string; readonly fileId: string }
  | { readonly type: "batch"; readonly key: string; readonly batchId: string }
  /** Resume found no batch for the intent: it never reached the server, its requests are free to go again. */
  | { readonly type: "abandoned"; readonly key: string }
  /** The batch ended and its answers are in the response cache; `retry` lists the requests to resend. */
  | { readonly type: "done"; readonly key: string; readonly status: string; readonly answered: number; readonly retry: readonly string[]; readonly refused: number };

export interface IntentState {
  readonly key: string;
  readonly at: number;
  readonly lines: readonly IntentLine[];
  fileId?: string;
  batchId?: string;
  state: "open" | "abandoned" | "done";
  status?: string;
}

export interface JournalState {
  /** In the order they were recorded. */
  readonly intents: Map<string, IntentState>;
  /** Batches each request went through without an answer (expired, failed, cancelled, 5xx). */
  readonly attempts: Map<string, number>;
}

/** The state a journal's records describe; a record about an unknown intent is ignored. */
export function replayJournal(records: Iterable<JournalRecord>): JournalState {
  const intents = new Map<string, IntentState>();
  const attempts = new Map<string, number>();
  for (const record of records) {
    if (record.type === "intent") {
      intents.set(record.key, { key: record.key, at: record.at, lines: record.lines, state: "open" });
      continue;
    }
    const intent = intents.get(record.key);
    if (!intent) continue;
    if (record.type === "file") intent.fileId = record.fileId;
    else if (record.type === "batch") intent.batchId = record.batchId;
    else if (record.type === "abandoned") intent.state = "abandoned";
    else {
      intent.state = "done";
      intent.status = record.status;
      for (const id of record.retry) attempts.set(id, (attempts.get(id) ?? 0) + 1);
    }
  }
  return { intents, attempts };
}

/** Reads a journal file; a last line cut short by a crash mid-write is no record (it was never acted on). */
export function readJournal(path: string): JournalRecord[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new ConfigError(`cannot read the batch journal ${path} (${errorMessage(error)}): check the run folder's permissions`, { cause: error });
  }
  const lines = text.split("\n");
  const records: JournalRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.trim()) continue;
    try {
      records.push(JSON.parse(line) as JournalRecord);
    } catch (error) {
      // Only the last line can be torn: an earlier one that does not parse means the file was edited.
      if (i >= lines.length - 2) break;
      throw new ConfigError(`${path}, line ${i + 1}: not a batch journal record (${errorMessage(error)}): restore the file, or move the run folder aside and start again`);
    }
  }
  return records;
}

/** The journal of one run folder: records are appended in order and each is on disk when `append` resolves. */
export class BatchJournal {
  private handle: Promise<FileHandle> | undefined;
  private tail: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch {
      // No journal yet.
    }
    // A last line torn by a crash mid-write was never acted on: cut it, so the next record starts a line.
    if (text.length > 0 && !text.endsWith("\n")) truncateSync(path, Buffer.byteLength(text.slice(0, text.lastIndexOf("\n") + 1)));
  }

  read(): JournalRecord[] {
    return readJournal(this.path);
  }

  append(record: JournalRecord): Promise<void> {
    const write = this.tail.then(async () => {
      const handle = await (this.handle ??= open(this.path, "a"));
      await handle.write(`${JSON.stringify(record)}\n`);
      await handle.sync();
    });
    // One failed append fails that step; the next still waits its turn.
    this.tail = write.catch(() => {});
    return write;
  }

  async close(): Promise<void> {
    await this.tail;
    const handle = await this.handle;
    this.handle = undefined;
    await handle?.close();
  }
}
