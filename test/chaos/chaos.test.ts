import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { COMMIT_STEPS } from "../../src/index.ts";
import type { Llm } from "../../src/llm/index.ts";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";
import { chaosLlm, isClean, crashRange, limitRange, LOOP_WAVE_ROWS, type ChaosSpec } from "../fixtures/chaos-graphs.ts";
import { referenceOutput, runChaosCase, runChild, type ChaosCase, type ChaosResult, type ChaosStep } from "../fixtures/chaos-sequence.ts";

// Random graphs, budgets, checkpoints and sequences of crashes and --limit runs, each ended by a full
// run: the folder must then hold exactly the uninterrupted run's rows, each once, as the manifest says,
// and no run may have had more in flight than its budget. Seeded, so a failure prints a case to replay.

let dir: string;
let sim: Simulator;
let llm: Llm;
beforeAll(async () => {
  // The loop kind builds self-instruct, which talks to OPENAI_BASE_URL when set: empty, it starts the
  // built-in simulator, whose answers are the same in every run (and in the driver's children).
  vi.stubEnv("OPENAI_BASE_URL", "");
  dir = await mkdtemp(join(tmpdir(), "rxsynth-chaos-"));
  sim = await startSimulator({ latencyMs: 1, seed: 7, faults: { "429": 0.1, "500": 0.1 }, faultRetryAfterMs: 1 });
  llm = chaosLlm(sim.url);
});
afterAll(async () => {
  await llm.close();
  await sim.close();
  await rm(dir, { recursive: true, force: true });
  vi.unstubAllEnvs();
});

const specArb: fc.Arbitrary<ChaosSpec> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("source" as const), records: fc.integer({ min: 5, max: 60 }), width: fc.constant(1), budget: fc.integer({ min: 2, max: 32 }), shardRows: fc.integer({ min: 4, max: 40 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("fanout" as const), records: fc.integer({ min: 3, max: 20 }), width: fc.integer({ min: 1, max: 6 }), budget: fc.integer({ min: 2, max: 32 }), shardRows: fc.integer({ min: 4, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("llm" as const), records: fc.integer({ min: 3, max: 12 }), width: fc.constant(1), budget: fc.integer({ min: 2, max: 32 }), shardRows: fc.integer({ min: 4, max: 40 }) }) },
);
// The generative loop: 10-60 rows (1-6 waves) of 1 or 2 rounds a wave, and a budget from one wave's most
// rows (the least self-instruct accepts) to a wave and a round. A wave's real rows stay well under its
// most (instructions are dropped before their instances), so the loop's peaks sit far below the budget.
const loopSpecArb: fc.Arbitrary<ChaosSpec> = fc.integer({ min: 1, max: 2 }).chain((rounds) =>
  fc.record({ kind: fc.constant("loop" as const), records: fc.integer({ min: 10, max: 60 }), width: fc.constant(rounds), budget: fc.integer({ min: rounds * LOOP_WAVE_ROWS, max: (rounds + 1) * LOOP_WAVE_ROWS }), shardRows: fc.integer({ min: 4, max: 40 }) }),
);
// A --limit counts source records: the loop's are its waves.
const stepArb = (spec: ChaosSpec): fc.Arbitrary<ChaosStep> =>
  fc.oneof(
    fc.record({ type: fc.constant("crash" as const), step: fc.constantFrom(...COMMIT_STEPS), nth: fc.integer({ min: 1, max: crashRange(spec) }) }),
    fc.record({ type: fc.constant("limit" as const), limit: fc.integer({ min: 1, max: limitRange(spec) }) }),
  );
const caseOf = (specs: fc.Arbitrary<ChaosSpec>): fc.Arbitrary<ChaosCase> =>
  specs.chain((spec) => fc.record({ spec: fc.constant(spec), checkpointRows: fc.integer({ min: 3, max: 50 }), steps: fc.array(stepArb(spec), { minLength: 1, maxLength: 3 }) }));
