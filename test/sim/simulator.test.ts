import { Command } from "commander";
import OpenAI, { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { countMessageTokens, countTokens } from "../../src/llm/index.ts";
import { SIM_REFUSAL, parseFaults, registerSimCommand, startSimulator, valueFromSchema, type Simulator, type SimulatorOptions } from "../../src/sim/index.ts";
import { Rng } from "../../src/sim/random.ts";

const sims: Simulator[] = [];
async function sim(options: SimulatorOptions = {}): Promise<Simulator> {
  const started = await startSimulator({ latencyMs: 1, ...options });
  sims.push(started);
  return started;
}
function client(s: Simulator, apiKey = "sk-test"): OpenAI {
  return new OpenAI({ baseURL: s.url, apiKey, maxRetries: 0 });
}
async function stats(s: Simulator): Promise<Record<string, number>> {
  const response = await fetch(s.url.replace(/\/v1$/, "/stats"));
  return (await response.json()) as Record<string, number>;
}
afterAll(async () => {
  await Promise.all(sims.map((s) => s.close()));
});

const user = (content: string) => [{ role: "user" as const, content }];

describe("simulator", () => {
  let plain: Simulator;
  beforeAll(async () => {
    plain = await sim({ models: ["sim-1", "sim-2"] });
  });

  it("lists its models and answers chat completions the official openai client reads", async () => {
    const openai = client(plain);
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["sim-1", "sim-2"]);
    const { data, response, request_id } = await openai.chat.completions
      .create({ model: "sim-1", messages: user("Tell me about rivers.") })
      .withResponse();
    expect(response.status).toBe(200);
    expect(request_id).toMatch(/^req_/);
    expect(data.object).toBe("chat.completion");
    expect(data.choices).toHaveLength(1);
    expect(data.choices[0]!.finish_reason).toBe("stop");
    const text = data.choices[0]!.message.content!;
    expect(text.split(/\s+/).length).toBeGreaterThan(10);
    expect(text).toMatch(/^[A-Z][^]*\.$/);
  });

  it("gives the same answer to the same request and seed, and different answers to other choices and seeds", async () => {
    const openai = client(plain);
    const ask = (seed: number, n = 1) => openai.chat.completions.create({ model: "sim-1", messages: user("Describe a forest."), seed, n });
    const a = await ask(1, 3);
    const b = await ask(1, 3);
    const c = await ask(2);
    expect(a.choices.map((x) => x.message.content)).toEqual(b.choices.map((x) => x.message.content));
    expect(new Set(a.choices.map((x) => x.message.content)).size).toBe(3);
    expect(c.choices[0]!.message.content).not.toBe(a.choices[0]!.message.content);
    expect(a.choices.map((x) => x.index)).toEqual([0, 1, 2]);
  });

  it("answers a request for a list of instructions with a numbered list of varied instructions", async () => {
    const openai = client(plain);
    const answer = await openai.chat.completions.create({
      model: "sim-1",
      messages: user("Come up with 7 new, diverse instructions for a language model. Number them."),
    });
    const lines = answer.choices[0]!.message.content!.split("\n");
    expect(lines).toHaveLength(7);
    lines.forEach((line, i) => expect(line).toMatch(new RegExp(`^${i + 1}\\. [A-Z].{10,}`)));
    expect(new Set(lines.map((l) => l.replace(/^\d+\. /, ""))).size).toBe(7);
    const questions = await openai.chat.completions.create({ model: "sim-1", messages: user("Generate 4 questions a student might ask.") });
    const qs = questions.choices[0]!.message.content!.split("\n");
    expect(qs).toHaveLength(4);
    for (const q of qs) expect(q).toMatch(/\?$/);
  });

  it("counts usage with tiktoken and cuts answers at max_tokens with finish_reason length", async () => {
    const openai = client(plain);
    const messages = [
      { role: "system" as const, content: "You are terse." },
      { role: "user" as const, content: "Explain the water cycle <|endoftext|> please." },
    ];
    const full = await openai.chat.completions.create({ model: "sim-1", messages });
    expect(full.usage!.prompt_tokens).toBe(countMessageTokens(messages, "sim-1"));
    expect(full.usage!.completion_tokens).toBe(countTokens(full.choices[0]!.message.content!, "sim-1"));
    const cut = await openai.chat.completions.create({ model: "sim-1", messages, max_tokens: 5 });
    expect(cut.choices[0]!.finish_reason).toBe("length");
    expect(cut.usage!.completion_tokens).toBe(5);
    expect(full.choices[0]!.message.content!.startsWith(cut.choices[0]!.message.content!)).toBe(true);
  });

  it("streams SSE chunks that end in [DONE], with a usage chunk when stream_options asks", async () => {
    const openai = client(plain);
    const messages = user("Write about bridges.");
    const whole = await openai.chat.completions.create({ model: "sim-1", messages, n: 2 });
    const stream = await openai.chat.completions.create({
      model: "sim-1",
      messages,
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
    });
    const texts = ["", ""];
    const finish: string[] = [];
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      chunks++;
      expect(chunk.object).toBe("chat.completion.chunk");
      for (const choice of chunk.choices) {
        texts[choice.index] += choice.delta.content ?? "";
        if (choice.finish_reason) finish[choice.index] = choice.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(chunks).toBeGreaterThan(10);
    expect(texts).toEqual(whole.choices.map((c) => c.message.content));
    expect(finish).toEqual(["stop", "stop"]);
    expect(usage).toEqual(whole.usage);

    const raw = await fetch(`${plain.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "sim-1", messages, stream: true }),
    });
    expect(raw.headers.get("content-type")).toContain("text/event-stream");
    const body = await raw.text();
    expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(body).not.toContain('"usage"');
  });

  it("returns JSON that satisfies the json_schema it was given, for every structured shape", async () => {
    const openai = client(plain);
    const Item = z.object({ name: z.string(), weight: z.number().min(0.5).max(2.5) });
    const schema = z.object({
      question: z.string().min(20),
      answer: z.string().max(40),
      score: z.number().int().min(1).max(5),
      label: z.enum(["good", "bad", "ugly"]),
      tags: z.array(z.string()).min(3).max(5),
      items: z.array(Item).min(2),
      flag: z.boolean(),
      nullable: z.string().nullable(),
      maybe: z.number().optional(),
      email: z.email(),
      kind: z.literal("fixed"),
      nested: z.object({ deeper: z.object({ count: z.number().int().nonnegative() }) }),
      either: z.union([z.string(), z.number()]),
    });
    const jsonSchema = z.toJSONSchema(schema) as Record<string, unknown>;
    for (let i = 0; i < 20; i++) {
      const answer = await openai.chat.completions.create({
        model: "sim-1",
        messages: user(`Fill in record ${i}.`),
        response_format: { type: "json_schema", json_schema: { name: "record", schema: jsonSchema, strict: false } },
      });
      const parsed = schema.safeParse(JSON.parse(answer.choices[0]!.message.content!));
      expect(parsed.success, parsed.success ? "" : z.prettifyError(parsed.error)).toBe(true);
    }
    // Recursive schemas ($ref into $defs) terminate.
    type Tree = { label: string; children: Tree[] };
    const TreeSchema: z.ZodType<Tree> = z.lazy(() => z.object({ label: z.string(), children: z.array(TreeSchema) }));
    const tree = valueFromSchema(new Rng("tree"), z.toJSONSchema(TreeSchema));
    expect(TreeSchema.safeParse(tree).success).toBe(true);
  });

  it("returns a plausible JSON object in json_object mode, following a schema written into the prompt", async () => {
    const openai = client(plain);
    const free = await openai.chat.completions.create({
      model: "sim-1",
      messages: user('Reply in JSON with keys "title" and "rating".'),
      response_format: { type: "json_object" },
    });
    const object = JSON.parse(free.choices[0]!.message.content!) as Record<string, unknown>;
    expect(Object.keys(object).sort()).toEqual(["rating", "title"]);
    expect(typeof object.rating).toBe("number");
    const schema = z.object({ city: z.string(), population: z.number().int().min(1000) });
    const guided = await openai.chat.completions.create({
      model: "sim-1",
      messages: [
        { role: "system", content: `Answer with JSON matching this schema:\n${JSON.stringify(z.toJSONSchema(schema))}` },
        { role: "user", content: "Name a city." },
      ],
      response_format: { type: "json_object" },
    });
    expect(schema.safeParse(JSON.parse(guided.choices[0]!.message.content!)).success).toBe(true);
  });

  it("applies the latency model: fixed latency, time to first token and tokens per second", async () => {
    const slow = await sim({ latencyMs: 40, ttftMs: 20, tokensPerS: 2_000 });
    const openai = client(slow);
    const started = performance.now();
    const answer = await openai.chat.completions.create({ model: "sim-1", messages: user("Describe a museum.") });
    const elapsed = performance.now() - started;
    const expected = 60 + (answer.usage!.completion_tokens / 2_000) * 1_000;
    expect(elapsed).toBeGreaterThanOrEqual(expected - 5);
    expect(elapsed).toBeLessThan(expected + 400);
  });

  it("queues requests over its concurrency cap, or answers 429 when the queue is full", async () => {
    const queued = await sim({ latencyMs: 30, maxConcurrency: 2 });
    const openai = client(queued);
    await Promise.all(Array.from({ length: 6 }, (_, i) => openai.chat.completions.create({ model: "sim-1", messages: user(`q${i}`) })));
    const s = await stats(queued);
    expect(s.peakConcurrency).toBe(2);
    expect(s.peakQueued).toBe(4);
    expect(s.completed).toBe(6);

    const strict = await sim({ latencyMs: 30, maxConcurrency: 2, maxQueue: 0 });
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => client(strict).chat.completions.create({ model: "sim-1", messages: user(`s${i}`) })),
    );
    const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as APIError);
    expect(refused).toHaveLength(3);
    for (const error of refused) expect(error.status).toBe(429);
    expect((await stats(strict)).rateLimited).toBe(3);
  });

  it("starts a queued request's service time when it takes a slot, so a capped server serves no more than its cap allows", async () => {
    const capped = await sim({ latencyMs: 200, maxConcurrency: 2 });
    const openai = client(capped);
    const started = performance.now();
    const finished: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        openai.chat.completions.create({ model: "sim-1", messages: user(`w${i}`) }).then(() => finished.push(performance.now() - started)),
      ),
    );
    // Four rounds of two: a lower bound only, which a slow machine cannot break.
    finished.sort((a, b) => a - b);
    for (let round = 0; round < 4; round++) expect(finished[round * 2]!).toBeGreaterThanOrEqual((round + 1) * 200 - 5);
  });

  it("enforces RPM and TPM with 429, Retry-After and x-ratelimit headers", async () => {
    const limited = await sim({ rpm: 600, tpm: 1_000_000, burstMs: 500 });
    const openai = client(limited);
    const first = await openai.chat.completions.create({ model: "sim-1", messages: user("one"), max_tokens: 10 }).withResponse();
    const h = first.response.headers;
    expect(h.get("x-ratelimit-limit-requests")).toBe("600");
    expect(Number(h.get("x-ratelimit-remaining-requests"))).toBe(4);
    expect(h.get("x-ratelimit-reset-requests")).toMatch(/^\d+(ms|s)$/);
    expect(h.get("x-ratelimit-limit-tokens")).toBe("1000000");
    expect(Number(h.get("x-ratelimit-remaining-tokens"))).toBeLessThan(1_000_000 / 120);
    expect(h.get("x-ratelimit-reset-tokens")).toMatch(/^\d+(ms|s)$/);
    const burst = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => openai.chat.completions.create({ model: "sim-1", messages: user(`b${i}`), max_tokens: 10 })),
    );
    const limitedErrors = burst.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as APIError);
    expect(limitedErrors.length).toBeGreaterThanOrEqual(4);
    const error = limitedErrors[0]!;
    expect(error.status).toBe(429);
    expect(Number(error.headers!.get("retry-after-ms"))).toBeGreaterThan(0);
    expect(Number(error.headers!.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(error.headers!.get("x-ratelimit-remaining-requests")).toBe("0");

    const tokenBound = await sim({ tpm: 6_000, burstMs: 1_000 });
    const big = await client(tokenBound).chat.completions.create({ model: "sim-1", messages: user("x"), max_tokens: 90 }).catch((e: unknown) => e);
    expect(big).not.toBeInstanceOf(Error);
    const over = await client(tokenBound).chat.completions.create({ model: "sim-1", messages: user("y"), max_tokens: 90 }).catch((e: unknown) => e);
    expect((over as APIError).status).toBe(429);
    expect((over as APIError).message).toMatch(/tokens per min/);
  });

  it("injects faults at their rates, the same ones for the same seed, rolling again when a request repeats", async () => {
    const options: SimulatorOptions = { faults: { "500": 0.2, "503": 0.1, "429": 0.1, refusal: 0.2 }, faultRetryAfterMs: 10, seed: 7 };
    const run = async () => {
      const s = await sim(options);
      const outcomes: string[] = [];
      for (let i = 0; i < 150; i++) {
        try {
          const a = await client(s).chat.completions.create({ model: "sim-1", messages: user(`fault ${i % 75}`) });
          outcomes.push(a.choices[0]!.message.content === SIM_REFUSAL ? "refusal" : "ok");
        } catch (error) {
          outcomes.push(String((error as APIError).status));
        }
      }
      return { outcomes, stats: await stats(s) };
    };
    const a = await run();
    const b = await run();
    expect(a.outcomes).toEqual(b.outcomes);
    const count = (kind: string) => a.outcomes.filter((o) => o === kind).length;
    expect(count("500")).toBeGreaterThan(15);
    expect(count("500")).toBeLessThan(50);
    expect(count("503")).toBeGreaterThan(4);
    expect(count("429")).toBeGreaterThan(4);
    expect(count("refusal")).toBeGreaterThan(8);
    expect(a.stats.errors5xx).toBe(count("500") + count("503"));
    expect(a.stats.rateLimited).toBe(count("429"));
    expect(a.stats.refusals).toBe(count("refusal"));
    // The second pass repeats the first 75 requests; their faults are rolled afresh.
    expect(a.outcomes.slice(0, 75)).not.toEqual(a.outcomes.slice(75));
  });

  it("drops the connection after the headers and part of the body when a reset fires", async () => {
    const resetting = await sim({ faults: { reset: 1 } });
    const response = await fetch(`${resetting.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "sim-1", messages: user("hello") }),
    });
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
    const streamed = await client(resetting).chat.completions.create({ model: "sim-1", messages: user("hello"), stream: true });
    await expect(
      (async () => {
        for await (const _chunk of streamed) {
          // drain until the connection drops
        }
      })(),
    ).rejects.toThrow();
    expect((await stats(resetting)).resets).toBe(2);
  });

  it("rejects a wrong key with 401 and malformed requests with 400, in OpenAI's error shape", async () => {
    const keyed = await sim({ apiKey: "sk-right-key" });
    const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (e: unknown) => e as APIError);
    const wrong = (await failure(client(keyed, "sk-wrong-key").chat.completions.create({ model: "sim-1", messages: user("hi") })))!;
    expect(wrong.status).toBe(401);
    expect(wrong.code).toBe("invalid_api_key");
    expect((await client(keyed, "sk-right-key").chat.completions.create({ model: "sim-1", messages: user("hi") })).choices).toHaveLength(1);
    const bad = (await failure(client(plain).chat.completions.create({ model: "sim-1", messages: user("hi"), temperature: 7 })))!;
    expect(bad.status).toBe(400);
    expect(bad.param).toBe("temperature");
  });

  it("counts what it served at GET /stats", async () => {
    const counted = await sim({ faults: { length: 1 } });
    await client(counted).chat.completions.create({ model: "sim-1", messages: user("count me"), n: 2 });
    // A forced truncation never runs past max_tokens.
    const capped = await client(counted).chat.completions.create({ model: "sim-1", messages: user("count me"), n: 2, max_tokens: 3 });
    expect(capped.usage!.completion_tokens).toBe(6);
    const s = await stats(counted);
    expect(s).toMatchObject({ requests: 2, completed: 2, truncated: 4, peakConcurrency: 1, active: 0, queued: 0 });
    expect(s.promptTokens).toBe(2 * countMessageTokens(user("count me")));
    expect(s.completionTokens).toBeGreaterThan(0);
  });

  it("adds an `rxsynth sim` command with the simulator's settings as flags", () => {
    const program = new Command("rxsynth");
    registerSimCommand(program);
    const command = program.commands.find((c) => c.name() === "sim")!;
    const flags = command.options.map((o) => o.long);
    for (const flag of ["--port", "--latency-ms", "--ttft-ms", "--tokens-per-s", "--max-concurrency", "--rpm", "--tpm", "--fail-rate", "--faults", "--seed"]) {
      expect(flags).toContain(flag);
    }
    expect(parseFaults("429=0.1, 500=0.05,reset=0.02")).toEqual({ "429": 0.1, "500": 0.05, reset: 0.02 });
    expect(() => parseFaults("429")).toThrow(/kind=rate/);
  });
});
