import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EndpointError, LlmError } from "../../src/errors.ts";
import { readJournal } from "../../src/llm/batch/index.ts";
import { createBatchLlm, type BatchLlm, type BatchLlmOptions } from "../../src/llm/batch/index.ts";
import { createLlm, type ChatRequest, type ChatResult, type Llm } from "../../src/llm/index.ts";
import { startSimulator, type Simulator, type SimulatorOptions } from "../../src/sim/index.ts";

// Batch mode against the simulator's Batch API over HTTP: what online calls answer, at half the price;
// requests that failed or expired go again in new batches (and only they), answers already collected
// are kept; a request that never gets an answer fails, as the sample's (llm_error) or, when nothing is
// answered, as the endpoint's (the run stops and resumes).

const MODEL = "gpt-4o-mini";
let dir: string;
let sim: Simulator | undefined;
const clients: Llm[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "rxsynth-batch-"));
});
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  await sim?.close();
  sim = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function simulator(options: SimulatorOptions = {}): Promise<Simulator> {
  sim = await startSimulator({ port: 0, seed: 3, latencyMs: 0, batchCompletionMs: 40, ...options });
  return sim;
}

function batchLlm(url: string, options: Partial<BatchLlmOptions> = {}): BatchLlm {
  const llm = createBatchLlm({ model: MODEL, baseURL: url, stateDir: join(dir, "state"), cache: false, lingerMs: 20, pollMs: 20, seed: 1, ...options });
  clients.push(llm);
  return llm;
}

const requests = (count: number, from = 0): ChatRequest[] =>
  Array.from({ length: count }, (_, i) => ({ messages: [{ role: "user", content: `Write a sentence about topic ${from + i}.` }], max_tokens: 64, temperature: 0.7 }));

const texts = (results: readonly ChatResult[]) => results.map((result) => result.choices.map((choice) => choice.text));

