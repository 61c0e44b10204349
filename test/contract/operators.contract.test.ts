// One contract over every exported operator (contract.ts says what it checks), run over the cases in
// cases.ts; and the contract run over operators broken on purpose (broken.ts), which it must reject.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLlm } from "../../src/llm/index.ts";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";
import { skippedWithoutSandbox } from "../support/sandbox.ts";
import { brokenCases, soundCases } from "./broken.ts";
import { endpoint, libraryCases, operatorCases } from "./cases.ts";
import {
  checkAccounting,
  checkCase,
  checkContract,
  checkMalformed,
  checkNotMutated,
  checkOutcomes,
  checkProvenance,
  checkReasons,
  checkTeardown,
  checkUpstreamError,
  observe,
  type Observation,
  type Violation,
} from "./contract.ts";

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ port: 0, latencyMs: 1, seed: 7 });
  endpoint.llm = createLlm({ model: "rxsynth-sim", baseURL: simulator.url, concurrency: 8, maxRetries: 1, backoffBaseMs: 1 });
});
afterAll(async () => {
  await endpoint.llm?.close();
  await simulator.close();
});

describe.each(operatorCases())("$name", (c) => {
  // executeFilter runs its programs in the sandbox, which needs bubblewrap.
  if (c.name === "executeFilter" && skippedWithoutSandbox()) return;
  let observed: Observation;
  beforeAll(async () => {
    observed = await observe(c);
  });
  /** The run's own failure stands in for every check of that run. */
  const ofRun = (check: (obs: Observation) => Violation[]) => (observed.failure ? [observed.failure] : check(observed));

  it("completes over its valid inputs", () => {
    expect(observed.failure).toBeUndefined();
  });

  it("keeps or rejects each valid input as its case declares, never with reason error", () => {
    expect(ofRun((obs) => checkOutcomes(c, obs))).toEqual([]);
  });

  it("does not mutate its input", () => {
    expect(ofRun(checkNotMutated)).toEqual([]);
  });

  it("accounts for every input: each is output, rejected, or the parent of an output or reject", () => {
    expect(ofRun((obs) => checkAccounting(c, obs))).toEqual([]);
  });

  it("rejects with snake_case reasons under its own name", () => {
    expect(ofRun((obs) => checkReasons(obs.rejects, obs.operator!.meta.name))).toEqual([]);
  });

  it("stamps one step naming itself on what it changed, and keeps lineage", () => {
    expect(ofRun((obs) => checkProvenance(c, obs))).toEqual([]);
  });

  it("turns malformed input into outputs or rejects with snake_case reasons, never a crash", async () => {
    expect(await checkMalformed(c)).toEqual([]);
  });

  it("forwards an upstream error downstream", async () => {
    expect(await checkUpstreamError(c)).toEqual([]);
  });

  it("unsubscribes upstream when its subscriber leaves, and emits, rejects and counts nothing after", async () => {
    expect(await checkTeardown(c)).toEqual([]);
  });
});

describe("the contract", () => {
  it.each(brokenCases)("rejects an operator that $defect ($name)", async (broken) => {
    const violations = await checkContract(broken);
    const kinds = [...new Set(violations.map((v) => v.kind))].sort();
    expect(kinds, JSON.stringify(violations, null, 2)).toEqual([...broken.violations].sort());
  });

  it.each(soundCases)("finds nothing wrong with $defect ($name)", async (sound) => {
    expect(await checkContract(sound)).toEqual([]);
  });
});

describe("the contract suite", () => {
  it("has a case for every operator factory the library exports", async () => {
    const library = await import("../../operators/index.ts");
    const factories = Object.entries(library)
      .filter(([name, value]) => typeof value === "function" && /^(\w+Filter|\w+Dedup|\w+Tracker|generate|llmMap|\w*[jJ]udge\w*)$/.test(name))
      .map(([name]) => name);
    expect(factories.length).toBeGreaterThan(5);
    expect(factories.filter((name) => !(name in libraryCases))).toEqual([]);
  });

  it("has a case for every define* operator helper the engine exports", async () => {
    const engine = await import("../../src/index.ts");
    // defineGraph defines a graph, not an operator.
    const helpers = Object.keys(engine).filter((name) => /^define[A-Z]/.test(name) && name !== "defineGraph");
    const covered = new Set(operatorCases().map((c) => c.name));
    expect(helpers.length).toBeGreaterThan(3);
    expect(helpers.filter((name) => !covered.has(name))).toEqual([]);
  });

  it.each(operatorCases())("declares an outcome for each of $name's valid inputs, some kept, none `error`", (c) => {
    expect(checkCase(c)).toEqual([]);
  });

  it.each(brokenCases)("declares a complete case for the broken $name", (c) => {
    expect(checkCase(c)).toEqual([]);
  });
});
