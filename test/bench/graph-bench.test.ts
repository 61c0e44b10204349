import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { map, type Observable } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchGraph } from "../../src/bench/graph-bench.ts";
import { defineAsyncMap, defineGraph, defineMap, type Sample } from "../../src/index.ts";
import { memorySource } from "../../src/io/index.ts";

let scratch: string;
const originalTmp = process.env.TMPDIR;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "bench-test-"));
});
afterAll(async () => {
  if (originalTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = originalTmp;
  await rm(scratch, { recursive: true, force: true });
});

/** A fixed amount of CPU work: `units` times the same loop, so two stages' costs stand in a known ratio. */
function work(units: number): number {
  let x = 0;
  for (let i = 0; i < units * 400_000; i++) x = (x * 31 + i) | 0;
  return x;
}

const benchFolders = async (dir: string) => (await readdir(dir)).filter((name) => name.startsWith("rxsynth-bench-"));

describe("benchGraph", () => {
  it("charges each sync stage its own body's time, not the stages after it, and names the stage samples queue for", async () => {
    const dir = await mkdtemp(join(scratch, "inproc-"));
    process.env.TMPDIR = dir;
    const graph = defineGraph({
      name: "timed",
      description: "known costs",
      defaults: {},
      build: () => ({
        sources: [memorySource("numbers", Array.from({ length: 40 }, (_, n) => ({ n })))],
        operators: [
          // Two sync stages in a row: the runner fuses them into direct calls, one inside the other's emit.
          defineMap({ name: "light", map: (s) => ({ data: { ...s.data, light: work(1) } }) }),
          defineMap({ name: "heavy", map: (s) => ({ data: { ...s.data, heavy: work(3) } }) }),
          // Plain RxJS, untimed, called inside heavy's emit: its work is nobody's, heavy's least of all.
          Object.assign((source: Observable<Sample>) => source.pipe(map((s) => (work(3), s))), { meta: { name: "plain_rxjs", version: "1", paramsHash: "-" } }),
          defineAsyncMap({ name: "wait", concurrency: 2, map: async (s) => (await sleep(25), { data: { ...s.data, waited: true } }) }),
        ],
      }),
    });
    const result = await benchGraph(graph, {}, {});
    const op = Object.fromEntries(result.operators.map((o) => [o.name, o]));
    expect(result).toMatchObject({ graph: "timed", status: "complete", accepted: 40, rejected: 0, sourceRecords: 40 });
    expect(op.light).toMatchObject({ kind: "sync", in: 40, out: 40 });
    expect(op.plain_rxjs).toMatchObject({ kind: "other", busyS: 0 });
    // Three times the work, three times the time (a machine busy with other work stretches both alike); were
    // the stage after it charged to `light`, `light` would take longer than `heavy`.
    const ratio = op.heavy!.busyS / op.light!.busyS;
    expect(ratio).toBeGreaterThan(2);
    expect(ratio).toBeLessThan(4.5);
    expect(op.heavy!.meanMs).toBeCloseTo((op.heavy!.busyS / 40) * 1_000, 6);
    // One thread runs every sync stage: their times cannot add up to more than the run.
    expect(op.light!.busyS + op.heavy!.busyS).toBeLessThan(result.elapsedS);
    // 40 samples of 25 ms, two at a time: about half a second busy, a second of sample-time in flight.
    expect(op.wait).toMatchObject({ kind: "async", in: 40, out: 40 });
    expect(op.wait!.inFlightS).toBeGreaterThanOrEqual(1.0);
    expect(op.wait!.busyS).toBeGreaterThanOrEqual(0.5);
    expect(op.wait!.busyS).toBeLessThan(op.wait!.inFlightS);
    expect(op.wait!.meanMs).toBeGreaterThanOrEqual(25);
    expect(op.wait!.queuedS).toBeGreaterThan(1);
    expect(result.bottleneck).toBe("wait");
    expect(result.bottleneckBy).toBe("queued");
    expect(result.samplesPerS).toBeCloseTo(40 / result.elapsedS, 6);
    expect(result.llm).toMatchObject({ requests: 0, seconds: 0, timeShare: 0 });
    expect(result.memory.peakRssBytes).toBeGreaterThan(10_000_000);
    expect(await benchFolders(dir)).toEqual([]);
  });

  it("removes its temporary folder when the graph fails", async () => {
    const dir = await mkdtemp(join(scratch, "fails-"));
    process.env.TMPDIR = dir;
    const graph = defineGraph({
      name: "broken",
      description: "fails at once",
      defaults: {},
      build: () => ({
        sources: [memorySource("numbers", [{ n: 1 }])],
        operators: [defineMap({ name: "boom", failFast: true, map: () => { throw new Error("boom"); } })],
      }),
    });
    await expect(benchGraph(graph, {}, {})).rejects.toThrow(/boom/);
    expect(await benchFolders(dir)).toEqual([]);
  });
});
