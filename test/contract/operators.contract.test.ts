// One contract over every exported operator: errors become rejects with reasons, teardown runs, the input
// is not mutated, every input is accounted for (in = out + rejected for one-to-one operators), provenance
// is stamped on what changed. Each case says how to build the operator and gives inputs it understands.
import { Subject } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLlm } from "../../src/llm/index.ts";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";
import { skippedWithoutSandbox } from "../support/sandbox.ts";
import { collect, createSample, memoryRunContext, withRunContext, type Operator, type Sample } from "../../src/index.ts";
import { endpoint, operatorCases, type OperatorCase } from "./cases.ts";

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ port: 0, latencyMs: 1, seed: 7 });
  endpoint.llm = createLlm({ model: "rxsynth-sim", baseURL: simulator.url, concurrency: 8, maxRetries: 1, backoffBaseMs: 1 });
});
afterAll(async () => {
  await endpoint.llm?.close();
  await simulator.close();
});

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}

function frozenInputs(c: OperatorCase): Sample[] {
  return c.samples().map((sample) => deepFreeze(sample));
}

const SNAKE_CASE = /^[a-z][a-z0-9_]*$/;

describe.each(operatorCases())("$name", (c) => {
  // executeFilter runs its programs in the sandbox, which needs bubblewrap.
  if (c.name === "executeFilter" && skippedWithoutSandbox()) return;
  it("does not mutate its input", async () => {
    const inputs = frozenInputs(c);
    const before = JSON.stringify(inputs);
    await collect(c.make(), inputs);
    expect(JSON.stringify(inputs)).toBe(before);
  });

  it("accounts for every input: each is output, rejected, or the parent of an output or reject", async () => {
    const inputs = frozenInputs(c);
    const operator: Operator = c.make();
    const { out, rejects, metrics } = await collect(operator, inputs);
    const counters = metrics.snapshot().operators.find((op) => op.name === operator.meta.name)!;
    expect(counters.in).toBe(inputs.length);
    expect(counters.out).toBe(out.length);
    expect(counters.rejected).toBe(rejects.length);
    const accounted = new Set<string>();
    for (const sample of [...out, ...rejects.map((r) => r.sample)]) {
      accounted.add(sample.id);
      for (const parent of sample.provenance.parents) accounted.add(parent);
    }
    for (const input of inputs) expect(accounted.has(input.id), `input ${input.id} vanished`).toBe(true);
    if (!c.fanOut) expect(out.length + rejects.length).toBe(inputs.length);
  });

  it("stamps a step naming itself on every sample it changed", async () => {
    const inputs = frozenInputs(c);
    const operator = c.make();
    const { out } = await collect(operator, inputs);
    const byId = new Map(inputs.map((s) => [s.id, s]));
    for (const sample of out) {
      const input = byId.get(sample.id);
      if (input && input.data === sample.data && input.provenance === sample.provenance) continue;
      const parentSteps = input ? input.provenance.steps.length : byId.get(sample.provenance.parents[0]!)!.provenance.steps.length;
      expect(sample.provenance.steps.length).toBe(parentSteps + 1);
      expect(sample.provenance.steps.at(-1)!.op).toBe(operator.meta.name);
    }
  });

  it("turns malformed input into rejects with snake_case reasons, never a crash", async () => {
    const malformed = [
      createSample({ id: "malformed-empty", source: "contract", data: {} }),
      createSample({ id: "malformed-types", source: "contract", data: { text: 42, instruction: null, output: ["x"], question: {}, answer: 7, code: 3 } }),
    ].map((s) => deepFreeze(s));
    const { out, rejects } = await collect(c.make(), [...frozenInputs(c).slice(0, 1), ...malformed]);
    for (const reject of rejects) expect(reject.reason).toMatch(SNAKE_CASE);
    expect(out.length + rejects.length).toBeGreaterThanOrEqual(3);
  });

  it("tears down upstream when its subscriber leaves", async () => {
    const context = memoryRunContext();
    const input = new Subject<Sample>();
    const emitted: Sample[] = [];
    const subscription = withRunContext(context, () => input.pipe(c.make()).subscribe((sample) => emitted.push(sample)));
    const [first] = frozenInputs(c);
    input.next(first!);
    subscription.unsubscribe();
    expect(input.observed).toBe(false);
    const countAtTeardown = emitted.length;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(emitted.length).toBe(countAtTeardown);
  });
});

describe("the contract suite", () => {
  it("has a case for every operator factory the library exports", async () => {
    const library = await import("../../operators/index.ts");
    const { libraryCases } = await import("./cases.ts");
    const factories = Object.entries(library)
      .filter(([name, value]) => typeof value === "function" && /^(\w+Filter|\w+Dedup|\w+Tracker|generate|llmMap|\w*[jJ]udge\w*)$/.test(name))
      .map(([name]) => name);
    expect(factories.length).toBeGreaterThan(5);
    expect(factories.filter((name) => !(name in libraryCases))).toEqual([]);
  });
});
