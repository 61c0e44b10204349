import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMIT_STEPS } from "../../src/index.ts";
import type { Llm } from "../../src/llm/index.ts";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";
import { chaosLlm, isClean, type ChaosSpec } from "../fixtures/chaos-graphs.ts";
import { referenceOutput, runChaosCase, runChild, type ChaosCase, type ChaosResult, type ChaosStep } from "../fixtures/chaos-sequence.ts";

// Random graphs, budgets, checkpoints and sequences of crashes and --limit runs, each ended by a full
// run: the folder must then hold exactly the uninterrupted run's rows, each once, as the manifest says,
// and no run may have had more in flight than its budget. Seeded, so a failure prints a case to replay.

let dir: string;
let sim: Simulator;
let llm: Llm;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rxsynth-chaos-"));
  sim = await startSimulator({ latencyMs: 1, seed: 7, faults: { "429": 0.1, "500": 0.1 }, faultRetryAfterMs: 1 });
  llm = chaosLlm(sim.url);
});
afterAll(async () => {
  await llm.close();
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});

const specArb: fc.Arbitrary<ChaosSpec> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("source" as const), records: fc.integer({ min: 5, max: 60 }), width: fc.constant(1), budget: fc.integer({ min: 2, max: 32 }), shardRows: fc.integer({ min: 4, max: 40 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("fanout" as const), records: fc.integer({ min: 3, max: 20 }), width: fc.integer({ min: 1, max: 6 }), budget: fc.integer({ min: 2, max: 32 }), shardRows: fc.integer({ min: 4, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("llm" as const), records: fc.integer({ min: 3, max: 12 }), width: fc.constant(1), budget: fc.integer({ min: 2, max: 32 }), shardRows: fc.integer({ min: 4, max: 40 }) }) },
);
const stepArb = (records: number): fc.Arbitrary<ChaosStep> =>
  fc.oneof(
    fc.record({ type: fc.constant("crash" as const), step: fc.constantFrom(...COMMIT_STEPS), nth: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ type: fc.constant("limit" as const), limit: fc.integer({ min: 1, max: records }) }),
  );
const caseArb: fc.Arbitrary<ChaosCase> = specArb.chain((spec) =>
  fc.record({ spec: fc.constant(spec), checkpointRows: fc.integer({ min: 3, max: 50 }), steps: fc.array(stepArb(spec.records), { minLength: 1, maxLength: 3 }) }),
);

function expectSound(result: ChaosResult) {
  expect(result.midway).toEqual([]);
  expect(result.overBudget).toEqual([]);
  expect(isClean(result.findings), JSON.stringify(result.findings)).toBe(true);
}

let caseNumber = 0;
describe("chaos", () => {
  it("random crash / --limit sequences end in exactly the uninterrupted run's output, within budget", async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const at = join(dir, `case-${caseNumber++}`);
        const reference = await referenceOutput(c.spec, join(at, "reference"), c.checkpointRows, llm);
        const result = await runChaosCase(c, join(at, "chaos"), reference, { llm });
        expectSound(result);
        await rm(at, { recursive: true, force: true });
      }),
      // A run that never settles (a hang) fails its case after 20 s instead of the whole test timing out.
      { seed: 20261202, numRuns: 24, endOnFailure: true, timeout: 20_000 },
    );
  }, 120_000);

  // Real kills: a child process SIGKILLed part-way (at a seeded random time after its first manifest,
  // or by RXSYNTH_FAULT exactly after a commit step), then resumed to completion.
  const rng = fc.sample(fc.record({ afterMs: fc.integer({ min: 0, max: 400 }), nth: fc.integer({ min: 1, max: 3 }) }), { seed: 42, numRuns: 3 });
  const kills: { name: string; spec: ChaosSpec; checkpointRows: number; steps: ChaosStep[]; env?: NodeJS.ProcessEnv }[] = [
    { name: "fan-out, kill -9 at a random time, then --limit, then full", spec: { kind: "fanout", records: 60, width: 4, budget: 8, shardRows: 20 }, checkpointRows: 9, steps: [{ type: "kill", afterMs: rng[0]!.afterMs }, { type: "limit", limit: 20 }] },
    { name: "llm with transient faults, kill -9 at a random time", spec: { kind: "llm", records: 40, width: 1, budget: 6, shardRows: 10 }, checkpointRows: 5, steps: [{ type: "kill", afterMs: rng[1]!.afterMs }] },
  ];
  for (const k of kills) {
    it(`${k.name} (${(k.steps[0] as { afterMs: number }).afterMs} ms after the first manifest)`, async () => {
      const at = join(dir, `kill-${caseNumber++}`);
      const reference = await referenceOutput(k.spec, join(at, "reference"), k.checkpointRows, llm);
      const result = await runChaosCase({ spec: k.spec, checkpointRows: k.checkpointRows, steps: k.steps }, join(at, "chaos"), reference, { llm, llmUrl: sim.url });
      expectSound(result);
    }, 90_000);
  }

  it(`RXSYNTH_FAULT=shards:${rng[2]!.nth} kills a child exactly after a commit step; the resume completes it`, async () => {
    const spec: ChaosSpec = { kind: "fanout", records: 40, width: 3, budget: 5, shardRows: 10 };
    const at = join(dir, `fault-${caseNumber++}`);
    const reference = await referenceOutput(spec, join(at, "reference"), 7, llm);
    const killed = await runChild(spec, join(at, "chaos"), 7, { env: { RXSYNTH_FAULT: `shards:${rng[2]!.nth}` } });
    expect(killed.killed, killed.stderr).toBe(true);
    const result = await runChaosCase({ spec, checkpointRows: 7, steps: [] }, join(at, "chaos"), reference, { llm });
    expectSound(result);
  }, 90_000);
});