const caseArb = caseOf(specArb);

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

  it("random crash / --limit sequences of the generative loop end in exactly its uninterrupted dataset, within budget", async () => {
    await fc.assert(
      fc.asyncProperty(caseOf(loopSpecArb), async (c) => {
        const at = join(dir, `loop-${caseNumber++}`);
        const reference = await referenceOutput(c.spec, join(at, "reference"), c.checkpointRows);
        expect(reference.accepted).toHaveLength(c.spec.records);
        const result = await runChaosCase(c, join(at, "chaos"), reference);
        expectSound(result);
        await rm(at, { recursive: true, force: true });
      }),
      { seed: 20261204, numRuns: 16, endOnFailure: true, timeout: 20_000 },
    );
  }, 120_000);

  // Found by the loop property: a --limit run on a finished folder, the limit already reached by its
  // watermark, never opens the source, so self-instruct's loop never reloads its saved waves; it used to
  // commit that empty state and an incomplete manifest anyway, and every later run was refused.
  it("a --limit rerun of a finished generative-loop folder changes no file, and the folder still resumes to the same dataset", async () => {
    const spec: ChaosSpec = { kind: "loop", records: 15, width: 2, budget: 2 * LOOP_WAVE_ROWS, shardRows: 6 };
    const at = join(dir, `limit-rerun-${caseNumber++}`);
    const reference = await referenceOutput(spec, join(at, "reference"), 8);
    expect(reference.accepted).toHaveLength(15);
    // The first --limit 1 run finishes the loop (15 rows come in one wave); the second must leave it as it is.
    const steps: ChaosStep[] = [{ type: "limit", limit: 1 }, { type: "limit", limit: 1 }];
    expectSound(await runChaosCase({ spec, checkpointRows: 8, steps }, join(at, "chaos"), reference));
  }, 30_000);

  // Real kills: a child process SIGKILLed part-way (at a seeded random time after its first manifest,
  // or by RXSYNTH_FAULT exactly after a commit step), then resumed to completion.
  // Each graph runs for longer after its first manifest than the latest kill time drawn, so every kill
  // lands part-way, and the tests say so (a kill that came too late would test nothing).
  const rng = fc.sample(fc.record({ afterMs: fc.integer({ min: 0, max: 60 }), nth: fc.integer({ min: 1, max: 3 }) }), { seed: 42, numRuns: 3 });
  const loopRng = fc.sample(fc.record({ afterMs: fc.integer({ min: 0, max: 200 }), step: fc.constantFrom("shards", "state", "manifest"), nth: fc.integer({ min: 1, max: 3 }) }), { seed: 43, numRuns: 2 });
  const kills: { name: string; spec: ChaosSpec; checkpointRows: number; steps: ChaosStep[]; env?: NodeJS.ProcessEnv }[] = [
    { name: "fan-out, kill -9 at a random time, then --limit, then full", spec: { kind: "fanout", records: 300, width: 4, budget: 8, shardRows: 20 }, checkpointRows: 9, steps: [{ type: "kill", afterMs: rng[0]!.afterMs }, { type: "limit", limit: 100 }] },
    { name: "llm with transient faults, kill -9 at a random time", spec: { kind: "llm", records: 200, width: 1, budget: 6, shardRows: 10 }, checkpointRows: 5, steps: [{ type: "kill", afterMs: rng[1]!.afterMs }] },
    // The whole loop takes a few hundred ms once started, so its kill lands within the first 200 ms.
    { name: "generative loop, kill -9 at a random time, then a 2-wave --limit, then full", spec: { kind: "loop", records: 60, width: 1, budget: LOOP_WAVE_ROWS, shardRows: 7 }, checkpointRows: 5, steps: [{ type: "kill", afterMs: loopRng[0]!.afterMs }, { type: "limit", limit: 2 }] },
  ];
  for (const k of kills) {
    it(`${k.name} (${(k.steps[0] as { afterMs: number }).afterMs} ms after the first manifest)`, async () => {
      const at = join(dir, `kill-${caseNumber++}`);
      const reference = await referenceOutput(k.spec, join(at, "reference"), k.checkpointRows, llm);
      const result = await runChaosCase({ spec: k.spec, checkpointRows: k.checkpointRows, steps: k.steps }, join(at, "chaos"), reference, { llm, llmUrl: sim.url });
      expectSound(result);
      expect(result.kills, "the child was killed part-way, not after it finished").toBe(1);
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

  it(`RXSYNTH_FAULT=${loopRng[1]!.step}:${loopRng[1]!.nth} kills a generative-loop child exactly after a commit step; the resume completes it`, async () => {
    const spec: ChaosSpec = { kind: "loop", records: 50, width: 2, budget: 2 * LOOP_WAVE_ROWS, shardRows: 9 };
    const at = join(dir, `fault-${caseNumber++}`);
    const reference = await referenceOutput(spec, join(at, "reference"), 6);
    const killed = await runChild(spec, join(at, "chaos"), 6, { env: { RXSYNTH_FAULT: `${loopRng[1]!.step}:${loopRng[1]!.nth}` } });
    expect(killed.killed, killed.stderr).toBe(true);
    const result = await runChaosCase({ spec, checkpointRows: 6, steps: [] }, join(at, "chaos"), reference);
    expectSound(result);
  }, 90_000);
});
