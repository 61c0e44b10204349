import { spawn } from "node:child_process";
import { once } from "node:events";
import fc from "fast-check";
import OpenAI, { APIError, toFile } from "openai";
import type { Batch } from "openai/resources/batches";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.ts";
import { SIM_REFUSAL, startSimulator, type Simulator, type SimulatorOptions } from "../../src/sim/index.ts";

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
    const schema = { type: "object", properties: { title: { type: "string" }, year: { type: "integer" } }, required: ["title", "year"], additionalProperties: false };
    const input = [
      ...Array.from({ length: 4 }, (_, i) => request(i)),
      request(4, { n: 3, temperature: 1 }),
      request(5, { response_format: { type: "json_schema", json_schema: { name: "book", strict: true, schema } } }),
    ];
    const file = await upload(openai, input);
    expect(file).toMatchObject({ object: "file", purpose: "batch", filename: "input.jsonl", status: "processed", bytes: Buffer.byteLength(jsonl(input)) });
    expect(file.id).toMatch(/^file-/);
    expect(await (await openai.files.content(file.id)).text()).toBe(jsonl(input));

    const { data: created, request_id } = await openai.batches
      .create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { run: "r1" } })
      .withResponse();
    expect(request_id).toMatch(/^req_/);
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
    expect(output[4].response.body.choices).toHaveLength(3);
    expect(JSON.parse(output[5].response.body.choices[0].message.content)).toEqual({ title: expect.any(String), year: expect.any(Number) });
    const usage = output.reduce((sum, l) => sum + l.response.body.usage.total_tokens, 0);
    expect(done.usage?.total_tokens).toBe(usage);
    const counted = await stats(s);
    expect(counted).toMatchObject({ batchesCreated: 1, batchRequests: 6, batchCompleted: 6, batchFailed: 0, filesUploaded: 1, requests: 6 });
  });

  it("sends injected failures and requests the endpoint refuses to the error file, the rest to the output, each custom_id once", async () => {
    const options = { batchCompletionMs: 20, batchFailureRate: 0.3, seed: 11, faults: { refusal: 0.3, length: 0.2 } };
    const run = async () => {
      const s = await sim(options);
      const openai = client(s);
      const input: unknown[] = Array.from({ length: 40 }, (_, i) => request(i));
      input.push({ custom_id: "no-messages", method: "POST", url: "/v1/chat/completions", body: { model: "sim-1" } });
      const file = await upload(openai, input);
      const batch = await settle(openai, (await openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" })).id);
      return { s, openai, batch, output: await lines(openai, batch.output_file_id), errors: await lines(openai, batch.error_file_id) };
    };
    const { s, openai, batch, output, errors } = await run();
    expect(batch.status).toBe("completed");
    expect(batch.request_counts).toEqual({ total: 41, completed: output.length, failed: errors.length });
    expect(errors.length).toBeGreaterThan(5);
    expect(output.length).toBeGreaterThan(15);
    expect([...output, ...errors].map((l) => l.custom_id).sort()).toEqual([...Array.from({ length: 40 }, (_, i) => `req-${i}`), "no-messages"].sort());
    for (const line of errors) {
      // OpenAI writes an HTTP error as the response it got, with `error` null.
      expect(line.error).toBeNull();
      expect(line.response.status_code).toBe(line.custom_id === "no-messages" ? 400 : 500);
      expect(line.response.body.error.message).toEqual(expect.any(String));
    }
    const refused = (await openai.chat.completions.create({ model: "sim-1" } as never).catch((e: unknown) => e)) as APIError;
    expect(refused.status).toBe(400);
    expect(errors.find((l) => l.custom_id === "no-messages").response.body).toEqual({ error: refused.error });
    // Content faults are part of the answer: the batch gets the refusals and cut answers the online endpoint gives.
    const body = (id: string) => request(Number(id.slice(4))).body as never;
    for (const line of output) expect(answer(line.response.body)).toEqual(answer(await openai.chat.completions.create(body(line.custom_id))));
    expect(output.some((l) => l.response.body.choices[0].message.content === SIM_REFUSAL)).toBe(true);
    expect(output.some((l) => l.response.body.choices[0].finish_reason === "length")).toBe(true);
    const counted = await stats(s);
    expect(counted).toMatchObject({ batchRequests: 41, batchCompleted: output.length, batchFailed: errors.length });
    expect(counted.batchPromptTokens).toBe(output.reduce((sum, l) => sum + l.response.body.usage.prompt_tokens, 0));
    // Same seed, same server history: the same requests fail.
    const again = await run();
    expect(again.errors.map((l) => l.custom_id)).toEqual(errors.map((l) => l.custom_id));
  });

  it("expires a batch not done in time: the part run by then is in the output, the rest in the error file as batch_expired", async () => {
    const s = await sim({ batchCompletionMs: 1_000, batchExpireMs: 500 });
    const openai = client(s);
    const input = Array.from({ length: 10 }, (_, i) => request(i));
    const created = await openai.batches.create({ input_file_id: (await upload(openai, input)).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect(created.expires_at! - created.created_at).toBeLessThanOrEqual(1);
    const batch = await settle(openai, created.id);
    expect(batch.status).toBe("expired");
    expect(batch.expired_at).toEqual(expect.any(Number));
    expect(batch.in_progress_at).toEqual(expect.any(Number));
    expect(batch.completed_at).toBeNull();
    expect(batch.finalizing_at).toBeNull();
    // Requests run front to back over 80 % of the 1000 ms from 100 ms: by 500 ms, the first half.
    expect(batch.request_counts).toEqual({ total: 10, completed: 5, failed: 5 });
    const output = await lines(openai, batch.output_file_id);
    const errors = await lines(openai, batch.error_file_id);
    expect(output.map((l) => l.custom_id)).toEqual(["req-0", "req-1", "req-2", "req-3", "req-4"]);
    expect(errors.map((l) => l.custom_id)).toEqual(["req-5", "req-6", "req-7", "req-8", "req-9"]);
    for (const line of errors) {
      expect(line.response).toBeNull();
      expect(line.error).toEqual({ code: "batch_expired", message: "This request could not be executed before the completion window expired." });
    }
    expect((await stats(s)).batchCompleted).toBe(5);
  });

  it("cancels a running batch: cancelling, then cancelled with the finished part kept", async () => {
    const s = await sim({ batchCompletionMs: 2_000 });
    const openai = client(s);
    const input = Array.from({ length: 20 }, (_, i) => request(i));
    const created = await openai.batches.create({ input_file_id: (await upload(openai, input)).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    let seen = created;
    while (seen.status === "validating" || seen.request_counts!.completed < 3) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      seen = await openai.batches.retrieve(created.id);
    }
    expect(seen.status).toBe("in_progress");
    const cancelling = await openai.batches.cancel(created.id);
    expect(cancelling.status).toBe("cancelling");
    expect(cancelling.cancelling_at).toEqual(expect.any(Number));
    const kept = cancelling.request_counts!.completed;
    expect(kept).toBeGreaterThanOrEqual(3);
    expect(kept).toBeLessThan(20);
    expect((await openai.batches.cancel(created.id)).status).toBe("cancelling");
    const batch = await settle(openai, created.id);
    expect(batch.status).toBe("cancelled");
    expect(batch.cancelled_at).toEqual(expect.any(Number));
    expect(batch.finalizing_at).toBeNull();
    expect(batch.request_counts).toEqual({ total: 20, completed: kept, failed: 20 - kept });
    const output = await lines(openai, batch.output_file_id);
    expect(output.map((l) => l.custom_id)).toEqual(input.slice(0, kept).map((l) => l.custom_id));
    const errors = await lines(openai, batch.error_file_id);
    expect(errors.map((l) => l.custom_id)).toEqual(input.slice(kept).map((l) => l.custom_id));
    expect(errors.every((l) => l.response === null && l.error.code === "batch_cancelled")).toBe(true);
    const again = await openai.batches.cancel(created.id).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(APIError);
    expect((again as APIError).status).toBe(409);
  });

  it("fails a batch whose input does not validate, with OpenAI's codes and line numbers in errors.data", async () => {
    const s = await sim({ batchCompletionMs: 10 });
    const openai = client(s);
    const input = [
      request(0),
      "{not json",
      request(0),
      { ...request(3), url: "/v1/embeddings" },
      { ...request(4), method: "GET" },
      { method: "POST", url: "/v1/chat/completions", body: {} },
      request(6, { model: "sim-2" }),
      { ...request(7), body: "text" },
    ];
    const created = await openai.batches.create({ input_file_id: (await upload(openai, input)).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect(created.status).toBe("validating");
    const batch = await settle(openai, created.id);
    expect(batch.status).toBe("failed");
    expect(batch.failed_at).toEqual(expect.any(Number));
    expect(batch.in_progress_at).toBeNull();
    expect(batch.output_file_id).toBeNull();
    expect(batch.error_file_id).toBeNull();
    expect(batch.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
    expect(batch.errors?.data?.map((e) => [e.line, e.code, e.param])).toEqual([
      [2, "invalid_json_line", null],
      [3, "duplicate_custom_id", "custom_id"],
      [4, "url_mismatch", "url"],
      [5, "invalid_request", "method"],
      [6, "missing_required_parameter", "custom_id"],
      [7, "model_mismatch", "body.model"],
      [8, "missing_required_parameter", "body"],
    ]);
    const empty = await openai.batches.create({ input_file_id: (await upload(openai, [])).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect((await settle(openai, empty.id)).errors?.data).toEqual([{ code: "empty_file", message: "The batch input file is empty.", param: null, line: null }]);
    expect(await stats(s)).toMatchObject({ batchesCreated: 2, batchRequests: 0 });
  });

  it("refuses a batch it cannot create with OpenAI's errors", async () => {
    const s = await sim();
    const openai = client(s);
    const file = await upload(openai, [request(0)]);
    const status = (promise: Promise<unknown>) => promise.then(() => 200, (e: unknown) => [(e as APIError).status, (e as APIError).param]);
    const create = (body: Record<string, unknown>) =>
      status(openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", ...body } as never));
    expect(await create({ input_file_id: "file-missing" })).toEqual([400, "input_file_id"]);
    expect(await create({ endpoint: "/v1/embeddings" })).toEqual([400, "endpoint"]);
    expect(await create({ completion_window: "1h" })).toEqual([400, "completion_window"]);
    expect(await create({ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) })).toEqual([400, "metadata"]);
    expect(await create({ metadata: { k: "v".repeat(513) } })).toEqual([400, "metadata.k"]);
    const other = await openai.files.create({ file: await toFile(Buffer.from("{}\n"), "notes.jsonl"), purpose: "user_data" });
    expect(await create({ input_file_id: other.id })).toEqual([400, "input_file_id"]);
    expect(await status(openai.files.create({ file: await toFile(Buffer.from("x"), "notes.txt"), purpose: "batch" }))).toEqual([400, null]);
    expect(await status(openai.files.create({ file: await toFile(Buffer.from("x"), "a.jsonl"), purpose: "nope" as never }))).toEqual([400, "purpose"]);
    expect(await status(openai.batches.retrieve("batch_missing"))).toEqual([404, "batch_id"]);
    expect(await status(openai.files.retrieve("file-missing"))).toEqual([404, "id"]);
    expect((await stats(s)).batchesCreated).toBe(0);
  });

  it("lists batches newest first with after and limit, so a client that lost an id finds its batch by metadata", async () => {
    const s = await sim({ batchCompletionMs: 0 });
    const openai = client(s);
    const file = await upload(openai, [request(0), request(1)]);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await openai.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h", metadata: { job: `j${i}` } })).id);
    }
    const first = await openai.batches.list({ limit: 2 });
    expect(first.data.map((b) => b.id)).toEqual([ids[4], ids[3]]);
    expect(first.has_more).toBe(true);
    const after = await openai.batches.list({ limit: 2, after: ids[3]! });
    expect(after.data.map((b) => b.id)).toEqual([ids[2], ids[1]]);
    const all: Batch[] = [];
    for await (const batch of openai.batches.list({ limit: 2 })) all.push(batch);
    expect(all.map((b) => b.id)).toEqual([...ids].reverse());
    expect(all.find((b) => b.metadata?.job === "j2")?.id).toBe(ids[2]);
    // Listed batches advance like retrieved ones: with a 0 ms clock they are done.
    expect(all.every((b) => b.status === "completed" && b.request_counts?.completed === 2)).toBe(true);
    expect((await stats(s)).batchesCreated).toBe(5);
  });

  it("completes a batch on the first look after its creation when batchCompletionMs is 0", async () => {
    const s = await sim({ batchCompletionMs: 0 });
    const openai = client(s);
    const created = await openai.batches.create({ input_file_id: (await upload(openai, [request(0)])).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect(created.status).toBe("validating");
    await new Promise((resolve) => setTimeout(resolve, 2));
    const batch = await openai.batches.retrieve(created.id);
    expect(batch).toMatchObject({ status: "completed", request_counts: { total: 1, completed: 1, failed: 0 } });
  });

  it("keeps answering online requests while a large batch runs", async () => {
    const s = await sim({ batchCompletionMs: 0 });
    const openai = client(s);
    const input = Array.from({ length: 3_000 }, (_, i) => request(i));
    const created = await openai.batches.create({ input_file_id: (await upload(openai, input)).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    await new Promise((resolve) => setTimeout(resolve, 2));
    const order: string[] = [];
    const batch = openai.batches.retrieve(created.id).then((b) => (order.push("batch"), b));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await openai.chat.completions.create(request(0).body as never).then(() => order.push("online"));
    expect((await batch).request_counts).toEqual({ total: 3_000, completed: 3_000, failed: 0 });
    expect(order).toEqual(["online", "batch"]);
  });

  it("serves file listing, retrieval and deletion", async () => {
    const s = await sim();
    const openai = client(s);
    const a = await upload(openai, [request(0)]);
    const b = await upload(openai, [request(1)]);
    expect(await openai.files.retrieve(a.id)).toEqual(a);
    expect((await openai.files.list()).data.map((f) => f.id)).toEqual([b.id, a.id]);
    expect(await openai.files.delete(a.id)).toEqual({ id: a.id, object: "file", deleted: true });
    const gone = await openai.files.content(a.id).catch((e: unknown) => e as APIError);
    expect(gone.status).toBe(404);
  });

  it("asks for the key and plays outages on the batch routes as on chat", async () => {
    const s = await sim({ apiKey: "sk-right" });
    const wrong = (await new OpenAI({ baseURL: s.url, apiKey: "sk-wrong", maxRetries: 0 }).batches.list().catch((e: unknown) => e)) as APIError;
    expect(wrong.status).toBe(401);
    const openai = new OpenAI({ baseURL: s.url, apiKey: "sk-right", maxRetries: 0 });
    expect((await openai.batches.list()).data).toEqual([]);
    await s.down();
    expect(((await openai.batches.list().catch((e: unknown) => e)) as APIError).status).toBe(503);
    await s.up();
    expect((await openai.batches.list()).data).toEqual([]);
  });

  it("validates its batch options", async () => {
    await expect(startSimulator({ batchFailureRate: 1.5 })).rejects.toThrow(ConfigError);
    await expect(startSimulator({ batchCompletionMs: -1 })).rejects.toThrow(/batchCompletionMs/);
    await expect(startSimulator({ batchExpireMs: 0 })).rejects.toThrow(/batchExpireMs/);
  });

  it("puts every custom_id in exactly one of the output and error files, whatever the size, failure rate, expiry or cancel", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 50 }), { nil: undefined }),
        fc.integer({ min: 0, max: 1_000 }),
        async (size, failureRate, expireMs, cancelAfterMs, seed) => {
          const s = await startSimulator({ batchCompletionMs: 50, batchFailureRate: failureRate, batchExpireMs: expireMs, seed });
          try {
            const openai = client(s);
            const input = Array.from({ length: size }, (_, i) => request(i));
            const created = await openai.batches.create({ input_file_id: (await upload(openai, input)).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
            if (cancelAfterMs !== undefined) {
              await new Promise((resolve) => setTimeout(resolve, cancelAfterMs));
              await openai.batches.cancel(created.id).catch((e: unknown) => expect((e as APIError).status).toBe(409));
            }
            const batch = await settle(openai, created.id);
            const output = await lines(openai, batch.output_file_id);
            const errors = await lines(openai, batch.error_file_id);
            const ids = [...output, ...errors].map((l) => l.custom_id).sort();
            expect(ids).toEqual(input.map((l) => l.custom_id).sort());
            expect(batch.request_counts).toEqual({ total: size, completed: output.length, failed: errors.length });
            expect(output.every((l) => l.response.status_code === 200)).toBe(true);
            const counted = await stats(s);
            expect(counted.batchCompleted! + counted.batchFailed!).toBe(size);
          } finally {
            await s.close();
          }
        },
      ),
      { numRuns: 30, seed: 1414 },
    );
  });

  it("serves the Batch API from `rxsynth sim` with its batch flags", async () => {
    const child = spawn(process.execPath, ["bin/rxsynth.mjs", "sim", "--port", "0", "--batch-completion-ms", "30", "--batch-failure-rate", "1", "--batch-expire-ms", "60000"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
      while (!/OPENAI_BASE_URL=(\S+)/.test(out)) {
        if (child.exitCode !== null) throw new Error(`rxsynth sim exited: ${out}`);
        await Promise.race([once(child.stdout, "data"), once(child, "exit")]);
      }
      const url = /OPENAI_BASE_URL=(\S+)/.exec(out)![1]!;
      const openai = new OpenAI({ baseURL: url, apiKey: "sk-test", maxRetries: 0 });
      const created = await openai.batches.create({ input_file_id: (await upload(openai, [request(0), request(1)])).id, endpoint: "/v1/chat/completions", completion_window: "24h" });
      expect(created.expires_at! - created.created_at).toBeLessThanOrEqual(61);
      const batch = await settle(openai, created.id);
      expect(batch.request_counts).toEqual({ total: 2, completed: 0, failed: 2 });
      expect(batch.output_file_id).toBeNull();
    } finally {
      child.kill("SIGTERM");
      if (child.exitCode === null) await once(child, "exit");
    }
  });
});
