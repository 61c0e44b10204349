// The Self-Instruct loop's folded waves kept in Redis for a scaled-out run. The promise: whichever worker
// takes wave w, after any number of tries of earlier waves by any workers that died before committing
// (each try with answers of its own, as a real endpoint gives), it starts from exactly the committed waves
// 0..w-1: the same history, pool (reservoir draws included), accepted count and next round as a process
// that folds only the committed records. A worker must not trust what it folded itself in a try that
// another worker then redid differently. Against the tests' own redis-server.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BootstrapLoop } from "../../graphs/lib/self-instruct-steps.ts";
import type { RunContext } from "../../src/index.ts";
import { RedisRecords } from "../../src/scale/shared-records.ts";
import { skipRedis } from "../support/redis-server.ts";
import { suiteRedis } from "../support/suite-redis.ts";

const redis = suiteRedis("rxsynth-loop-");
let runs = 0;

/** A wave's try: which worker, what its answers accepted, whether it got as far as the fold, and whether it committed. */
interface Try {
  readonly worker: number;
  readonly accepted: readonly string[];
  readonly folds: boolean;
  readonly commits: boolean;
}

const POOL_LIMIT = 5;
// In shared mode the loop writes to Redis and never looks at the run context.
const noContext = undefined as unknown as RunContext;

function sharedLoop(records: RedisRecords): BootstrapLoop {
  const loop = new BootstrapLoop(POOL_LIMIT, 7);
  loop.share(records);
  return loop;
}

const stateOf = (loop: BootstrapLoop) => ({ history: [...loop.history], pool: [...loop.pool], accepted: loop.accepted, nextRound: loop.nextRound });

describe.skipIf(skipRedis)("the loop's waves shared in Redis", () => {
  it("any workers, any failed tries with answers of their own: each wave starts from the committed waves before it", async () => {
    const instruction = fc.constantFrom("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l");
    const failedTry = fc.record({ worker: fc.nat(2), accepted: fc.array(instruction, { maxLength: 4 }), folds: fc.boolean(), commits: fc.constant(false) });
    const committingTry = fc.record({ worker: fc.nat(2), accepted: fc.array(instruction, { maxLength: 4 }), folds: fc.constant(true), commits: fc.constant(true) });
    const wave = fc.tuple(fc.array(failedTry, { maxLength: 2 }), committingTry).map(([failed, last]): Try[] => [...failed, last]);
    await fc.assert(
      fc.asyncProperty(fc.array(wave, { minLength: 1, maxLength: 8 }), async (waves) => {
        const records = new RedisRecords(redis.client, `t:{loop}:${runs++}`);
        const workers = [sharedLoop(records), sharedLoop(records), sharedLoop(records)];
        for (const [w, tries] of waves.entries()) {
          for (const attempt of tries) {
            const loop = workers[attempt.worker]!;
            await loop.sync(w);
            loop.rewind(w);
            const reference = sharedLoop(records);
            await reference.sync(w);
            reference.rewind(w);
            expect(stateOf(loop)).toEqual(stateOf(reference));
            loop.begin(w, 2);
            loop.enter();
            for (const accepted of attempt.accepted) loop.accept(accepted);
            // Killed before the barrier let the wave go: its rows were counted, the wave never folded.
            if (attempt.folds) loop.close();
            if (attempt.commits) await loop.save(noContext, "target");
          }
        }
      }),
      { seed: 1203, numRuns: 60 },
    );
  }, 60_000);

  it("a wave with no record while a later one is asked for is one clear error, not a silent restart", async () => {
    const records = new RedisRecords(redis.client, `t:{loop}:${runs++}`);
    await records.put(1, JSON.stringify({ wave: 1, firstRound: 2, rounds: 2, accepted: 0, instructions: [] }));
    await expect(sharedLoop(records).sync(2)).rejects.toThrow(/wave 0 of this run has no record in Redis/);
  });
});
