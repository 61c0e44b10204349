// Runs of ready graphs against an endpoint that goes away, refuses the key, or answers from the cache:
// outages are never verdicts (no sample is rejected for them), and a rerun into a new folder pays nothing.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import backTranslation from "../../graphs/back-translation.ts";
import quickstart from "../../graphs/quickstart.ts";
import { EndpointError } from "../../src/errors.ts";
import { buildGraph, readManifest, run } from "../../src/index.ts";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";
import { readShards, useGraphRuns } from "../support/graph-run.ts";
import { closedPort } from "../support/llm-fixtures.ts";

const exec = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");
const { runGraph, tempDir } = useGraphRuns();

/** Samples a manifest says are finished, over all sources. */
function finished(manifest: { sources: Record<string, { watermark: number; done: readonly number[] }> }): number {
  return Object.values(manifest.sources).reduce((sum, progress) => sum + progress.watermark + progress.done.length, 0);
}


const outageLine = /unreachable since \d\d:\d\d .*: pausing requests/;

describe("a run against an endpoint that goes away", () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ latencyMs: 1 });
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    await sim.up();
    vi.stubEnv("OPENAI_BASE_URL", sim.url);
    vi.stubEnv("RXSYNTH_MODEL", "sim-1");
    vi.stubEnv("RXSYNTH_PRICE", "");
  });

  it("waits while it is down and accepts every sample once it is back: no llm_error rejects", async () => {
    // The 503s ask for a 20 ms wait, so each request's six retries end quickly and the outage begins.
    await sim.down({ ms: 1_500, retryAfterMs: 20 });
    const { summary, rows, rejects, logs } = await runGraph(backTranslation, { count: 6, minChrF: 0 });
    expect(summary.status).toBe("complete");
    expect(rows).toHaveLength(6);
    expect(rejects.filter((row) => row.reject?.reason === "llm_error")).toEqual([]);
    expect(rejects).toEqual([]);
    expect(logs.filter((line) => outageLine.test(line))).toHaveLength(1);
    expect(logs.filter((line) => /answers again after/.test(line))).toHaveLength(1);
  });

  it("stops with an EndpointError past RXSYNTH_OUTAGE_SECONDS, leaves the samples in flight unfinished, and a rerun completes them once", async () => {
    vi.stubEnv("RXSYNTH_OUTAGE_SECONDS", "1");
    const out = await tempDir("outage");
    // 8 translations and 2 translations back get through; then the endpoint stays down.
    await sim.down({ afterRequests: 10, retryAfterMs: 10 });
    const logs: string[] = [];
    const graph = await buildGraph(backTranslation, { count: 8, minChrF: 0 }, { log: (line) => logs.push(line), out });
    const error = await run(graph, { out, log: (line) => logs.push(line), checkpointRows: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EndpointError);
    expect((error as Error).message).not.toContain("\n");
    expect((error as Error).message).toMatch(/unreachable since .*gave up after 1s of waiting.*rerun the same command to resume$/);

    const manifest = await readManifest(out);
    const committed = manifest ? finished(manifest as never) : 0;
    // Ten answers finish at least two samples (two requests each), and what finished is committed.
    expect(committed).toBeGreaterThanOrEqual(2);
    expect(committed).toBeLessThan(8);
    const firstRows = await readShards(out, "part");
    expect(firstRows.length).toBe(committed);
    expect(await readShards(out, "rejects")).toEqual([]);

    await sim.up();
    vi.stubEnv("RXSYNTH_OUTAGE_SECONDS", "");
    const resumed = await runGraph(backTranslation, { count: 8, minChrF: 0 }, { out });
    expect(resumed.summary.status).toBe("complete");
    expect(resumed.rejects).toEqual([]);
    const ids = resumed.rows.map((row) => row.id);
    expect(ids).toHaveLength(8);
    expect(new Set(ids).size).toBe(8);
    expect(finished((await readManifest(out)) as never)).toBe(8);
  });
});

