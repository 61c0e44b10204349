import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InputError, jsonlFormat, memorySource, parquetFormat, run, type SampleData } from "../../src/index.ts";
import { registerExportCommand } from "../../src/cli/export-command.ts";
import { convertRow, exportRun } from "../../src/io/export.ts";

// One row per column family the graphs document, plus rows that lack what some formats need.
const ROWS: SampleData[] = [
  { id: "alpaca-1", instruction: "Name a prime number.", input: "", output: "7 is prime." },
  { id: "alpaca-2", instruction: "Translate to French.", input: "Good morning", output: "Bonjour" },
  { id: "qa-1", question: "What colour is the sky?", context: "The sky is blue on a clear day.", answer: "Blue." },
  {
    id: "chat-1",
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi!" },
      { role: "assistant", content: "Hello." },
      { role: "user", content: "How are you?" },
      { role: "assistant", content: "Fine, thanks." },
    ],
    turns: 2,
  },
  { id: "chat-2", messages: [{ role: "user", content: "2+2?" }, { role: "assistant", content: "4" }], turns: 1 },
  { id: "pref-1", prompt: "Write a haiku about rain.", chosen: "Soft rain on the roof", rejected: "rain", judge_score: 8 },
  { id: "bare-1", kind: "invoice", total: 12.5 },
];

