import OpenAI, { toFile } from "openai";
import type { Batch } from "openai/resources/batches";
import { afterAll, describe, expect, it } from "vitest";
import { startSimulator, type Simulator, type SimulatorOptions } from "../../src/sim/index.ts";

const sims: Simulator[] = [];
async function sim(options: SimulatorOptions = {}): Promise<Simulator> {
  const started = await startSimulator(options);
  sims.push(started);
  return started;
}
afterAll(async () => {
  await Promise.all(sims.map((s) => s.close()));
});
function client(s: Simulator): OpenAI {
  return new OpenAI({ baseURL: s.url, apiKey: "sk-test", maxRetries: 0 });
}
async function stats(s: Simulator): Promise<Record<string, number>> {
  return (await (await fetch(s.url.replace(/\/v1$/, "/stats"))).json()) as Record<string, number>;
}

interface Line {
  custom_id: string;
  method: string;
  url: string;
  body: Record<string, unknown>;
}
const request = (i: number, extra: Record<string, unknown> = {}): Line => ({
  custom_id: `req-${i}`,
  method: "POST",
  url: "/v1/chat/completions",
  body: { model: "sim-1", messages: [{ role: "user", content: `Write one sentence about topic number ${i}.` }], max_tokens: 60, ...extra },
});
const jsonl = (lines: readonly unknown[]) => lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n";

async function upload(openai: OpenAI, lines: readonly unknown[]) {
  return openai.files.create({ file: await toFile(Buffer.from(jsonl(lines)), "input.jsonl"), purpose: "batch" });
}
const TERMINAL = ["completed", "failed", "expired", "cancelled"];
async function settle(openai: OpenAI, id: string): Promise<Batch> {
  for (;;) {
    const batch = await openai.batches.retrieve(id);
    if (TERMINAL.includes(batch.status)) return batch;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
async function lines(openai: OpenAI, fileId: string | null | undefined): Promise<any[]> {
  if (!fileId) return [];
  const text = await (await openai.files.content(fileId)).text();
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}
/** The parts of a chat completion the request decides (its id is per request, its time per answer). */
const answer = (completion: any) => ({ model: completion.model, choices: completion.choices, usage: completion.usage });

describe("simulator batch API", () => {
  it("runs a batch the openai client uploads, creates and reads, with the online answers", async () => {
    const s = await sim({ batchCompletionMs: 100, seed: 3 });
    const openai = client(s);
    const input = Array.from({ length: 6 }, (_, i) => request(i));
    const file = await upload(openai, input);
    expect(file).toMatchObject({ object: "file", purpose: "batch", filename: "input.jsonl", status: "processed", bytes: Buffer.byteLength(jsonl(input)) });
    expect(file.id).toMatch(/^file-/);
    expect(await (await openai.files.content(file.id)).text()).toBe(jsonl(input));

    const created = await openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { run: "r1" } });
    expect(created).toMatchObject({ object: "batch", status: "validating", input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { run: "r1" } });
    expect(created.id).toMatch(/^batch_/);
    expect(created.expires_at).toBe(created.created_at + 24 * 3_600);

    const done = await settle(openai, created.id);
    expect(done.status).toBe("completed");
    expect(done.request_counts).toEqual({ total: 6, completed: 6, failed: 0 });
    expect(done.error_file_id).toBeNull();
    expect(done.completed_at).toBeGreaterThanOrEqual(done.created_at);
    const output = await lines(openai, done.output_file_id);
    expect(output.map((l) => l.custom_id)).toEqual(input.map((l) => l.custom_id));
    for (const [i, line] of output.entries()) {
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.error).toBeNull();
      expect(line.response.status_code).toBe(200);
      expect(line.response.request_id).toMatch(/^req_/);
      expect(line.response.body.object).toBe("chat.completion");
      const online = await openai.chat.completions.create(input[i]!.body as never);
      expect(answer(line.response.body)).toEqual(answer(online));
    }
    const usage = output.reduce((sum, l) => sum + l.response.body.usage.total_tokens, 0);
    expect(done.usage?.total_tokens).toBe(usage);
    const counted = await stats(s);
    expect(counted).toMatchObject({ batchesCreated: 1, batchRequests: 6, batchCompleted: 6, batchFailed: 0, filesUploaded: 1, requests: 6 });
  });
});