describe("a run against a port where nothing listens", () => {
  it("rejects no sample: it stops with an EndpointError once RXSYNTH_OUTAGE_SECONDS have passed", async () => {
    vi.stubEnv("OPENAI_BASE_URL", await closedPort());
    vi.stubEnv("RXSYNTH_OUTAGE_SECONDS", "1");
    const out = await tempDir("dead");
    const graph = await buildGraph(backTranslation, { count: 4, minChrF: 0 }, { log: () => {}, out });
    const started = performance.now();
    const error = await run(graph, { out, log: () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EndpointError);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
    expect(performance.now() - started).toBeLessThan(15_000);
    const manifest = await readManifest(out);
    expect(manifest ? finished(manifest as never) : 0).toBe(0);
    expect(await readShards(out, "rejects")).toEqual([]);
  });
});

describe("rxsynth run against an endpoint that cannot serve it", () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ latencyMs: 1, apiKey: "sk-the-right-key-123456" });
  });
  afterAll(async () => {
    await sim.close();
  });

  const rxsynth = async (env: NodeJS.ProcessEnv, out: string) => {
    const started = performance.now();
    const args = ["bin/rxsynth.mjs", "run", "back-translation", "--set", "count=4", "--out", out];
    const outcome = await exec(process.execPath, args, { cwd: root, env: { ...process.env, NO_COLOR: "1", ...env }, timeout: 90_000 }).then(
      ({ stderr }) => ({ code: 0, stderr }),
      (failure: { code?: number; stderr?: string }) => ({ code: failure.code ?? -1, stderr: failure.stderr ?? "" }),
    );
    return { ...outcome, seconds: (performance.now() - started) / 1000, errors: outcome.stderr.split("\n").filter((line) => line.startsWith("rxsynth:")) };
  };

  it("stops at once on a wrong key (401) with one line and a non-zero exit, without rejecting anything", async () => {
    const out = await tempDir("bad-key");
    const { code, errors } = await rxsynth({ OPENAI_BASE_URL: sim.url, OPENAI_API_KEY: "sk-a-wrong-key-654321" }, out);
    expect(code).not.toBe(0);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^rxsynth: endpoint error: .* refused the request: 401 .*check the API key \(OPENAI_API_KEY\)$/);
    expect(errors[0]).not.toContain("sk-a-wrong-key-654321");
    // Each request in flight at the start hears 401 once; none is retried.
    expect(sim.stats().requests).toBeLessThanOrEqual(4);
    expect(await readShards(out, "rejects").catch(() => [])).toEqual([]);
  });

  it("exits non-zero on a dead endpoint once RXSYNTH_OUTAGE_SECONDS have passed, saying a rerun resumes", async () => {
    const out = await tempDir("dead-cli");
    const { code, errors } = await rxsynth({ OPENAI_BASE_URL: await closedPort(), RXSYNTH_OUTAGE_SECONDS: "1" }, out);
    expect(code).not.toBe(0);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^rxsynth: endpoint error: endpoint 127\.0\.0\.1:\d+ unreachable since .*rerun the same command to resume$/);
  });
});

describe("the response cache of ready graphs", () => {
  it("outlives the run folder: the quickstart rerun into a new folder sends no request, and says which cache it used", async () => {
    const first = await runGraph(quickstart, { target: 20 });
    expect(first.summary.metrics.totals["llm.requests"]).toBeGreaterThan(0);
    const second = await runGraph(quickstart, { target: 20 });
    expect(second.out).not.toBe(first.out);
    expect(second.summary.metrics.totals["llm.requests"] ?? 0).toBe(0);
    expect(second.summary.metrics.totals["llm.cache_hits"]).toBeGreaterThan(0);
    // The same rows (in the order their answers came back, which a cache changes).
    const rowsOf = (rows: typeof first.rows) => rows.map((row) => JSON.stringify([row.id, row.data])).sort();
    expect(rowsOf(second.rows)).toEqual(rowsOf(first.rows));
    const record = JSON.parse(await readFile(join(second.out, "cache.json"), "utf8")) as { path: string };
    expect(record.path).toBe(process.env.RXSYNTH_CACHE_DIR);
    expect(second.logs).toContain(`response cache: ${process.env.RXSYNTH_CACHE_DIR} (shared by runs; --no-cache bypasses it, \`rxsynth cache info\` sizes it)`);
  });

  it("is bypassed with cache: false (--no-cache), and recorded as off", async () => {
    await runGraph(quickstart, { target: 10 });
    const out = await tempDir("no-cache");
    const graph = await buildGraph(quickstart, { target: 10 }, { log: () => {}, out, cache: false });
    const summary = await run(graph, { out, log: () => {} });
    expect(summary.metrics.totals["llm.requests"]).toBeGreaterThan(0);
    expect(summary.metrics.totals["llm.cache_hits"] ?? 0).toBe(0);
    expect(JSON.parse(await readFile(join(out, "cache.json"), "utf8"))).toMatchObject({ path: null });
  });
});
