// Scale-out of a generative loop (Self-Instruct through the quickstart graph) with real processes. Each
// wave is a chunk, fed only once the wave before it is acknowledged; the folded waves and both dedup
// indexes live in Redis. Workers are SIGKILLed at seeded commit steps (shards renamed, operator state and
// the wave's record saved, manifest written before the acknowledgement), Redis restarts once, a worker
// starts late. The dataset must be the single-process run's, row for row (ids and data), because every
// worker's simulator gives the same answers: what differs is only who did which wave, and how often.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readRows } from "../../src/io/read.ts";
import { mulberry32 } from "../support/corpus.ts";
import { skipRedis } from "../support/redis-server.ts";
import { scaleCluster } from "../support/scale-cluster.ts";

const cluster = scaleCluster("rxsynth-scale-loop-");
const { cli, dir } = cluster;
// Every answer from the worker's own simulator, none from a response cache another process filled.
const NO_CACHE = { RXSYNTH_CACHE_DIR: "off" };

/** Each row as its id, data and verdict (less the time it was given), sorted. */
const rowsOf = async (folder: string, prefix: "part" | "rejects") =>
  (await readRows(folder, { prefix }))
    .map((row) => {
      const { at: _at, ...verdict } = (row as { reject?: Record<string, unknown> }).reject ?? {};
      return JSON.stringify([row.id, row.data, verdict]);
    })
    .sort();

describe.skipIf(skipRedis)("rxsynth submit quickstart / worker: waves in order, the loop in Redis", () => {
  it("workers killed at seeded commit steps, Redis restarted, one started late: the single-process dataset, row for row", async () => {
    const options = ["--set", "target=120"];
    const single = join(dir, "single");
    const alone = await cli(["run", "quickstart", "--out", single, "--quiet", ...options], NO_CACHE).exit;
    expect(alone.code, alone.stderr).toBe(0);
    const expectedKept = await rowsOf(single, "part");
    const expectedRejected = await rowsOf(single, "rejects");
    expect(expectedKept).toHaveLength(120);

    const out = join(dir, "scaled");
    const run = "loop-test";
    const submit = await cli(["submit", "quickstart", "--redis", cluster.redis.url, "--run", run, "--out", out, "--reclaim-seconds", "1", "--chunk-size", "64", ...options]).exit;
    expect(submit.code, submit.stderr).toBe(0);
    // A loop's chunk is one wave whatever was asked.
    expect(submit.stderr).toMatch(/--chunk-size 64 is ignored, a chunk is one wave/);
    const worker = (env: Record<string, string> = {}) => cli(["worker", "--redis", cluster.redis.url, "--run", run], { ...NO_CACHE, ...env });

    const next = mulberry32(1203);
    const steps = ["shards", "state", "manifest"] as const;
    let killed = 0;
    for (let i = 0; i < 3; i++) {
      // The nth time this worker finishes that commit step, over all the waves it takes.
      const fault = `${steps[i]}:${1 + Math.floor(next() * 3)}`;
      const doomed = await worker({ RXSYNTH_FAULT: fault }).exit;
      if (doomed.signal === "SIGKILL") killed++;
      else expect(doomed.code, `${fault}: ${doomed.stderr}`).toBe(0);
      if (i === 1) {
        await cluster.redis.stop();
        await new Promise((done) => setTimeout(done, 300));
        await cluster.redis.restart();
      }
    }
    expect(killed).toBeGreaterThanOrEqual(2);
    const first = worker();
    const late = worker();
    for (const exit of await Promise.all([first.exit, late.exit])) expect(exit.code, exit.stderr).toBe(0);

    expect(await rowsOf(out, "part")).toEqual(expectedKept);
    expect(await rowsOf(out, "rejects")).toEqual(expectedRejected);

    const status = await cli(["status", "--redis", cluster.redis.url, "--run", run, "--json"]).exit;
    const report = JSON.parse(status.stdout) as { state: string; reclaimed: number; fed: number; done: number; spec: { chunkSize: number; maxQueued: number } };
    expect(report.state).toBe("complete");
    expect(report.spec).toMatchObject({ chunkSize: 1, maxQueued: 1 });
    expect(report.reclaimed).toBeGreaterThanOrEqual(killed);
    // One chunk per wave, and none fed past the wave that reached the target.
    expect(report.fed).toBe(report.done);
  }, 180_000);
});
