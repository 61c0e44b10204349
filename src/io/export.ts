import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname, extname } from "node:path";
import type { Writable } from "node:stream";
import { ConfigError, InputError } from "../errors.ts";
import type { SampleData } from "../sample.ts";
import { arrowSource } from "./arrow-source.ts";
import { jsonlSource } from "./jsonl-source.ts";
import { parquetSource } from "./parquet-source.ts";
import { outputFiles } from "./read.ts";
import type { FileSource } from "./source-common.ts";

/** The record shapes training stacks read. */
export type ExportFormat = "alpaca" | "sharegpt" | "openai-messages" | "dpo";

export const EXPORT_FORMATS: readonly ExportFormat[] = ["alpaca", "sharegpt", "openai-messages", "dpo"];

export interface AlpacaRecord {
  readonly instruction: string;
  readonly input: string;
  readonly output: string;
}
export interface ShareGptRecord {
  readonly conversations: ReadonlyArray<{ readonly from: "system" | "human" | "gpt"; readonly value: string }>;
}
export interface OpenAiMessagesRecord {
  readonly messages: ReadonlyArray<{ readonly role: "system" | "user" | "assistant"; readonly content: string }>;
}
export interface DpoRecord {
  readonly prompt: string;
  readonly chosen: string;
  readonly rejected: string;
}
export type ExportRecord = AlpacaRecord | ShareGptRecord | OpenAiMessagesRecord | DpoRecord;

/** Why a row cannot be written in a format: the field it lacks and a sentence saying so. */
export interface MissingField {
  readonly missing: string;
  readonly message: string;
}

export interface ExportOptions {
  readonly format: ExportFormat;
  /** JSONL file to write (written under a temporary name, renamed when complete), or a stream. */
  readonly out: string | Writable;
  /** Stop at the first row that lacks what the format needs, instead of counting and skipping it. Default false. */
  readonly strict?: boolean;
  /** Told of each skipped row (non-strict mode). */
  readonly onSkip?: (error: InputError) => void;
}

export interface ExportSummary {
  readonly format: ExportFormat;
  /** Shard files read, in order. */
  readonly files: readonly string[];
  readonly written: number;
  readonly skipped: number;
  /** The first few skipped rows' errors (file, row, what is missing). */
  readonly skippedExamples: readonly string[];
  /** The file written, or undefined for a stream. */
  readonly out: string | undefined;
}

const SKIPPED_EXAMPLES = 10;

type Role = "system" | "user" | "assistant";
interface Message {
  readonly role: Role;
  readonly content: string;
}