function readJsonl(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

let dir: string;
let runDir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rxsynth-export-"));
  runDir = join(dir, "run");
  // Three rows per shard, so the export crosses shard boundaries; JSONL shards too, to prove only one format is read.
  await run(
    { name: "export-fixture", sources: [memorySource("fixture", ROWS)], operators: [], output: { formats: [parquetFormat(), jsonlFormat()], shardRows: 3 } },
    { out: runDir },
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("exportRun", () => {
  it("writes alpaca records from instruction, question and one-exchange message rows, skipping the rest", async () => {
    const out = join(dir, "alpaca.jsonl");
    const skippedRows: InputError[] = [];
    const summary = await exportRun(runDir, { format: "alpaca", out, onSkip: (error) => skippedRows.push(error) });
    expect(summary.files.map((file) => file.replace(`${runDir}/`, ""))).toEqual(["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]);
    const records = readJsonl(await readFile(out, "utf8"));
    expect(records).toEqual([
      { instruction: "Name a prime number.", input: "", output: "7 is prime." },
      { instruction: "Translate to French.", input: "Good morning", output: "Bonjour" },
      { instruction: "What colour is the sky?", input: "The sky is blue on a clear day.", output: "Blue." },
      { instruction: "2+2?", input: "", output: "4" },
      { instruction: "Write a haiku about rain.", input: "", output: "Soft rain on the roof" },
    ]);
    expect(summary).toMatchObject({ written: 5, skipped: 2 });
    // The two-turn conversation and the invoice: each error names its shard, row and the missing field.
    expect(skippedRows.map((error) => [error.file?.replace(`${runDir}/`, ""), error.line, error.field])).toEqual([
      ["part-00001.parquet", 1, "messages"],
      ["part-00002.parquet", 1, "instruction"],
    ]);
    expect(skippedRows[0]!.message).toContain("this conversation has 2 user turns");
    expect(skippedRows[1]!.message).toMatch(/part-00002\.parquet, line 1, instruction: row \(id fixture:bare-1\)/);
  });

  it("writes sharegpt conversations with system, human and gpt turns", async () => {
    const out = join(dir, "sharegpt.jsonl");
    const summary = await exportRun(runDir, { format: "sharegpt", out });
    const records = readJsonl(await readFile(out, "utf8"));
    expect(summary).toMatchObject({ written: 6, skipped: 1 });
    expect(records[1]).toEqual({ conversations: [{ from: "human", value: "Translate to French.\n\nGood morning" }, { from: "gpt", value: "Bonjour" }] });
    expect(records[3]).toEqual({
      conversations: [
        { from: "system", value: "Be brief." },
        { from: "human", value: "Hi!" },
        { from: "gpt", value: "Hello." },
        { from: "human", value: "How are you?" },
        { from: "gpt", value: "Fine, thanks." },
      ],
    });
  });

  it("writes openai messages, keeping a conversation's roles as they are", async () => {
    const out = join(dir, "messages.jsonl");
    const summary = await exportRun(runDir, { format: "openai-messages", out });
    const records = readJsonl(await readFile(out, "utf8"));
    expect(summary).toMatchObject({ written: 6, skipped: 1 });
    expect(records[2]).toEqual({
      messages: [
        { role: "user", content: "What colour is the sky?\n\nThe sky is blue on a clear day." },
        { role: "assistant", content: "Blue." },
      ],
    });
    expect((records[3]!.messages as unknown[]).length).toBe(5);
  });

  it("writes dpo triples only from rows that have both a chosen and a rejected response", async () => {
    const out = join(dir, "dpo.jsonl");
    const summary = await exportRun(runDir, { format: "dpo", out });
    expect(readJsonl(await readFile(out, "utf8"))).toEqual([{ prompt: "Write a haiku about rain.", chosen: "Soft rain on the roof", rejected: "rain" }]);
    expect(summary).toMatchObject({ written: 1, skipped: 6 });
    expect(summary.skippedExamples[0]).toContain("missing chosen, rejected");
  });

  it("in strict mode stops at the first unusable row with an InputError and leaves no file behind", async () => {
    const out = join(dir, "strict", "dpo.jsonl");
    const error = await exportRun(runDir, { format: "dpo", out, strict: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).file).toBe(join(runDir, "part-00000.parquet"));
    expect((error as InputError).line).toBe(1);
    expect(await readdir(join(dir, "strict"))).toEqual([]);
  });

  it("streams to a writable and reads a single shard file", async () => {
    const stream = new PassThrough();
    let text = "";
    stream.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
    const summary = await exportRun(join(runDir, "part-00001.parquet"), { format: "openai-messages", out: stream });
    expect(summary.out).toBeUndefined();
    expect(readJsonl(text).map((record) => (record.messages as unknown[]).length)).toEqual([5, 2, 2]);
  });

  it("rejects a folder without accepted shards", async () => {
    await expect(exportRun(dir, { format: "alpaca", out: join(dir, "none.jsonl") })).rejects.toThrow(/no accepted shards/);
  });
});

describe("convertRow", () => {
  it("trains on a worked solution rather than the bare reference answer", () => {
    const math = { question: "What is 6 x 7?", answer: "42", solution: "6 x 7 = 42\n#### 42", extracted: "42" };
    expect(convertRow("alpaca", math)).toEqual({ instruction: "What is 6 x 7?", input: "", output: "6 x 7 = 42\n#### 42" });
    const code = { prompt: "def f():\n", solution: "def f():\n    return 1", test: "..." };
    expect(convertRow("openai-messages", code)).toEqual({
      messages: [
        { role: "user", content: "def f():\n" },
        { role: "assistant", content: "def f():\n    return 1" },
      ],
    });
  });

  it("puts a system instruction first in conversations", () => {
    expect(convertRow("sharegpt", { system: "Think step by step.", instruction: "Why?", input: "", output: "Because." })).toEqual({
      conversations: [
        { from: "system", value: "Think step by step." },
        { from: "human", value: "Why?" },
        { from: "gpt", value: "Because." },
      ],
    });
  });

  it("says which message is malformed", () => {
    expect(convertRow("sharegpt", { messages: [{ role: "user", content: "hi" }, { role: "tool", content: "x" }] })).toEqual({
      missing: "messages",
      message: 'messages[1] has role "tool"',
    });
    expect(convertRow("openai-messages", { messages: [{ role: "user", content: "hi" }] })).toMatchObject({ message: "messages has no assistant turn" });
  });
});

describe("rxsynth export", () => {
  it("writes <dir>/<format>.jsonl by default and reports skipped rows on stderr", async () => {
    const program = new Command().exitOverride();
    registerExportCommand(program);
    const lines: string[] = [];
    const original = console.error;
    console.error = (line: string) => lines.push(line);
    try {
      await program.parseAsync(["node", "rxsynth", "export", runDir, "--format", "sharegpt"]);
    } finally {
      console.error = original;
    }
    const out = join(runDir, "sharegpt.jsonl");
    expect(existsSync(out)).toBe(true);
    expect(readJsonl(await readFile(out, "utf8"))).toHaveLength(6);
    expect(lines[0]).toBe(`exported 6 rows from 3 shard(s) as sharegpt to ${out}`);
    expect(lines[1]).toMatch(/^skipped 1 rows/);
  });

  it("refuses an unknown format", async () => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
    registerExportCommand(program);
    await expect(program.parseAsync(["node", "rxsynth", "export", runDir, "--format", "csv"])).rejects.toThrow(/Allowed choices are alpaca, sharegpt, openai-messages, dpo/);
  });
});
