import { execFile, spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { map, type Observable } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchGraph } from "../../src/bench/graph-bench.ts";
import { defineAsyncMap, defineGraph, defineMap, type Sample } from "../../src/index.ts";
import { memorySource } from "../../src/io/index.ts";
import { startSimulator } from "../../src/sim/index.ts";

const exec = promisify(execFile);
const CLI = join(import.meta.dirname, "..", "..", "bin", "rxsynth.mjs");

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

/** The CLI in a child process, offline, with its own temporary folder. */
async function rxsynth(args: string[], tmp: string, env: NodeJS.ProcessEnv = {}) {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, NO_COLOR: "1", ...env };
  delete childEnv.OPENAI_BASE_URL;
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env: childEnv, timeout: 90_000, killSignal: "SIGKILL" });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failure.code ?? -1, stdout: failure.stdout ?? "", stderr: failure.stderr ?? "" };
  }
}

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

describe("rxsynth bench", () => {
  it("benches quickstart into a temporary folder it removes, writing the documented JSON with the bottleneck named", async () => {
    const dir = await mkdtemp(join(scratch, "cli-"));
    const json = join(dir, "bench.json");
    const outcome = await rxsynth(["bench", "quickstart", "--limit", "20", "--json", json], dir);
    expect(outcome.code, outcome.stderr).toBe(0);
    const result = JSON.parse(await readFile(json, "utf8")) as Record<string, unknown> & {
      operators: Array<Record<string, unknown>>;
      llm: Record<string, number>;
      memory: Record<string, number>;
    };
    expect(Object.keys(result)).toEqual(
      expect.arrayContaining(["kind", "graph", "status", "elapsedS", "accepted", "rejected", "samplesPerS", "operators", "bottleneck", "llm", "memory"]),
    );
    expect(result).toMatchObject({ kind: "graph", graph: "quickstart", limit: 20 });
    expect(result.samplesPerS).toBeGreaterThan(0);
    for (const op of result.operators) {
      expect(Object.keys(op)).toEqual(expect.arrayContaining(["name", "kind", "in", "out", "rejected", "outPerS", "busyS", "busyShare", "meanMs", "queuedS"]));
    }
    const names = result.operators.map((op) => op.name);
    expect(names).toContain(result.bottleneck);
    expect(result.llm.requests).toBeGreaterThan(0);
    expect(result.llm.seconds).toBeGreaterThan(0);
    expect(result.llm.timeShare).toBeGreaterThan(0);
    expect(result.llm.timeShare).toBeLessThanOrEqual(1);
    expect(result.memory.peakRssBytes).toBeGreaterThan(50_000_000);
    expect(outcome.stdout).toContain(`bottleneck: ${String(result.bottleneck)}`);
    expect(outcome.stdout).toMatch(/samples\/s/);
    expect(await benchFolders(dir)).toEqual([]);
  }, 60_000);

  it("stops cleanly on SIGTERM, removing its temporary folder", async () => {
    const dir = await mkdtemp(join(scratch, "term-"));
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: dir };
    delete env.OPENAI_BASE_URL;
    const child = spawn(process.execPath, [CLI, "bench", "quickstart", "--set", "target=100000", "-q"], { env, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // Until the run is under way: its folder exists and the simulator answers.
    for (let i = 0; i < 300 && (await benchFolders(dir)).length === 0; i++) await sleep(100);
    expect(await benchFolders(dir)).toHaveLength(1);
    // Mid-run: the quickstart's waves are under way (100,000 rows would take many minutes).
    await sleep(800);
    child.kill("SIGTERM");
    expect(await exited).toBe(143);
    expect(await benchFolders(dir)).toEqual([]);
  }, 60_000);

  it("sweeps an endpoint from the command line into JSON, and says in one line what is wrong with an endpoint or flags", async () => {
    const dir = await mkdtemp(join(scratch, "endpoint-"));
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const port = (server.address() as { port: number }).port;
    await new Promise((resolve) => server.close(resolve));
    const sim = await startSimulator({ port: 0, latencyMs: 100, maxConcurrency: 4, models: ["bench-model"] });
    try {
      const json = join(dir, "sweep.json");
      // Three processes at once: most of each is starting up.
      const [sweep, unreachable, both] = await Promise.all([
        rxsynth(["bench", "endpoint", "--base-url", sim.url, "--levels", "1,4,16", "--requests", "4", "--seconds", "0.2", "--json", json], dir),
        rxsynth(["bench", "endpoint", "--base-url", `http://127.0.0.1:${port}/v1`], dir),
        rxsynth(["bench", "quickstart", "--limit", "5", "--seconds", "3"], dir),
      ]);
      expect(unreachable.code).toBe(1);
      expect(unreachable.stderr.trim()).toBe(`rxsynth: endpoint error: cannot reach http://127.0.0.1:${port}/v1 (ECONNREFUSED): check --base-url`);
      expect(both.code).toBe(1);
      expect(both.stderr.trim()).toBe("rxsynth: config error: bench takes --limit N or --seconds S, not both");

      expect(sweep.code, sweep.stderr).toBe(0);
      const result = JSON.parse(await readFile(json, "utf8")) as { kind: string; model: string; levels: Array<Record<string, unknown>>; knee: Record<string, unknown> };
      expect(result.kind).toBe("endpoint");
      // No --model: the first the server lists.
      expect(result.model).toBe("bench-model");
      expect(result.levels.map((level) => level.concurrency)).toEqual([1, 4, 16]);
      for (const level of result.levels) {
        expect(Object.keys(level)).toEqual(
          expect.arrayContaining(["concurrency", "requests", "errors", "errorKinds", "seconds", "requestsPerS", "outputTokensPerS", "latencyMs", "ttftMs", "clientCpu"]),
        );
        expect(Object.keys(level.latencyMs as object)).toEqual(["p50", "p95", "p99", "mean"]);
      }
      expect(Object.keys(result.knee)).toEqual(expect.arrayContaining(["knee", "reached", "recommended", "littleConcurrency", "power"]));
      expect(sweep.stdout).toMatch(/^knee: /m);
      expect(sweep.stdout).toMatch(/^use concurrency \d+/m);
    } finally {
      await sim.close();
    }
  }, 60_000);
});