function text(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** Non-empty text, or undefined: an empty instruction or answer is not a training example. */
function filled(value: unknown): string | undefined {
  return typeof value === "string" && value.trim().length > 0 ? value : undefined;
}

function fieldsOf(data: SampleData): string {
  const keys = Object.keys(data);
  return keys.length === 0 ? "no fields" : keys.join(", ");
}

/** `messages` as OpenAI-style messages, or a reason they are not. Tool and function turns are not training text here. */
function readMessages(value: unknown): Message[] | string {
  if (!Array.isArray(value)) return "messages is not a list";
  const messages: Message[] = [];
  for (const [index, entry] of value.entries()) {
    const role = (entry as { role?: unknown } | null)?.role;
    const content = (entry as { content?: unknown } | null)?.content;
    if (role !== "system" && role !== "user" && role !== "assistant") return `messages[${index}] has role ${JSON.stringify(role)}`;
    if (typeof content !== "string") return `messages[${index}] has no text content`;
    messages.push({ role, content });
  }
  if (!messages.some((m) => m.role === "user")) return "messages has no user turn";
  if (!messages.some((m) => m.role === "assistant")) return "messages has no assistant turn";
  return messages;
}

/**
 * The prompt side of a single-turn row: instruction (+ input), question (+ context), or prompt.
 * `input` is returned apart for alpaca, which keeps it in its own field.
 */
function promptOf(data: SampleData): { instruction: string; input: string } | undefined {
  const instruction = filled(data.instruction);
  if (instruction !== undefined) return { instruction, input: text(data.input) ?? "" };
  const question = filled(data.question);
  if (question !== undefined) return { instruction: question, input: text(data.context) ?? "" };
  const prompt = filled(data.prompt);
  if (prompt !== undefined) return { instruction: prompt, input: "" };
  return undefined;
}

/**
 * The answer side of a single-turn row: output, a worked solution (before `answer`, which in math and code
 * rows is only the reference result), answer, or a preference pair's chosen response.
 */
function responseOf(data: SampleData): string | undefined {
  return filled(data.output) ?? filled(data.solution) ?? filled(data.answer) ?? filled(data.chosen);
}

function joined(prompt: { instruction: string; input: string }): string {
  return prompt.input.trim().length > 0 ? `${prompt.instruction}\n\n${prompt.input}` : prompt.instruction;
}

/** A conversation from `messages`, or else the single exchange the row's instruction/question/prompt columns hold. */
function conversationOf(data: SampleData): Message[] | MissingField {
  if (data.messages !== undefined && data.messages !== null) {
    const messages = readMessages(data.messages);
    if (typeof messages === "string") return { missing: "messages", message: messages };
    return messages;
  }
  const prompt = promptOf(data);
  const response = responseOf(data);
  if (!prompt || response === undefined) return missingExchange(data, prompt === undefined);
  const messages: Message[] = [];
  const system = filled(data.system);
  if (system !== undefined) messages.push({ role: "system", content: system });
  messages.push({ role: "user", content: joined(prompt) }, { role: "assistant", content: response });
  return messages;
}

function missingExchange(data: SampleData, noPrompt: boolean): MissingField {
  return noPrompt
    ? { missing: "instruction", message: `needs messages, or instruction, question or prompt text; the row has ${fieldsOf(data)}` }
    : { missing: "output", message: `needs an output, solution, answer or chosen text; the row has ${fieldsOf(data)}` };
}

function toAlpaca(data: SampleData): AlpacaRecord | MissingField {
  if (data.messages !== undefined && data.messages !== null) {
    const messages = readMessages(data.messages);
    if (typeof messages === "string") return { missing: "messages", message: messages };
    const turns = messages.filter((m) => m.role !== "system");
    if (turns.length !== 2 || turns[0]!.role !== "user" || turns[1]!.role !== "assistant") {
      const exchanges = turns.filter((m) => m.role === "user").length;
      return {
        missing: "messages",
        message: `alpaca holds one exchange; this conversation has ${exchanges} user turns (export it as sharegpt or openai-messages)`,
      };
    }
    return { instruction: turns[0]!.content, input: "", output: turns[1]!.content };
  }
  const prompt = promptOf(data);
  const output = responseOf(data);
  if (!prompt || output === undefined) return missingExchange(data, prompt === undefined);
  return { instruction: prompt.instruction, input: prompt.input, output };
}

const SHAREGPT_FROM = { system: "system", user: "human", assistant: "gpt" } as const;

function toShareGpt(data: SampleData): ShareGptRecord | MissingField {
  const messages = conversationOf(data);
  if (!Array.isArray(messages)) return messages;
  return { conversations: messages.map((m) => ({ from: SHAREGPT_FROM[m.role], value: m.content })) };
}

function toOpenAiMessages(data: SampleData): OpenAiMessagesRecord | MissingField {
  const messages = conversationOf(data);
  if (!Array.isArray(messages)) return messages;
  return { messages: messages.map((m) => ({ role: m.role, content: m.content })) };
}

function toDpo(data: SampleData): DpoRecord | MissingField {
  const prompt = promptOf(data);
  const chosen = filled(data.chosen);
  const rejected = filled(data.rejected);
  const lacking = [prompt === undefined ? "prompt" : "", chosen === undefined ? "chosen" : "", rejected === undefined ? "rejected" : ""].filter(Boolean);
  if (!prompt || chosen === undefined || rejected === undefined) {
    return {
      missing: lacking[0]!,
      message: `the dpo format needs prompt (or instruction/question), chosen and rejected texts; missing ${lacking.join(", ")}; the row has ${fieldsOf(data)}`,
    };
  }
  return { prompt: joined(prompt), chosen, rejected };
}

/**
 * One row's `data` in `format`, or what it lacks. Columns read, by format:
 * - alpaca: instruction/input/output, question/context/answer (a `solution` wins over `answer`), prompt/chosen
 *   (or prompt/solution), or a one-exchange `messages`;
 * - sharegpt, openai-messages: `messages` ({role, content}), else the single-turn columns above (+ `system`);
 * - dpo: prompt (or instruction + input, question + context), chosen, rejected.
 */
export function convertRow(format: ExportFormat, data: SampleData): ExportRecord | MissingField {
  switch (format) {
    case "alpaca":
      return toAlpaca(data);
    case "sharegpt":
      return toShareGpt(data);
    case "openai-messages":
      return toOpenAiMessages(data);
    case "dpo":
      return toDpo(data);
  }
}

export function isMissing(value: ExportRecord | MissingField): value is MissingField {
  return typeof (value as MissingField).missing === "string";
}

function assertFormat(format: string): asserts format is ExportFormat {
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new ConfigError(`unknown export format "${format}"; use one of ${EXPORT_FORMATS.join(", ")}`);
  }
}

