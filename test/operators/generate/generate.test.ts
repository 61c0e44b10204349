import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { EndpointError, childSampleId, collect, createSample, drop, type Sample } from "../../../src/index.ts";
import { createLlm, type Llm, type LlmOptions } from "../../../src/llm/index.ts";
import { startSimulator, type Simulator, type SimulatorOptions } from "../../../src/sim/index.ts";
import { generate } from "../../../operators/generate/generate.ts";

const dir = mkdtempSync(join(tmpdir(), "rxsynth-generate-"));
const sims: Simulator[] = [];
const clients: Llm[] = [];
async function endpoint(sim: SimulatorOptions = {}, client: Partial<LlmOptions> = {}): Promise<{ sim: Simulator; llm: Llm }> {
  const started = await startSimulator({ latencyMs: 1, ...sim });
  sims.push(started);
  const llm = createLlm({ baseURL: started.url, model: "sim-1", backoffBaseMs: 2, backoffMaxMs: 20, concurrency: 16, ...client });
  clients.push(llm);
  return { sim: started, llm };
}
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(sims.map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

const topics = ["rivers", "volcanoes", "bread", "jazz", "bees", "bridges"];
const samples = (count = topics.length): Sample[] =>
  topics.slice(0, count).map((topic, i) => createSample({ id: `seed-${i}`, source: "topics", data: { topic } }));
const ask = (sample: Sample) => [{ role: "user" as const, content: `Write a short paragraph about ${String(sample.data.topic)}.` }];
/** Rows that start with a sample id, in id order: generate emits samples in the order their answers come back. */
const byId = (rows: readonly (readonly unknown[])[]) => [...rows].sort((a, b) => String(a[0]).localeCompare(String(b[0])));

const Record = z.object({
  question: z.string().min(10),
  answer: z.string(),
  difficulty: z.enum(["easy", "medium", "hard"]),
  score: z.number().int().min(1).max(5),
});

describe("generate", () => {
  it("fans n completions out into samples with distinct ids derived from parent, operator and index", async () => {
    const { llm } = await endpoint();
    const op = () => generate({ llm, prompt: ask, n: 3, seed: 11 });
    const first = await collect(op(), samples(2));
    const second = await collect(op(), samples(2));
    expect(first.out).toHaveLength(6);
    expect(first.rejects).toHaveLength(0);
    expect(new Set(first.out.map((s) => s.id)).size).toBe(6);
    expect(first.out.map((s) => s.id).sort()).toEqual(
      ["seed-0", "seed-1"].flatMap((parent) => [0, 1, 2].map((i) => childSampleId(parent, "generate", i))).sort(),
    );
    // Same ids and texts on a rerun; the order is that of the answers coming back, so compare by id.
    expect(byId(second.out.map((s) => [s.id, s.data.output]))).toEqual(byId(first.out.map((s) => [s.id, s.data.output])));
    const child = first.out[0]!;
    expect(child.data.topic).toBeDefined();
    expect(typeof child.data.output).toBe("string");
    expect(child.provenance).toMatchObject({ origin: "synthetic", depth: 1 });
    expect(child.provenance.parents).toHaveLength(1);
  });

  it("writes structured answers validated by the zod schema and records model, prompt hash, tokens and latency", async () => {
    const { llm } = await endpoint();
    const { out, rejects, metrics } = await collect(
      generate({ llm, prompt: ask, parse: Record, write: (parsed, sample) => ({ ...sample.data, ...parsed }), name: "qa" }),
      samples(),
    );
    expect(rejects).toHaveLength(0);
    expect(out).toHaveLength(6);
    for (const sample of out) {
      expect(Record.safeParse(sample.data).success).toBe(true);
      const step = sample.provenance.steps.at(-1)!;
      expect(step.op).toBe("qa");
      expect(step.model).toBe("sim-1");
      expect(step.promptHash).toMatch(/^[0-9a-f]{16}$/);
      expect(step.promptTokens).toBeGreaterThan(10);
      expect(step.completionTokens).toBeGreaterThan(5);
      expect(step.latencyMs).toBeGreaterThanOrEqual(0);
    }
    expect(metrics.total("llm.requests")).toBe(6);
    expect(metrics.total("llm.prompt_tokens")).toBe(out.reduce((sum, s) => sum + s.provenance.steps.at(-1)!.promptTokens!, 0));
    expect(metrics.total("llm.completion_tokens")).toBe(out.reduce((sum, s) => sum + s.provenance.steps.at(-1)!.completionTokens!, 0));
  });

  it("falls back to json_object with the schema in the prompt when the endpoint lacks json_schema", async () => {
    const { llm } = await endpoint({}, { supportsJsonSchema: false });
    const { out, rejects } = await collect(generate({ llm, prompt: ask, parse: Record }), samples(3));
    expect(rejects).toHaveLength(0);
    for (const sample of out) expect(Record.safeParse(sample.data.output).success).toBe(true);
  });

  it("sends every bad answer to rejects with its reason and raw text", async () => {
    const kinds: Array<[string, SimulatorOptions, Partial<Parameters<typeof generate>[0]>]> = [
      ["refusal", { faults: { refusal: 1 } }, {}],
      ["refusal", { faults: { refusal: 1 } }, { parse: Record }],
      ["truncated", { faults: { length: 1 } }, {}],
      ["empty", { faults: { empty: 1 } }, {}],
      ["unparseable", { faults: { malformed: 1 } }, { parse: Record, repair: false }],
    ];
    for (const [reason, simOptions, extra] of kinds) {
      const { llm } = await endpoint(simOptions);
      const { out, rejects } = await collect(generate({ llm, prompt: ask, ...extra }), samples());
      const wanted = rejects.filter((r) => r.reason === reason);
      expect(wanted.length, `${reason} with ${JSON.stringify(simOptions)}`).toBeGreaterThan(0);
      expect(out.length + rejects.length).toBe(6);
      for (const reject of rejects) {
        expect(reject.reason).toBe(reason);
        expect(reject.operator).toBe("generate");
        expect(reject.raw).toBeTypeOf("string");
        expect(reject.sample.provenance.parents).toHaveLength(1);
        if (reason !== "empty") expect(reject.raw!.length).toBeGreaterThan(0);
      }
      if (reason === "refusal") for (const r of rejects) expect(r.raw).toMatch(/as an AI language model/);
      // Prose-wrapped JSON is read leniently; only what no reading can parse is rejected.
      if (reason === "unparseable") for (const r of rejects) expect(() => JSON.parse(r.raw!)).toThrow();
    }
  });

  it("names the path of a schema mismatch, and repairs unparseable JSON with one more request", async () => {
    const { llm } = await endpoint();
    const Coded = z.object({ code: z.string().regex(/^[A-Z]{3}-\d{2}$/), note: z.string() });
    const mismatch = await collect(generate({ llm, prompt: ask, parse: Coded }), samples(2));
    expect(mismatch.rejects).toHaveLength(2);
    for (const r of mismatch.rejects) {
      expect(r.reason).toBe("schema_mismatch");
      expect(r.message).toMatch(/^code: /);
      expect(JSON.parse(r.raw!)).toHaveProperty("code");
    }

    const broken = await endpoint({ faults: { malformed: 0.5 }, seed: 5 });
    const repaired = await collect(generate({ llm: broken.llm, prompt: ask, parse: Record }), samples());
    expect(broken.sim.stats().malformed).toBeGreaterThan(0);
    expect(repaired.out.length + repaired.rejects.length).toBe(6);
    expect(repaired.out.length).toBeGreaterThan(6 - broken.sim.stats().malformed);
    expect(repaired.out.some((s) => s.provenance.steps.at(-1)!.note?.includes("json repaired"))).toBe(true);
  });

  it("retries bad answers with a new seed and cache slot, up to retryBadAnswers times", async () => {
    const options: SimulatorOptions = { faults: { refusal: 0.5 }, seed: 9 };
    const plain = await endpoint(options);
    const once = await collect(generate({ llm: plain.llm, prompt: ask, n: 2 }), samples());
    const retrying = await endpoint(options);
    const retried = await collect(generate({ llm: retrying.llm, prompt: ask, n: 2, retryBadAnswers: 6 }), samples());
    expect(once.rejects.length).toBeGreaterThan(2);
    expect(retried.rejects).toHaveLength(0);
    expect(retried.out).toHaveLength(12);
    const retries = retried.out.map((s) => Number(/bad answer retries: (\d+)/.exec(s.provenance.steps.at(-1)!.note ?? "")?.[1] ?? 0));
    expect(retries.reduce((a, b) => a + b, 0)).toBe(retrying.sim.stats().requests - 6);
    expect(retried.metrics.total("llm.requests")).toBe(retrying.sim.stats().requests);
  });

  it("passes a parser's own drop reasons through, with the raw text", async () => {
    const { llm } = await endpoint();
    const { out, rejects } = await collect(
      generate({
        llm,
        prompt: ask,
        parse: (text, sample) => (String(sample.data.topic).startsWith("b") ? drop("topic_starts_with_b", { value: text.length }) : text.toUpperCase()),
      }),
      samples(),
    );
    expect(rejects.map((r) => r.reason)).toEqual(["topic_starts_with_b", "topic_starts_with_b", "topic_starts_with_b"]);
    expect(rejects.every((r) => r.raw && r.value === r.raw.length)).toBe(true);
    expect(out.every((s) => s.data.output === String(s.data.output).toUpperCase())).toBe(true);
  });

  it("sends zero requests when the same graph runs again over its cache", async () => {
    const { sim } = await endpoint();
    const cache = join(dir, "cache");
    const run = async () => {
      const llm = createLlm({ baseURL: sim.url, model: "sim-1", cache, concurrency: 8 });
      try {
        return await collect(generate({ llm, prompt: ask, parse: Record, n: 2 }), samples());
      } finally {
        await llm.close();
      }
    };
    const first = await run();
    const sentFirst = sim.stats().requests;
    const second = await run();
    expect(sentFirst).toBe(6);
    expect(sim.stats().requests).toBe(sentFirst);
    expect(second.metrics.total("llm.requests")).toBe(0);
    expect(second.metrics.total("llm.cache_hits")).toBe(6);
    expect(byId(second.out.map((s) => [s.id, s.data]))).toEqual(byId(first.out.map((s) => [s.id, s.data])));
  });

  it("rejects with llm_error a request the endpoint refuses; an endpoint that cannot serve stops the run instead; the API key never gets out", async () => {
    const key = "sk-live-SUPERSECRETKEY000111222333";
    const logs: string[] = [];
    const strict = await endpoint({}, { apiKey: key });
    const refused = await collect(generate({ llm: strict.llm, prompt: ask, temperature: 9 }), samples(2), { log: (line) => logs.push(line) });
    expect(refused.out).toHaveLength(0);
    expect(refused.rejects.map((r) => r.reason)).toEqual(["llm_error", "llm_error"]);
    expect(refused.rejects[0]!.message).toMatch(/400 'temperature' must be a number between 0 and 2/);

    // A wrong key is no verdict on the samples: an EndpointError stops the run, nothing is rejected.
    const { llm } = await endpoint({ apiKey: "sk-other" }, { apiKey: key });
    const badKey = (await collect(generate({ llm, prompt: ask, n: 2 }), samples(2), { log: (line) => logs.push(line) }).catch((e: unknown) => e)) as Error;
    expect(badKey).toBeInstanceOf(EndpointError);
    expect(badKey.message).toMatch(/401 Incorrect API key provided/);

    // Nor is an endpoint that answers 500 to everything: once its retries (and outageSeconds) are spent, the run stops.
    const down = await endpoint({ faults: { "500": 1 } }, { maxRetries: 2, apiKey: key, outageSeconds: 0 });
    const outage = (await collect(generate({ llm: down.llm, prompt: ask }), samples(2), { log: (line) => logs.push(line) }).catch((e: unknown) => e)) as Error;
    expect(outage).toBeInstanceOf(EndpointError);
    expect(outage.message).toMatch(/500 .*not waiting for it/);
    expect(logs.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(refused.rejects) + badKey.message + outage.message + logs.join("\n")).not.toContain("SUPERSECRET");
  });

  it("reports every llm metric into the run and keeps its params serialisable", async () => {
    const { llm } = await endpoint({ faults: { "429": 0.3 }, faultRetryAfterMs: 1, seed: 4 }, { prices: { "sim-1": { input: 1, output: 1 } } });
    const op = generate({ llm, prompt: ask, parse: Record, temperature: 0.2, maxTokens: 400 });
    const { out, metrics } = await collect(op, samples());
    expect(out).toHaveLength(6);
    const totals = metrics.snapshot().totals;
    expect(totals["llm.requests"]).toBe(6 + totals["llm.retries"]!);
    expect(totals["llm.rate_limited"]).toBe(totals["llm.retries"]);
    expect(totals["llm.rate_limited"]).toBeGreaterThan(0);
    expect(totals["llm.cost_usd"]).toBeCloseTo((totals["llm.prompt_tokens"]! + totals["llm.completion_tokens"]!) / 1e6, 12);
    const params = op.meta.params as Record<string, unknown>;
    expect(JSON.parse(JSON.stringify(params))).toEqual(params);
    expect(params).toMatchObject({ model: "sim-1", temperature: 0.2, n: 1, maxTokens: 400, structured: "json_schema" });
    expect(JSON.stringify(params)).not.toContain("baseURL");
  });
});
