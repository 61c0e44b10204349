// The client against the simulator's server profiles (src/sim/profiles.ts): what real families do that a
// client written for classic OpenAI chat models gets wrong, each over real HTTP.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { EndpointError, LlmError } from "../../src/errors.ts";
import { builtinCapabilities } from "../../src/llm/capabilities.ts";
import { countTokens, readAnswer, structuredFormat } from "../../src/llm/index.ts";
import { splitReasoning } from "../../src/llm/reasoning.ts";
import { chainOfThought } from "../../src/sim/profiles.ts";
import { useSimulators } from "../support/llm-fixtures.ts";

const { sim, llm } = useSimulators();
const dir = mkdtempSync(join(tmpdir(), "rxsynth-endpoints-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const user = (content: string) => [{ role: "user" as const, content }];

describe("splitReasoning", () => {
  it("takes the chain of thought from reasoning fields or from before </think>, and leaves the answer", () => {
    expect(splitReasoning("answer", { reasoning: "thought" })).toEqual({ text: "answer", reasoning: "thought" });
    expect(splitReasoning("answer", { reasoning_content: "thought" })).toEqual({ text: "answer", reasoning: "thought" });
    expect(splitReasoning("<think>\nthought\n</think>\n\nanswer")).toEqual({ text: "answer", reasoning: "thought" });
    // The opening tag is often in the chat template, so only the closing one reaches the answer, on a line's edge.
    expect(splitReasoning("thought\n</think>\n\nanswer")).toEqual({ text: "answer", reasoning: "thought" });
    // An answer that mentions the tag in passing, or a server that separated the reasoning itself, keeps its text.
    expect(splitReasoning("In R1 outputs the </think> tag closes the reasoning.")).toEqual({ text: "In R1 outputs the </think> tag closes the reasoning." });
    expect(splitReasoning("<think>quoted</think> answer", { reasoning: "thought" })).toEqual({ text: "<think>quoted</think> answer", reasoning: "thought" });
    // Cut off while thinking: no answer at all.
    expect(splitReasoning("<think>still thinking")).toEqual({ text: "", reasoning: "still thinking" });
    expect(splitReasoning("plain answer")).toEqual({ text: "plain answer" });
  });
});

describe("reasoning models' chain of thought", () => {
  it.each([
    ["vllm", "reasoning"],
    ["sglang", "reasoning_content"],
    ["ollama", "reasoning"],
    ["llamacpp", "think-tags"],
  ] as const)("%s: the answer is read without the reasoning (%s), streamed or not, and JSON comes from the answer", async (profile, placement) => {
    const server = await sim({ profile, models: ["sim-1"] });
    const client = llm(server);
    for (const stream of [false, true]) {
      const result = await client.chat({ messages: user(`describe a cat (${placement})`), stream });
      const choice = result.choices[0]!;
      expect(choice.reasoning).toMatch(/^Let me think about this step by step/);
      expect(choice.text).not.toMatch(/think|draft/i);
      expect(choice.reasoning).toBe(chainOfThought(choice.text).trim());
      // The decoy {"draft": true} sits in the reasoning; the answer's object is the one read.
      const json = await client.chat({ messages: user("give a json object with a name"), response_format: { type: "json_object" }, stream });
      const read = readAnswer(json.choices[0], z.record(z.string(), z.unknown()));
      expect(read.ok && read.value).not.toHaveProperty("draft");
      expect(read.ok).toBe(true);
    }
  });
});

describe("finish reasons beyond stop and length", () => {
  it.each([
    ["vllm", "abort"],
    ["sglang", "abort"],
    ["ollama", "none"],
  ] as const)("%s: an unfinished answer (%s) is `incomplete`, never cached, and asked again", async (profile, reason) => {
    const server = await sim({ profile, models: ["sim-1"], faults: { unfinished: 1 }, reasoning: "none" });
    const client = llm(server, { cache: join(dir, `cache-${profile}`) });
    const first = await client.chat({ messages: user("an answer cut short") });
    expect(first.choices[0]!.finishReason).toBe(reason);
    const read = readAnswer(first.choices[0]);
    expect(read.ok ? undefined : read.bad.reason).toBe("incomplete");
    const again = await client.chat({ messages: user("an answer cut short") });
    expect(again.cached).toBe(false);
    expect(server.stats().requests).toBe(2);
  });

  it("azure: content_filter is a refusal, and a finished answer is cached", async () => {
    const server = await sim({ profile: "azure", models: ["gpt-4o"], faults: { unfinished: 1 }, reasoning: "none" });
    const client = llm(server, { model: "gpt-4o", cache: join(dir, "cache-azure") });
    const result = await client.chat({ messages: user("filtered"), max_tokens: 50 });
    expect(result.choices[0]!.finishReason).toBe("content_filter");
    const read = readAnswer(result.choices[0]);
    expect(read.ok ? undefined : read.bad).toMatchObject({ reason: "refusal", message: expect.stringMatching(/content filter/) });
  });

  it("a reasoning model that spends the whole cap thinking is truncated, and says so", async () => {
    const server = await sim({ profile: "openai-reasoning" });
    const client = llm(server, { model: "o4-mini" });
    const result = await client.chat({ messages: user("think hard"), max_tokens: 5, temperature: 1 });
    const read = readAnswer(result.choices[0]);
    expect(read.ok ? undefined : read.bad).toMatchObject({ reason: "truncated", message: expect.stringMatching(/raise max_tokens/) });
  });
});

describe("endpoint capabilities: learned once, remembered", () => {
  it("openai reasoning models: max_tokens becomes max_completion_tokens and sampling is left to defaults, after one refusal each", async () => {
    const server = await sim({ profile: "openai-reasoning" });
    const lines: string[] = [];
    const client = llm(server, { log: (line) => lines.push(line) });
    const first = await client.chat({ messages: user("first"), max_tokens: 400, temperature: 0.7 });
    expect(first.choices[0]!.finishReason).toBe("stop");
    expect(server.stats()).toMatchObject({ requests: 3, clientErrors: 2, completed: 1 });
    expect(lines.join("\n")).toMatch(/refuses max_tokens: sending the cap as max_completion_tokens[\s\S]*takes only the default sampling/);
    await Promise.all(Array.from({ length: 5 }, (_, i) => client.chat({ messages: user(`later ${i}`), max_tokens: 400, temperature: 0.7 })));
    expect(server.stats()).toMatchObject({ requests: 8, clientErrors: 2, completed: 6 });
  });

  it("re-sends, without counting a failure, the requests that were in flight when the first refusal taught the client", async () => {
    const server = await sim({ profile: "openai-reasoning" });
    const client = llm(server, { concurrency: 16 });
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => client.chat({ messages: user(`wave ${i}`), temperature: 0.7 })));
    expect(results.every((result) => result.choices[0]!.finishReason === "stop")).toBe(true);
    expect(client.stats().failures).toBe(0);
  });

  it("knows OpenAI's and Azure's reasoning models, Groq and Ollama before they refuse anything", () => {
    expect(builtinCapabilities("https://api.openai.com/v1", "o4-mini")).toMatchObject({ tokenLimitField: "max_completion_tokens", sampling: false });
    expect(builtinCapabilities("https://x.openai.azure.com/openai/v1", "gpt-5-mini")).toMatchObject({ tokenLimitField: "max_completion_tokens" });
    expect(builtinCapabilities("https://api.openai.com/v1", "gpt-4o")).toMatchObject({ tokenLimitField: "max_tokens", sampling: true });
    expect(builtinCapabilities("https://api.groq.com/openai/v1", "llama-3.3-70b")).toMatchObject({ n: false, streamUsage: false });
    expect(builtinCapabilities("http://localhost:11434/v1", "qwen3")).toMatchObject({ n: false });
  });

  it.each(["groq", "ollama"] as const)("%s: n > 1 becomes n requests with distinct seeds, and the merged answer is cached", async (profile) => {
    const server = await sim({ profile, models: ["sim-1"] });
    const client = llm(server, { cache: join(dir, `cache-n-${profile}`) });
    const result = await client.chat({ messages: user("three takes on a cat"), n: 3, temperature: 0.9 });
    expect(result.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    expect(new Set(result.choices.map((choice) => choice.text)).size).toBe(3);
    const sent = server.stats().requests;
    // groq refuses once then splits; ollama answers one then the other two come one by one.
    expect(sent).toBe(profile === "groq" ? 4 : 3);
    expect((await client.chat({ messages: user("three takes on a cat"), n: 3, temperature: 0.9 })).cached).toBe(true);
    // Remembered: the next call goes one by one from the start.
    await client.chat({ messages: user("two more"), n: 2 });
    expect(server.stats().requests).toBe(sent + 2);
  });

  it("splits the n > 1 calls already in flight when the refusal of n arrives, streaming each choice under its own index", async () => {
    const server = await sim({ profile: "groq", latencyMs: 50 });
    const client = llm(server);
    const results = await Promise.all([0, 1, 2].map((i) => client.chat({ messages: user(`pair ${i}`), n: 2 })));
    expect(results.map((result) => result.choices.length)).toEqual([2, 2, 2]);
    expect(client.stats().failures).toBe(0);
    const ollama = await sim({ profile: "ollama", models: ["sim-1"], reasoning: "none" });
    const streamer = llm(ollama);
    const deltas = new Map<number, string>();
    const streamed = await streamer.chat({ messages: user("three streamed") , n: 3, stream: true }, { onDelta: (i, text) => deltas.set(i, (deltas.get(i) ?? "") + text) });
    expect([...deltas.keys()].sort()).toEqual([0, 1, 2]);
    expect(streamed.choices.map((choice) => choice.text)).toEqual([0, 1, 2].map((i) => deltas.get(i)));
  });

  it("takes an invalid schema for the request's fault, not a reason to stop sending json_schema", async () => {
    const strict = await startRefusingServer((body) =>
      JSON.stringify(body.response_format ?? {}).includes('"bad"')
        ? { status: 400, error: { message: "Invalid schema for response_format 'bad': In context=(), 'additionalProperties' is required to be supplied and to be false.", type: "invalid_request_error", param: "response_format", code: "invalid_json_schema" } }
        : undefined,
    );
    const client = llm(strict.url);
    const schema = (name: string) => ({ type: "json_schema" as const, json_schema: { name, schema: { type: "object" } } });
    expect(await client.chat({ messages: user("bad"), response_format: schema("bad") }).catch((e: unknown) => e)).toBeInstanceOf(LlmError);
    await client.chat({ messages: user("good"), response_format: schema("good") });
    expect((strict.bodies.at(-1)!.response_format as { type: string }).type).toBe("json_schema");
    await strict.close();
  });

  it("groq: a stream without stream_options, after one refusal", async () => {
    const server = await sim({ profile: "groq" });
    const client = llm(server);
    const streamed = await client.chat({ messages: user("stream it"), stream: true });
    const whole = await client.chat({ messages: user("stream it") });
    expect(streamed.choices[0]!.text).toBe(whole.choices[0]!.text);
    expect(server.stats()).toMatchObject({ clientErrors: 1, streamed: 1 });
  });

  it("json_schema refused by name: json_object with the schema in the prompt", async () => {
    const refusing = await startRefusingServer((body) =>
      (body.response_format as { type?: string } | undefined)?.type === "json_schema"
        ? { status: 400, error: { message: "response_format json_schema is not supported", type: "invalid_request_error", param: "response_format", code: null } }
        : undefined,
    );
    const client = llm(refusing.url);
    const result = await client.chat({
      messages: user("a name"),
      response_format: { type: "json_schema", json_schema: { name: "n", schema: { type: "object", properties: { name: { type: "string" } } } } },
    });
    expect(result.choices[0]!.text).toBe('{"echo":"json_object"}');
    expect(refusing.bodies.at(-1)!.messages[0]).toMatchObject({ role: "system", content: expect.stringContaining('"properties":{"name"') });
    await refusing.close();
  });
});

describe("servers that ignore json_schema", () => {
  it("still get answers in the schema's shape: the prompt describes the schema in json_schema mode too", async () => {
    const server = await sim({ ignoreJsonSchema: true });
    const client = llm(server);
    const schema = z.object({ title: z.string(), year: z.number() });
    const format = structuredFormat(client, schema, "book");
    expect(format.structured).toBe("json_schema");
    for (let i = 0; i < 8; i++) {
      const result = await client.chat({ messages: format.messages(user(`a book, please (${i})`)), response_format: format.responseFormat });
      const read = readAnswer(result.choices[0], schema);
      expect(read.ok, JSON.stringify(read)).toBe(true);
    }
  });

  it("falling back to json_object does not describe the schema twice", async () => {
    const refusing = await startRefusingServer((body) =>
      (body.response_format as { type?: string } | undefined)?.type === "json_schema"
        ? { status: 400, error: { message: "response_format json_schema is not supported", type: "invalid_request_error", param: "response_format", code: null } }
        : undefined,
    );
    const client = llm(refusing.url);
    const format = structuredFormat(client, z.object({ name: z.string() }), "n");
    await client.chat({ messages: format.messages(user("a name")), response_format: format.responseFormat });
    const sent = refusing.bodies.at(-1)!;
    expect(sent.response_format).toEqual({ type: "json_object" });
    expect((sent.messages as { role: string }[]).filter((message) => message.role === "system")).toHaveLength(1);
    await refusing.close();
  });
});

describe("errors that waiting does not fix", () => {
  it("stops the run after a few calls that all fail the same way, instead of rejecting every sample", async () => {
    const server = await sim();
    const client = llm(server, { maxRetries: 2 });
    let sent = 0;
    let stopped: unknown;
    for (let i = 0; i < 20 && !stopped; i++) {
      sent++;
      // An option the server refuses for every request: the graph's configuration, not the sample.
      await client.chat({ messages: user(`sample ${i}`), temperature: 5 }).catch((error: unknown) => {
        if (error instanceof EndpointError) stopped = error;
        else expect(error).toBeInstanceOf(LlmError);
      });
    }
    expect(stopped).toBeInstanceOf(EndpointError);
    expect((stopped as Error).message).toMatch(/the last 5 calls all failed the same way \(400 'temperature' must be a number between 0 and 2\.\)/);
    expect(sent).toBe(5);
    expect(server.stats().requests).toBeLessThanOrEqual(10);
  });

  it("does not take a run of per-sample refusals (content filter) for a configuration error", async () => {
    const filtering = await startRefusingServer(() => ({
      status: 400,
      error: { message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.", type: null, param: "prompt", code: "content_filter" },
    }));
    const client = llm(filtering.url);
    for (let i = 0; i < 8; i++) {
      const error = await client.chat({ messages: user(`flagged ${i}`) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LlmError);
      expect(error).not.toBeInstanceOf(EndpointError);
    }
    await filtering.close();
  });

  it("stops at once on insufficient_quota instead of retrying it as a rate limit", async () => {
    const broke = await startRefusingServer(() => ({
      status: 429,
      error: { message: "You exceeded your current quota, please check your plan and billing details.", type: "insufficient_quota", param: null, code: "insufficient_quota" },
      headers: { "retry-after": "3600" },
    }));
    const client = llm(broke.url, { maxRetries: 6 });
    const started = performance.now();
    const error = await client.chat({ messages: user("pay up") }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EndpointError);
    expect((error as Error).message).toMatch(/no quota left \(insufficient_quota\): add credit or use another key/);
    expect(broke.bodies).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(2_000);
    await broke.close();
  });

  it("takes 503s from a queueing server as overload: the adaptive cap comes down", async () => {
    const queueing = await sim({ faults: { "503": 0.5 }, seed: 4 });
    const client = llm(queueing, { concurrency: 16, maxRetries: 10 });
    await Promise.all(Array.from({ length: 40 }, (_, i) => client.chat({ messages: user(`busy ${i}`) })));
    expect(queueing.stats().errors5xx).toBeGreaterThan(5);
    expect(client.limits().concurrency).toBeLessThan(16);
  });
});

/** A real HTTP server that refuses what `refuse` says and otherwise echoes the response_format type. */
async function startRefusingServer(
  refuse: (body: Record<string, unknown>) => { status: number; error: Record<string, unknown>; headers?: Record<string, string> } | undefined,
) {
  const bodies: Array<Record<string, unknown> & { messages: unknown[] }> = [];
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk) => (raw += chunk));
    req.on("end", () => {
      if (req.method !== "POST") {
        // A bare server: nothing but chat completions (the client's GET /models finds nothing to go by).
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "not found" } }));
        return;
      }
      const body = JSON.parse(raw) as Record<string, unknown> & { messages: unknown[] };
      bodies.push(body);
      const refusal = refuse(body);
      if (refusal) {
        res.writeHead(refusal.status, { "content-type": "application/json", ...refusal.headers });
        res.end(JSON.stringify({ error: refusal.error }));
        return;
      }
      const content = JSON.stringify({ echo: (body.response_format as { type?: string } | undefined)?.type ?? "text" });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: "x", object: "chat.completion", created: 0, model: body.model, choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }], usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1`, bodies, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe("context overflow, rate headers, Azure's URLs", () => {
  it("vllm: a cap too large for the context is retried once with the cap that fits; a prompt too long is context_length", async () => {
    const server = await sim({ profile: "vllm", models: ["sim-1"], contextTokens: 300 });
    const client = llm(server);
    const fitted = await client.chat({ messages: user("a short prompt"), max_tokens: 1000 });
    expect(fitted.choices[0]!.text.length).toBeGreaterThan(0);
    expect(server.stats()).toMatchObject({ requests: 2, clientErrors: 1 });
    expect(client.stats().failures).toBe(0);
    const long = await client.chat({ messages: user("word ".repeat(400)), max_tokens: 10 }).catch((e: unknown) => e);
    expect(long).toBeInstanceOf(LlmError);
    expect(long).not.toBeInstanceOf(EndpointError);
    expect((long as LlmError).reason).toBe("context_length");
  });

  it("ollama: a prompt the server cut silently is context_length, not an answer", async () => {
    const server = await sim({ profile: "ollama", models: ["sim-1"], contextTokens: 50, reasoning: "none" });
    const client = llm(server, { capabilities: { cutsLongPrompts: true } });
    expect((await client.chat({ messages: user("fits") })).choices[0]!.text.length).toBeGreaterThan(0);
    const cut = await client.chat({ messages: user("word ".repeat(200)) }).catch((e: unknown) => e);
    expect(cut).toMatchObject({ reason: "context_length", message: expect.stringMatching(/the server read 50 of the prompt's \d+ tokens/) });
  });

  it("an Ollama on a port that says nothing is known by its /v1/models answer, and its silent cuts caught", async () => {
    const server = await sim({ profile: "ollama", models: ["sim-1"], contextTokens: 50, reasoning: "none" });
    const lines: string[] = [];
    const detected = llm(server, { log: (line) => lines.push(line) });
    const cut = await detected.chat({ messages: user("word ".repeat(200)) }).catch((e: unknown) => e);
    expect(cut).toMatchObject({ reason: "context_length" });
    expect(lines.join("\n")).toMatch(/models owned by "library": starting from the ollama profile/);
    // Told it is of no known family, the client does not ask, and takes the cut answer for a good one.
    const told = llm(server, { family: "unknown" });
    expect((await told.chat({ messages: user("word ".repeat(200)) })).choices[0]!.text.length).toBeGreaterThan(0);
    // vLLM, SGLang and llama.cpp name themselves the same way.
    for (const [profile, family] of [["vllm", "vllm"], ["sglang", "sglang"], ["llamacpp", "llamacpp"]] as const) {
      const named: string[] = [];
      await llm(await sim({ profile, models: ["sim-1"], reasoning: "none" }), { log: (line) => named.push(line) }).chat({ messages: user("hi") });
      expect(named.join("\n")).toContain(`starting from the ${family} profile`);
    }
  });

  it("takes the family and capabilities from the environment, and says in one line what it cannot read", async () => {
    const server = await sim({ profile: "ollama", models: ["sim-1"], contextTokens: 50, reasoning: "none" });
    const saved = { family: process.env.RXSYNTH_ENDPOINT_FAMILY, capabilities: process.env.RXSYNTH_CAPABILITIES };
    try {
      process.env.RXSYNTH_ENDPOINT_FAMILY = "unknown";
      process.env.RXSYNTH_CAPABILITIES = "jsonSchema=false, cutsLongPrompts=true";
      const client = llm(server);
      expect(client.supportsJsonSchema).toBe(false);
      expect(await client.chat({ messages: user("word ".repeat(200)) }).catch((e: unknown) => e)).toMatchObject({ reason: "context_length" });
      process.env.RXSYNTH_CAPABILITIES = "jsonSchema=maybe";
      expect(() => llm(server)).toThrow(/^RXSYNTH_CAPABILITIES: jsonSchema must be one of true, false, got "maybe"$/);
      process.env.RXSYNTH_CAPABILITIES = "";
      process.env.RXSYNTH_ENDPOINT_FAMILY = "ollamma";
      expect(() => llm(server)).toThrow(/^RXSYNTH_ENDPOINT_FAMILY: unknown endpoint family "ollamma"; known: openai, /);
    } finally {
      for (const [key, value] of [["RXSYNTH_ENDPOINT_FAMILY", saved.family], ["RXSYNTH_CAPABILITIES", saved.capabilities]] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  it("refuses Azure's classic deployment URL with the v1 URL to use instead", () => {
    expect(() => llm("https://acme.openai.azure.com/openai/deployments/gpt-4o", { model: "gpt-4o" })).toThrow(
      /Azure's classic deployment URL.*use Azure's v1 URL https:\/\/acme\.openai\.azure\.com\/openai\/v1\//,
    );
  });
});

describe("tokens", () => {
  it("llamacpp bills with its own tokenizer: per-choice tokens are shares of what the server billed, not tiktoken's count", async () => {
    const server = await sim({ profile: "llamacpp", reasoning: "none" });
    const client = llm(server);
    const result = await client.chat({ messages: user("three stories"), n: 3 });
    const shares = result.choices.map((choice) => choice.completionTokens);
    expect(shares.reduce((a, b) => a + b, 0)).toBe(result.usage.completionTokens);
    expect(result.usage.completionTokens).toBe(server.stats().completionTokens);
    const tiktoken = result.choices.map((choice) => countTokens(choice.text, "sim-1"));
    expect(shares).not.toEqual(tiktoken);
  });
});

describe("rate-limit header dialects", () => {
  it("groq: the request headers count per day, so they are not taken for a per-minute limit", async () => {
    const server = await sim({ profile: "groq", rpm: 600 });
    const told = llm(server, { capabilities: { rateHeaders: "per-day-requests" } });
    await told.chat({ messages: user("one") });
    expect(told.limits().rpm).toBeUndefined();
    // The same headers read the OpenAI way: 864,000 requests "per minute".
    const naive = llm(server);
    await naive.chat({ messages: user("two") });
    expect(naive.limits().rpm).toBe(864_000);
    expect(builtinCapabilities("https://api.groq.com/openai/v1", "llama-3.3-70b-versatile").rateHeaders).toBe("per-day-requests");
  });

  it("together: x-ratelimit-limit and x-tokenlimit-limit count per second", async () => {
    const server = await sim({ profile: "together", rpm: 600, tpm: 120_000 });
    const told = llm(server, { family: "together" });
    await told.chat({ messages: user("one") });
    expect(told.limits()).toMatchObject({ rpm: 600, tpm: 120_000 });
    // Read the OpenAI way, Together's names say nothing: no limit is learned.
    const naive = llm(server);
    await naive.chat({ messages: user("two") });
    expect(naive.limits()).toMatchObject({ rpm: undefined, tpm: undefined });
    expect(builtinCapabilities("https://api.together.xyz/v1", "meta-llama/Llama-3.3-70B-Instruct-Turbo").rateHeaders).toBe("per-second");
  });

  it("azure: a remaining count of -1 is no figure, not an exhausted bucket", async () => {
    const server = await sim({ profile: "azure", models: ["gpt-4o"], rpm: 600, burstMs: 60_000 });
    const client = llm(server, { model: "gpt-4o" });
    const started = performance.now();
    for (let i = 0; i < 6; i++) await client.chat({ messages: user(`quick ${i}`) });
    expect(client.limits().rpm).toBe(600);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe("errors inside a stream", () => {
  it("vllm: an error event mid-stream is the server's answer (its code is the status), not a dropped connection to retry", async () => {
    const server = await sim({ profile: "vllm", models: ["sim-1"], faults: { midstream: 1 }, reasoning: "none" });
    const client = llm(server, { maxRetries: 3, outageSeconds: 0 });
    const error = await client.chat({ messages: user("stream me"), stream: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmError);
    expect(error).toMatchObject({ status: 400, attempt: 1, message: expect.stringMatching(/guided-decoding grammar rejected the output/) });
    expect(server.stats().requests).toBe(1);
  });
});

describe("a long Retry-After", () => {
  it("stops with one line saying when to rerun when the server asks to wait longer than the outage wait", async () => {
    const busy = await startRefusingServer(() => ({ status: 429, error: { message: "Rate limit reached for requests per day.", type: "requests", param: null, code: "rate_limit_exceeded" }, headers: { "retry-after": "7200" } }));
    const client = llm(busy.url, { outageSeconds: 60 });
    const started = performance.now();
    const errors = await Promise.all([0, 1, 2].map((i) => client.chat({ messages: user(`later ${i}`) }).catch((e: unknown) => e)));
    for (const error of errors) {
      expect(error).toBeInstanceOf(EndpointError);
      expect((error as Error).message).toMatch(/asked to wait 7200 s \(Retry-After\), longer than the outage wait .*rerun the same command after \d\d:\d\d UTC/);
    }
    expect(performance.now() - started).toBeLessThan(2_000);
    await busy.close();
  });

  it("holds every request, with one line, while the server's Retry-After runs", async () => {
    let refused = 0;
    const busy = await startRefusingServer(() => (refused++ === 0 ? { status: 429, error: { message: "Slow down.", type: "requests", param: null, code: "rate_limit_exceeded" }, headers: { "retry-after-ms": "1500" } } : undefined));
    const lines: string[] = [];
    // Longer than the longest backoff: every request waits, not only the one that was answered 429.
    const client = llm(busy.url, { log: (line) => lines.push(line), backoffMaxMs: 500 });
    const first = client.chat({ messages: user("first") });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = client.chat({ messages: user("second") });
    let secondDone = false;
    void second.then(() => (secondDone = true));
    await new Promise((resolve) => setTimeout(resolve, 700));
    // The second request waits with the first instead of being sent into the pause.
    expect(secondDone).toBe(false);
    expect(busy.bodies).toHaveLength(1);
    expect(lines.filter((line) => /pausing every request/.test(line))).toHaveLength(1);
    await Promise.all([first, second]);
    expect(busy.bodies).toHaveLength(3);
    await busy.close();
  });
});
