import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EndpointError, LlmError } from "../../src/errors.ts";
import { countMessageTokens, countTokens, createLlm } from "../../src/llm/index.ts";
import { useSimulators } from "../support/llm-fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "rxsynth-llm-"));
const { sim, llm } = useSimulators();
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const user = (content: string) => [{ role: "user" as const, content }];

describe("createLlm", () => {
  it("retries 5xx answers and dropped connections until they succeed, counting every retry", async () => {
    const flaky = await sim({ faults: { "500": 0.25, "503": 0.1, reset: 0.15 }, seed: 3 });
    const client = llm(flaky, { maxRetries: 10 });
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => client.chat({ messages: user(`flaky ${i}`), stream: i % 3 === 0 })));
    const stats = client.stats();
    const served = flaky.stats();
    expect(results.every((r) => r.choices[0]!.text.length > 0)).toBe(true);
    expect(served.errors5xx + served.resets).toBeGreaterThan(5);
    expect(stats.retries).toBe(served.errors5xx + served.resets);
    expect(stats.requests).toBe(30 + stats.retries);
    expect(results.reduce((sum, r) => sum + r.attempts, 0)).toBe(stats.requests);
    expect(stats.failures).toBe(0);
  });

  it("honours Retry-After: a 429 is retried no sooner than the server asked", async () => {
    // Capacity of one request, refilled every 200 ms: the second of two simultaneous calls gets a 429.
    const limited = await sim({ rpm: 300, burstMs: 200 });
    const client = llm(limited);
    const started = performance.now();
    const [a, b] = await Promise.all([client.chat({ messages: user("first") }), client.chat({ messages: user("second") })]);
    const elapsed = performance.now() - started;
    expect(limited.stats().rateLimited).toBe(1);
    expect(client.stats()).toMatchObject({ rateLimited: 1, retries: 1, requests: 3 });
    expect(Math.max(a.attempts, b.attempts)).toBe(2);
    expect(elapsed).toBeGreaterThanOrEqual(195);
    expect(elapsed).toBeLessThan(2_000);
  });

  it("honours an injected 429's Retry-After of a full second", async () => {
    const throttled = await sim({ faults: { "429": 0.5 }, faultRetryAfterMs: 1_000, seed: 2 });
    const client = llm(throttled, { maxRetries: 3 });
    const waits: number[] = [];
    const started = performance.now();
    // Retry notices only: a Retry-After beyond the longest backoff also says once that every request pauses.
    await client.chat({ messages: user("throttled") }, { log: (line) => /; retry \d/.test(line) && waits.push(Number(/in (\d+) ms/.exec(line)?.[1])) });
    const elapsed = performance.now() - started;
    // With seed 2 the first attempt draws the 429 and the second succeeds.
    expect(waits).toEqual([1_000]);
    expect(elapsed).toBeGreaterThanOrEqual(1_000 * waits.length - 5);
  });

  it("says each retry once: to the call's log when it has one, else to the client's", async () => {
    const throttled = await sim({ faults: { "429": 0.4 }, faultRetryAfterMs: 1, seed: 5 });
    const clientLines: string[] = [];
    const callLines: string[] = [];
    const client = llm(throttled, { maxRetries: 20, log: (line) => clientLines.push(line) });
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.chat({ messages: user(`own log ${i}`) }, { log: (line) => callLines.push(line) })));
    const ownRetries = client.stats().retries;
    expect(ownRetries).toBeGreaterThan(0);
    expect(callLines).toHaveLength(ownRetries);
    expect(clientLines).toHaveLength(0);
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.chat({ messages: user(`client log ${i}`) })));
    expect(clientLines).toHaveLength(client.stats().retries - ownRetries);
    expect(callLines).toHaveLength(ownRetries);
  });

  it("fails at once on 4xx with a clear LlmError that names status, attempt and request id", async () => {
    const strict = await sim({});
    const client = llm(strict, { maxRetries: 5 });
    const error = await client.chat({ messages: user("hot"), temperature: 9 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmError);
    const llmError = error as LlmError;
    expect(llmError.status).toBe(400);
    expect(llmError.attempt).toBe(1);
    expect(llmError.retryable).toBe(false);
    expect(llmError.requestId).toMatch(/^req_/);
    expect(llmError.message).toMatch(/sim-1 at 127\.0\.0\.1:\d+ failed: 400 'temperature' must be a number between 0 and 2\. \(attempt 1, request req_/);
    expect(strict.stats().requests).toBe(1);
    expect(client.stats().failures).toBe(1);
  });

  it("never puts the API key in errors, causes or logs, even when the server echoes it", async () => {
    const key = "sk-proj-TOTALLYSECRET0123456789abcdef";
    const keyed = await sim({ apiKey: "sk-the-right-one", faults: { "500": 0.5 }, seed: 2 });
    const logs: string[] = [];
    const client = llm(keyed, { apiKey: key, log: (line) => logs.push(line) });
    const error = (await client.chat({ messages: user(`please use ${key}`) }).catch((e: unknown) => e)) as LlmError;
    expect(error).toBeInstanceOf(LlmError);
    expect(error.status).toBe(401);
    expect(error.message).toContain("Incorrect API key provided");
    const everything = [error.message, String(error.stack), JSON.stringify(error), String((error.cause as Error).message), String((error.cause as Error).stack), ...logs].join("\n");
    expect(everything).not.toContain(key);
    expect(everything).not.toContain("TOTALLYSECRET");

    const good = llm(keyed, { apiKey: "sk-the-right-one", log: (line) => logs.push(line), maxRetries: 8 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => good.chat({ messages: user(`retry me ${i}`) })));
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.join("\n")).not.toContain("sk-the-right-one");
  });

  it("gives up after a timeout per attempt and retries it; with nothing answered, that is the endpoint's failure", async () => {
    const slow = await sim({ latencyMs: 300 });
    const client = llm(slow, { timeoutMs: 40, maxRetries: 1, outageSeconds: 0 });
    const error = (await client.chat({ messages: user("slow") }).catch((e: unknown) => e)) as LlmError;
    expect(error).toBeInstanceOf(EndpointError);
    expect(error.message).toContain("no complete answer within 40 ms");
    expect(error.attempt).toBe(2);
    expect(client.stats()).toMatchObject({ requests: 2, retries: 1, failures: 1 });
  });

  it("streams the same answer it would return whole, reporting each delta as it arrives", async () => {
    const streaming = await sim({ tokensPerS: 20_000 });
    const client = llm(streaming);
    const messages = user("Stream a story about a lighthouse.");
    const whole = await client.chat({ messages, n: 2 });
    const deltas: Array<[number, string]> = [];
    const streamed = await client.chat({ messages, n: 2, stream: true }, { onDelta: (i, text) => deltas.push([i, text]) });
    expect(streamed.choices.map((c) => c.text)).toEqual(whole.choices.map((c) => c.text));
    expect(streamed.usage).toEqual(whole.usage);
    expect(deltas.length).toBeGreaterThan(20);
    expect(deltas.filter(([i]) => i === 1).map(([, t]) => t).join("")).toBe(whole.choices[1]!.text);
    expect(streaming.stats().streamed).toBe(1);
  });

  it("counts tokens as the server bills them, <|endoftext|> and other special-token text included", async () => {
    const plain = await sim({});
    const client = llm(plain, { prices: { "sim-1": { input: 2, output: 8 } } });
    const messages = [
      { role: "system" as const, content: "Repeat after me: <|endoftext|><|fim_prefix|><|im_start|>" },
      { role: "user" as const, content: "<|endoftext|> is a special token, but here it is only text.", name: "alice" },
    ];
    expect(countTokens("<|endoftext|>")).toBeGreaterThan(1);
    const result = await client.chat({ messages });
    expect(result.usage.promptTokens).toBe(countMessageTokens(messages, "sim-1"));
    expect(plain.stats().promptTokens).toBe(result.usage.promptTokens);
    expect(result.usage.completionTokens).toBe(countTokens(result.choices[0]!.text, "sim-1"));
    expect(result.costUsd).toBeCloseTo((result.usage.promptTokens * 2 + result.usage.completionTokens * 8) / 1e6, 12);
    expect(client.stats()).toMatchObject({ promptTokens: result.usage.promptTokens, completionTokens: result.usage.completionTokens });
  });

  it("answers a repeated call from the persistent cache, across client instances, without sending anything", async () => {
    const cached = await sim({});
    const path = join(dir, "cache-a");
    const first = llm(cached, { cache: path });
    const request = { messages: user("cache me"), n: 3, temperature: 0.9, max_tokens: 30 };
    const original = await first.chat(request);
    expect(original.cached).toBe(false);
    const again = await first.chat(request);
    expect(again.cached).toBe(true);
    expect(again.choices.map((c) => c.text)).toEqual(original.choices.map((c) => c.text));
    await first.close();
    const second = llm(cached, { cache: path });
    const reopened = await second.chat(request);
    const fewer = await second.chat({ ...request, n: 2 });
    expect(reopened.cached && fewer.cached).toBe(true);
    expect(reopened.choices.map((c) => c.finishReason)).toEqual(original.choices.map((c) => c.finishReason));
    expect(reopened.usage).toEqual(original.usage);
    expect(cached.stats().requests).toBe(1);
    expect(second.stats()).toMatchObject({ requests: 0, cacheHits: 2 });
    const other = await second.chat(request, { cacheIndex: "retry:1" });
    expect(other.cached).toBe(false);
    expect(cached.stats().requests).toBe(2);
  });

  it("coalesces identical calls in flight into one request", async () => {
    const slow = await sim({ latencyMs: 50 });
    const client = llm(slow, { cache: join(dir, "cache-b") });
    const results = await Promise.all(Array.from({ length: 5 }, () => client.chat({ messages: user("together") })));
    expect(new Set(results.map((r) => r.choices[0]!.text)).size).toBe(1);
    expect(slow.stats().requests).toBe(1);
    expect(client.stats()).toMatchObject({ requests: 1, coalesced: 4 });
  });

  it("paces requests under a configured RPM limit without a single 429", async () => {
    const limited = await sim({ rpm: 6_000 });
    const client = llm(limited, { rpm: 6_000, concurrency: 64 });
    const started = performance.now();
    await Promise.all(Array.from({ length: 100 }, (_, i) => client.chat({ messages: user(`paced ${i}`) })));
    const elapsed = performance.now() - started;
    expect(limited.stats().rateLimited).toBe(0);
    expect(limited.stats().completed).toBe(100);
    // 50 fit the client's half-second burst; the other 50 go out at 100/s.
    expect(elapsed).toBeGreaterThanOrEqual(480);
  });

  it("learns RPM and TPM limits from x-ratelimit headers when none are configured", async () => {
    const limited = await sim({ rpm: 6_000, tpm: 90_000 });
    const client = llm(limited);
    expect(client.limits()).toMatchObject({ rpm: undefined, tpm: undefined });
    await client.chat({ messages: user("learn"), max_tokens: 20 });
    expect(client.limits()).toMatchObject({ rpm: 6_000, tpm: 90_000 });
    await Promise.all(Array.from({ length: 40 }, (_, i) => client.chat({ messages: user(`after ${i}`), max_tokens: 20 })));
    expect(limited.stats().rateLimited).toBe(0);
  });

  it("halves its concurrency on 429s from an overloaded server and recovers on success", async () => {
    const small = await sim({ latencyMs: 20, maxConcurrency: 4, maxQueue: 0 });
    const client = llm(small, { concurrency: 32, maxRetries: 20 });
    await Promise.all(Array.from({ length: 64 }, (_, i) => client.chat({ messages: user(`crowd ${i}`) })));
    expect(small.stats().rateLimited).toBeGreaterThan(0);
    expect(client.limits().concurrency).toBeLessThan(32);
    expect(small.stats().completed).toBe(64);
  });

  it("works the same over the global fetch transport: resets retried, slow attempts timed out", async () => {
    const flaky = await sim({ faults: { reset: 0.3 }, seed: 4 });
    const client = llm(flaky, { transport: "fetch", maxRetries: 8 });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => client.chat({ messages: user(`fetch ${i}`) })));
    expect(results.every((r) => r.choices[0]!.text.length > 0)).toBe(true);
    expect(client.stats().retries).toBe(flaky.stats().resets);
    expect(flaky.stats().resets).toBeGreaterThan(0);

    const slow = await sim({ latencyMs: 300 });
    const timed = llm(slow, { transport: "fetch", timeoutMs: 40, maxRetries: 0, outageSeconds: 0 });
    const error = (await timed.chat({ messages: user("slow") }).catch((e: unknown) => e)) as LlmError;
    expect(error.message).toContain("no complete answer within 40 ms");
  });

  it("stops at once when the caller aborts, passing the abort on instead of failing the endpoint", async () => {
    const slow = await sim({ latencyMs: 500 });
    const client = llm(slow);
    const controller = new AbortController();
    const started = performance.now();
    const pending = client.chat({ messages: user("abandoned") }, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("run stopping")), 30);
    await expect(pending).rejects.toThrow("run stopping");
    expect(performance.now() - started).toBeLessThan(300);
    expect(client.stats()).toMatchObject({ requests: 1, retries: 0, failures: 0 });
  });
});