const READERS: Record<string, (path: string) => FileSource> = {
  ".parquet": parquetSource,
  ".arrow": arrowSource,
  ".arrows": arrowSource,
  ".ipc": arrowSource,
  ".jsonl": jsonlSource,
  ".ndjson": jsonlSource,
};
// A run written in several formats holds the same rows in each; read one, the most compact.
const PREFERENCE = [".parquet", ".arrow", ".arrows", ".ipc", ".jsonl", ".ndjson"];

/** The accepted shards of a run folder (or the one file given), in one format. */
export async function acceptedShards(path: string): Promise<string[]> {
  // A file path comes back as it is; a folder without "part" shards gives nothing.
  const files = await outputFiles(path, "part");
  const usable = files.filter((file) => READERS[extname(file).toLowerCase()]);
  if (usable.length === 0) {
    throw new InputError(`no accepted shards (part-NNNNN.parquet|arrow|jsonl) to export`, { file: path });
  }
  const extension = PREFERENCE.find((ext) => usable.some((file) => extname(file).toLowerCase() === ext))!;
  return usable.filter((file) => extname(file).toLowerCase() === extension);
}

/** Writes text to a stream, waiting when its buffer is full: memory stays at one batch. */
async function writeChunk(stream: Writable, chunk: string): Promise<void> {
  if (!stream.write(chunk)) await once(stream, "drain");
}

/**
 * Converts a run folder's accepted shards into JSONL for a training stack, streaming one batch at a time
 * (memory: one row group, never the dataset). A row that lacks what the format needs is skipped and
 * counted, each described by an InputError naming its file and row; with `strict` the first one throws
 * and nothing is left at `out`.
 */
export async function exportRun(path: string, options: ExportOptions): Promise<ExportSummary> {
  assertFormat(options.format);
  const files = await acceptedShards(path);
  const toFile = typeof options.out === "string";
  const target = typeof options.out === "string" ? options.out : undefined;
  const partial = target ? `${target}.partial-${process.pid}` : undefined;
  if (target) await mkdir(dirname(target), { recursive: true });
  const stream = partial ? createWriteStream(partial, { encoding: "utf8" }) : (options.out as Writable);
  let written = 0;
  let skipped = 0;
  const examples: string[] = [];
  let failed = true;
  try {
    for (const file of files) {
      const reader = READERS[extname(file).toLowerCase()]!(file);
      for await (const batch of reader.batches({ from: 0, signal: new AbortController().signal })) {
        let chunk = "";
        for (const item of batch) {
          const row = item.position + 1;
          const where = { file, line: row };
          if (item.error || !item.data) {
            const error = item.error ?? new InputError("row could not be read", where);
            if (options.strict) throw error;
            skipped++;
            if (examples.length < SKIPPED_EXAMPLES) examples.push(error.message);
            options.onSkip?.(error);
            continue;
          }
          const record = convertRow(options.format, item.data);
          if (isMissing(record)) {
            const id = item.id ? ` (id ${item.id})` : "";
            const error = new InputError(`row${id} cannot be written as ${options.format}: ${record.message}`, { ...where, field: record.missing });
            if (options.strict) throw error;
            skipped++;
            if (examples.length < SKIPPED_EXAMPLES) examples.push(error.message);
            options.onSkip?.(error);
            continue;
          }
          chunk += `${JSON.stringify(record)}\n`;
          written++;
        }
        if (chunk) await writeChunk(stream, chunk);
      }
    }
    if (written === 0 && skipped > 0) {
      // An empty file that exits 0 looks like success to a training script; this format does not fit the data.
      throw new ConfigError(
        `none of the ${skipped} rows can be written as ${options.format} (${examples[0] ?? "rows lack its fields"}); ` +
          `choose the format that fits this graph's rows (${EXPORT_FORMATS.join(", ")})`,
      );
    }
    if (partial) {
      stream.end();
      await once(stream, "finish");
      await rename(partial, target!);
    }
    failed = false;
  } finally {
    if (failed && partial) {
      stream.destroy();
      await rm(partial, { force: true });
    }
  }
  return { format: options.format, files, written, skipped, skippedExamples: examples, out: toFile ? target : undefined };
}