describe("batch mode", () => {
  it("answers what the online client answers, in batches of the configured size", async () => {
    const s = await simulator();
    const online = createLlm({ model: MODEL, baseURL: s.url, cache: false, seed: 1, concurrency: 8 });
    clients.push(online);
    const asked = requests(25);
    const expected = await Promise.all(asked.map((request) => online.chat(request)));
    const llm = batchLlm(s.url, { maxBatchRequests: 10 });
    const got = await Promise.all(asked.map((request) => llm.chat(request)));
    expect(texts(got)).toEqual(texts(expected));
    expect(s.stats().batchesCreated).toBe(3);
    expect(llm.board.figures()).toMatchObject({ submitted: 3, completed: 3, inProgress: 0, requestsDone: 25, requestsTotal: 25 });
  });

  it("n > 1 comes back as n choices, each cached for the online client", async () => {
    const s = await simulator();
    const cache = join(dir, "cache");
    const llm = batchLlm(s.url, { cache });
    const request: ChatRequest = { ...requests(1)[0]!, n: 3 };
    const batched = await llm.chat(request);
    expect(batched.choices).toHaveLength(3);
    await llm.close();
    const online = createLlm({ model: MODEL, baseURL: s.url, cache, seed: 1 });
    clients.push(online);
    const again = await online.chat(request);
    expect(again.cached).toBe(true);
    expect(again.choices.map((choice) => choice.text)).toEqual(batched.choices.map((choice) => choice.text));
    expect(s.stats().requests).toBe(0);
  });

  it("costs half of what the same job costs online", async () => {
    const s = await simulator();
    const online = createLlm({ model: MODEL, baseURL: s.url, cache: false, seed: 1, concurrency: 8 });
    clients.push(online);
    const asked = requests(40);
    const onlineResults = await Promise.all(asked.map((request) => online.chat(request)));
    const llm = batchLlm(s.url);
    const batchResults = await Promise.all(asked.map((request) => llm.chat(request)));
    const sum = (results: readonly ChatResult[]) => results.reduce((total, result) => total + result.costUsd, 0);
    expect(online.stats().costUsd).toBeGreaterThan(0);
    expect(llm.stats().costUsd / online.stats().costUsd).toBeCloseTo(0.5, 10);
    expect(sum(batchResults) / sum(onlineResults)).toBeCloseTo(0.5, 10);
  });

  it("resends only the requests that failed, and keeps the ones answered", async () => {
    const s = await simulator({ batchFailureRate: 0.3 });
    const llm = batchLlm(s.url, { maxResubmits: 10 });
    const got = await Promise.all(requests(60).map((request) => llm.chat(request)));
    expect(got.every((result) => result.choices[0]!.text.length > 0)).toBe(true);
    const stats = s.stats();
    expect(stats.batchesCreated).toBeGreaterThan(1);
    // Every request sent once, plus once more for each time it failed: nothing answered went again.
    expect(stats.batchRequests).toBe(60 + stats.batchFailed);
    expect(stats.batchCompleted).toBe(60);
    const journal = readJournal(join(dir, "state", "batches.jsonl"));
    const resent = journal.flatMap((record) => (record.type === "done" ? record.retry : []));
    expect(resent.length).toBe(stats.batchFailed);
  });

  it("a request that fails in every batch is the sample's llm_error when others are answered", async () => {
    const s = await simulator({ batchFailureRate: 0.5 });
    const llm = batchLlm(s.url, { maxResubmits: 1 });
    const settled = await Promise.allSettled(requests(40).map((request) => llm.chat(request)));
    const failed = settled.filter((outcome) => outcome.status === "rejected").map((outcome) => (outcome as PromiseRejectedResult).reason);
    expect(failed.length).toBeGreaterThan(0);
    for (const error of failed) {
      expect(error).toBeInstanceOf(LlmError);
      expect(error).not.toBeInstanceOf(EndpointError);
      expect((error as LlmError).reason).toBe("llm_error");
    }
    // Two batches each at most: the first and one resend.
    expect(s.stats().batchRequests).toBeLessThanOrEqual(80);
  });

  it("a batch that answers nothing, time after time, is the endpoint's failure (EndpointError), not the samples'", async () => {
    const s = await simulator({ batchCompletionMs: 400, batchExpireMs: 1 });
    const llm = batchLlm(s.url, { maxResubmits: 1 });
    const settled = await Promise.allSettled(requests(5).map((request) => llm.chat(request)));
    for (const outcome of settled) {
      expect(outcome.status).toBe("rejected");
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(EndpointError);
    }
    expect(s.stats().batchRequests).toBe(10);
    expect(llm.board.figures()).toMatchObject({ submitted: 2, expired: 2, requestsDone: 0, requestsTotal: 10 });
  });

  it("keeps the tokens of batches not yet ended within maxEnqueuedTokens", async () => {
    const s = await simulator({ batchCompletionMs: 60 });
    const limit = 800;
    const llm = batchLlm(s.url, { maxBatchRequests: 4, maxEnqueuedTokens: limit });
    const got = await Promise.all(requests(24).map((request) => llm.chat(request)));
    expect(got).toHaveLength(24);
    // Replayed in the journal's order: an intent adds its tokens, its batch's end takes them off.
    const open = new Map<string, number>();
    let peak = 0;
    for (const record of readJournal(join(dir, "state", "batches.jsonl"))) {
      if (record.type === "intent") open.set(record.key, record.lines.reduce((sum, line) => sum + line.tokens, 0));
      if (record.type === "done") open.delete(record.key);
      peak = Math.max(peak, [...open.values()].reduce((a, b) => a + b, 0));
    }
    expect(peak).toBeLessThanOrEqual(limit);
    expect(peak).toBeGreaterThan(limit / 2);
    expect(s.stats().batchesCreated).toBeGreaterThanOrEqual(6);
  });

  it("expired batches: what ran is kept, the rest goes again", async () => {
    const s = await simulator({ batchCompletionMs: 400, batchExpireMs: 200 });
    const llm = batchLlm(s.url, { maxResubmits: 2 });
    const settled = await Promise.allSettled(requests(20).map((request) => llm.chat(request)));
    const stats = s.stats();
    expect(llm.board.figures().expired).toBeGreaterThan(0);
    const answered = settled.filter((outcome) => outcome.status === "fulfilled").length;
    expect(answered).toBe(stats.batchCompleted);
    for (const outcome of settled) {
      if (outcome.status === "rejected") expect(outcome.reason).toBeInstanceOf(LlmError);
    }
  });
});
