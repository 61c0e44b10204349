import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BatchJournal, readJournal, replayJournal, type JournalRecord } from "../../src/llm/batch/journal.ts";
import { readLine, readOutcomes } from "../../src/llm/batch/lines.ts";
import { batchOrOnline, openBatches } from "../../src/llm/batch/mode.ts";
import { batchLine } from "../../src/llm/batch/board.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "rxsynth-batch-journal-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const line = (id: string) => ({ id, keys: [`k-${id}`], tokens: 10 });
const records: JournalRecord[] = [
  { type: "intent", key: "a", at: 1, lines: [line("x"), line("y")] },
  { type: "file", key: "a", fileId: "file-a" },
  { type: "batch", key: "a", batchId: "batch_a" },
  { type: "done", key: "a", status: "expired", answered: 1, retry: ["y"], refused: 0 },
  { type: "intent", key: "b", at: 2, lines: [line("y")] },
  { type: "file", key: "b", fileId: "file-b" },
  { type: "intent", key: "c", at: 3, lines: [line("z")] },
  { type: "batch", key: "c", batchId: "batch_c" },
];

describe("the batch journal", () => {
  it("replays to the state of each intent and the batches each request went through unanswered", () => {
    const state = replayJournal(records);
    expect([...state.intents.values()].map((intent) => [intent.key, intent.state, intent.fileId, intent.batchId])).toEqual([
      ["a", "done", "file-a", "batch_a"],
      ["b", "open", "file-b", undefined],
      ["c", "open", undefined, "batch_c"],
    ]);
    expect([...state.attempts]).toEqual([["y", 1]]);
  });

  it("cuts a last line torn by a crash, so the next record starts its own line", async () => {
    const path = join(dir, "state", "batches.jsonl");
    mkdirSync(join(dir, "state"));
    writeFileSync(path, records.slice(0, 2).map((record) => `${JSON.stringify(record)}\n`).join(""));
    appendFileSync(path, '{"type":"batch","key":"a","bat');
    expect(readJournal(path)).toHaveLength(2);
    const journal = new BatchJournal(path);
    await journal.append(records[2]!);
    await journal.close();
    expect(readJournal(path)).toEqual(records.slice(0, 3));
    expect(readFileSync(path, "utf8").endsWith("}\n")).toBe(true);
  });

  it("refuses a journal edited in the middle, naming the line", () => {
    const path = join(dir, "batches.jsonl");
    writeFileSync(path, `${JSON.stringify(records[0])}\nnot json\n${JSON.stringify(records[1])}\n`);
    expect(() => readJournal(path)).toThrow(/batches\.jsonl, line 2: not a batch journal record/);
  });

  it("a folder resumed online says which batches are still open", () => {
    const out = join(dir, "run");
    mkdirSync(join(out, "state"), { recursive: true });
    writeFileSync(join(out, "state", "batches.jsonl"), records.map((record) => `${JSON.stringify(record)}\n`).join(""));
    expect(openBatches(out)).toBe(1);
    const logs: string[] = [];
    batchOrOnline({ out, log: (message) => logs.push(message) });
    expect(logs).toEqual(["1 batch this folder submitted in batch mode is still open: resume with --batch to collect it (paid for); meanwhile its requests are sent online"]);
  });
});

describe("batch output and error lines", () => {
  it("reads answers, the request's own refusals, and what is to be resent", () => {
    const answer = { id: "r1", custom_id: "a", response: { status_code: 200, request_id: "req_1", body: { choices: [{ index: 0, message: { content: "hi" }, finish_reason: "stop" }] } }, error: null };
    const refused = { id: "r2", custom_id: "b", response: { status_code: 400, request_id: "req_2", body: { error: { message: "bad max_tokens", code: "invalid_value" } } }, error: null };
    const server = { id: "r3", custom_id: "c", response: { status_code: 500, body: { error: { message: "oops" } } }, error: null };
    const expired = { id: "r4", custom_id: "d", response: null, error: { code: "batch_expired", message: "This request could not be executed before the completion window expired." } };
    expect(readLine(JSON.stringify(answer))).toMatchObject({ kind: "answer", customId: "a", requestId: "req_1" });
    expect(readLine(JSON.stringify(refused))).toEqual({ kind: "refused", customId: "b", status: 400, code: "invalid_value", message: "bad max_tokens" });
    expect(readLine(JSON.stringify(server))).toMatchObject({ kind: "retry", customId: "c", status: 500 });
    expect(readLine(JSON.stringify(expired))).toMatchObject({ kind: "retry", customId: "d", code: "batch_expired" });
    expect(readLine("{not json")).toBeUndefined();
    // An id in both files keeps its answer.
    const both = readOutcomes(JSON.stringify(answer), JSON.stringify({ ...expired, custom_id: "a" }));
    expect(both.get("a")?.kind).toBe("answer");
  });

  it("the progress line", () => {
    expect(batchLine({ submitted: 3, inProgress: 1, completed: 2, expired: 0, failed: 0, requestsDone: 2000, requestsTotal: 3000 })).toBe(
      "batches: 3 submitted, 1 in progress, 2 completed, 0 expired; requests 2,000/3,000",
    );
  });
});
