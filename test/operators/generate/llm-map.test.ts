import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError, collect, createSample, drop, type Sample } from "../../../src/index.ts";
import { createLlm, type Llm, type LlmOptions } from "../../../src/llm/index.ts";
import { startSimulator, type Simulator, type SimulatorOptions } from "../../../src/sim/index.ts";
import { llmMap } from "../../../operators/generate/llm-map.ts";

const sims: Simulator[] = [];
const clients: Llm[] = [];
async function endpoint(sim: SimulatorOptions = {}, client: Partial<LlmOptions> = {}): Promise<Llm> {
  const started = await startSimulator({ latencyMs: 1, ...sim });
  sims.push(started);
  const llm = createLlm({ baseURL: started.url, model: "sim-1", backoffBaseMs: 2, backoffMaxMs: 20, concurrency: 8, ...client });
  clients.push(llm);
  return llm;
}
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(sims.map((s) => s.close()));
});

const texts = ["Rivers carve valleys over millennia.", "Bees dance to share where flowers are.", "Jazz grew out of New Orleans."];
const samples = (): Sample[] => texts.map((text, i) => createSample({ id: `t${i}`, source: "texts", data: { text } }));
const ask = (sample: Sample) => [{ role: "user" as const, content: `Name the topic of: ${String(sample.data.text)}` }];
const Topic = z.object({ topic: z.string(), confidence: z.number().min(0).max(1) });

describe("llmMap", () => {
  it("annotates each sample in place: same id and depth, the answer in `write`, a step with model and tokens", async () => {
    const llm = await endpoint();
    const inputs = samples();
    const { out, rejects, metrics } = await collect(llmMap({ llm, name: "topic_label", prompt: ask, write: "topic" }), inputs);
    expect(rejects).toHaveLength(0);
    // Up to `concurrency` requests are in flight and each sample leaves when its answer is back: compare by id.
    expect(out.map((s) => s.id).sort()).toEqual(inputs.map((s) => s.id).sort());
    const inputsById = new Map(inputs.map((s) => [s.id, s]));
    for (const sample of out) {
      const input = inputsById.get(sample.id)!;
      expect(sample.data.text).toBe(input.data.text);
      expect(typeof sample.data.topic).toBe("string");
      expect(sample.provenance.depth).toBe(input.provenance.depth);
      const step = sample.provenance.steps.at(-1)!;
      expect(step).toMatchObject({ op: "topic_label", model: "sim-1" });
      expect(step.promptHash).toMatch(/^[0-9a-f]{16}$/);
      expect(step.completionTokens).toBeGreaterThan(0);
    }
    expect(metrics.total("llm.requests")).toBe(3);
  });

  it("asks for a zod schema as structured output, over json_object when the endpoint lacks json_schema", async () => {
    for (const supportsJsonSchema of [true, false]) {
      const llm = await endpoint({}, { supportsJsonSchema });
      const op = llmMap({ llm, prompt: ask, parse: Topic, write: (parsed, s) => ({ ...s.data, ...parsed }), schemaName: "topic" });
      const { out, rejects } = await collect(op, samples());
      expect(rejects).toHaveLength(0);
      for (const sample of out) expect(Topic.safeParse(sample.data).success).toBe(true);
      expect(op.meta.params).toMatchObject({ structured: supportsJsonSchema ? "json_schema" : "json_object" });
      expect(op.meta.name).toBe("llm_map");
    }
  });

  it("rejects bad answers with their reason and raw text", async () => {
    const kinds: Array<[string, SimulatorOptions, boolean]> = [
      ["refusal", { faults: { refusal: 1 } }, false],
      ["truncated", { faults: { length: 1 } }, false],
      ["empty", { faults: { empty: 1 } }, false],
      ["unparseable", { faults: { malformed: 1 } }, true],
    ];
    for (const [reason, simOptions, structured] of kinds) {
      const llm = await endpoint(simOptions);
      const op = structured ? llmMap({ llm, prompt: ask, parse: Topic }) : llmMap({ llm, prompt: ask });
      const { out, rejects } = await collect(op, samples());
      // Prose-wrapped JSON is read leniently; only what no reading can parse is rejected.
      expect(out.length, reason).toBe(structured ? 3 - rejects.length : 0);
      expect(rejects.length, reason).toBeGreaterThan(0);
      for (const reject of rejects) {
        expect(reject.reason).toBe(reason);
        expect(reject.raw).toBeTypeOf("string");
        if (reason !== "empty") expect(reject.raw!.length).toBeGreaterThan(0);
        if (structured) expect(() => JSON.parse(reject.raw!)).toThrow();
      }
    }
  });

  it("passes a parser's own drop reasons through, with the raw text", async () => {
    const llm = await endpoint();
    const { out, rejects } = await collect(
      llmMap({ llm, prompt: ask, parse: (text) => (text.length % 2 === 0 ? drop("even_length", { value: text.length }) : text.length) }),
      samples(),
    );
    expect(out.length + rejects.length).toBe(3);
    for (const reject of rejects) expect(reject).toMatchObject({ reason: "even_length", value: reject.raw!.length });
    for (const sample of out) expect(Number(sample.data.output) % 2).toBe(1);
  });

  it("refuses a missing client or prompt with a ConfigError", async () => {
    const llm = await endpoint();
    expect(() => llmMap({ llm: undefined as unknown as Llm, prompt: ask })).toThrow(ConfigError);
    expect(() => llmMap({ llm, prompt: "Name the topic" as unknown as typeof ask })).toThrow(ConfigError);
  });
});
