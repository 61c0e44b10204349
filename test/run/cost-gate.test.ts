import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CostCap, type CostState } from "../../src/run/cost-cap.ts";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";
import { CLI, DEADLINE_MS, ROOT } from "../cli/run-cli.ts";
import { readParquetRows } from "../support/parquet.ts";

/**
 * A run under the cap, simulated: records cost what `costs` says, spent when the record finishes, and
 * up to `concurrency` are in flight, finishing in the order `order` picks. Returns the spend at the stop.
 */
function simulate(cap: CostCap, costs: readonly number[], concurrency: number, order: readonly number[]): { spent: number; pulled: number } {
  let spentUsd = 0;
  let finishedRoots = 0;
  const inFlight: number[] = [];
  let next = 0;
  let step = 0;
  const state = (): CostState => ({ spentUsd, finishedRoots, rootsInFlight: inFlight.length });
  for (;;) {
    while (next < costs.length && inFlight.length < concurrency) {
      const verdict = cap.verdict(state());
      if (verdict === "stop") return { spent: cap.spent(state()), pulled: next };
      if (verdict === "wait") break;
      inFlight.push(costs[next++]!);
    }
    if (inFlight.length === 0) return { spent: cap.spent(state()), pulled: next };
    const index = order[step++ % order.length]! % inFlight.length;
    spentUsd += inFlight.splice(index, 1)[0]!;
    finishedRoots++;
  }
}

describe("the cost cap's decision", () => {
  it("never lets records of one price pass the cap, at any concurrency and finishing order, unless the first alone does", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.001, max: 5, noNaN: true }),
        fc.integer({ min: 1, max: 400 }),
        fc.double({ min: 0.01, max: 200, noNaN: true }),
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.nat(1000), { minLength: 1, maxLength: 50 }),
        (price, records, maxUsd, concurrency, order) => {
          const { spent, pulled } = simulate(new CostCap(maxUsd, { spentUsd: 0, finishedRoots: 0 }), Array(records).fill(price), concurrency, order);
          if (pulled > 1) expect(spent).toBeLessThanOrEqual(maxUsd + 1e-9);
          else expect(spent).toBeLessThanOrEqual(Math.max(maxUsd, price) + 1e-9);
        },
      ),
      { seed: 1302, numRuns: 300 },
    );
  });

  it("keeps records whose costs differ by up to twice under the cap, and stops only when the next, at twice the costliest, would not fit", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1, max: 2, noNaN: true }), { minLength: 1, maxLength: 300 }),
        fc.double({ min: 0.5, max: 200, noNaN: true }),
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.nat(1000), { minLength: 1, maxLength: 50 }),
        (costs, maxUsd, concurrency, order) => {
          const cap = new CostCap(maxUsd, { spentUsd: 0, finishedRoots: 0 });
          const { spent, pulled } = simulate(cap, costs, concurrency, order);
          if (pulled > 1) expect(spent).toBeLessThanOrEqual(maxUsd + 1e-9);
          if (pulled < costs.length) {
            const costliestPulled = Math.max(...costs.slice(0, pulled));
            expect(spent + 2 * costliestPulled).toBeGreaterThan(maxUsd - 1e-9);
          }
        },
      ),
      { seed: 1303, numRuns: 300 },
    );
  });

  it("lets one record through at a time until the price of one is known", () => {
    const cap = new CostCap(10, { spentUsd: 0, finishedRoots: 0 });
    expect(cap.verdict({ spentUsd: 0, finishedRoots: 0, rootsInFlight: 0 })).toBe("pull");
    expect(cap.verdict({ spentUsd: 0.5, finishedRoots: 0, rootsInFlight: 1 })).toBe("wait");
    expect(cap.verdict({ spentUsd: 1, finishedRoots: 1, rootsInFlight: 0 })).toBe("pull");
  });

  it("counts what earlier sessions of the folder spent", () => {
    const cap = new CostCap(10, { spentUsd: 9, finishedRoots: 18 });
    expect(cap.verdict({ spentUsd: 0, finishedRoots: 0, rootsInFlight: 0 })).toBe("pull");
    expect(cap.verdict({ spentUsd: 0.5, finishedRoots: 1, rootsInFlight: 0 })).toBe("stop");
  });
});

const exec = promisify(execFile);

describe("rxsynth run --max-cost against a priced endpoint", () => {
  let sim: Simulator;
  let dir: string;
  beforeAll(async () => {
    sim = await startSimulator({ latencyMs: 5, seed: 7 });
    dir = await mkdtemp(join(tmpdir(), "rxsynth-cost-cap-"));
  });
  afterAll(async () => {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The CLI against the simulator, priced at $1,000 per 1M tokens so that a few requests cost dollars. */
  const rxsynth = async (out: string, cache: string, extra: readonly string[]) => {
    const env = { ...process.env, NO_COLOR: "1", OPENAI_BASE_URL: sim.url, RXSYNTH_MODEL: "gpt-4o-mini", RXSYNTH_PRICE: "input=1000,output=1000", RXSYNTH_CACHE_DIR: cache };
    const args = [CLI, "run", "distill-rationales", "--out", out, "-q", ...extra];
    try {
      const { stderr } = await exec(process.execPath, args, { cwd: ROOT, env, timeout: DEADLINE_MS, killSignal: "SIGKILL" });
      return { code: 0, stderr };
    } catch (error) {
      const failure = error as { code?: number; stderr?: string };
      return { code: failure.code ?? -1, stderr: failure.stderr ?? "" };
    }
  };
  const manifestOf = async (out: string) =>
    JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as { complete: boolean; totals: Record<string, number> };
  const idsOf = async (out: string) => {
    const ids: string[] = [];
    for (const name of (await readdir(out)).filter((file) => file.endsWith(".parquet")).sort()) {
      for (const row of await readParquetRows(join(out, name))) ids.push(row.id as string);
    }
    return ids;
  };

  it("stops before the cap, says so in one line, and a resume with a higher cap ends with the uninterrupted run's rows, each request billed once", async () => {
    const reference = join(dir, "reference");
    expect((await rxsynth(reference, join(dir, "cache-reference"), [])).code).toBe(0);
    const fullSpend = (await manifestOf(reference)).totals["llm.cost_usd"]!;
    const referenceIds = (await idsOf(reference)).sort();
    expect(fullSpend).toBeGreaterThan(2);

    // Caps drawn at random between a tenth and nine tenths of the full spend (seeded).
    const caps = fc.sample(fc.double({ min: 0.1, max: 0.9, noNaN: true }), { seed: 1304, numRuns: 3 }).map((share) => Math.round(share * fullSpend * 100) / 100);
    for (const [index, maxUsd] of caps.entries()) {
      const out = join(dir, `capped-${index}`);
      const cache = join(dir, `cache-${index}`);
      const capped = await rxsynth(out, cache, ["--max-cost", String(maxUsd)]);
      expect(capped.code, capped.stderr).toBe(4);
      const spent = (await manifestOf(out)).totals["llm.cost_usd"] ?? 0;
      expect(spent).toBeLessThanOrEqual(maxUsd);
      expect(spent).toBeGreaterThan(0);
      const lines = capped.stderr.split("\n").filter((line) => line.startsWith("stopped at --max-cost $"));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/spent, \$[\d.]+ projected at completion; everything committed is kept\. Continue with a higher cap: .*--max-cost [\d.]+$/);
      expect((await manifestOf(out)).complete).toBe(false);

      // The same cap again spends nothing more.
      expect((await rxsynth(out, cache, ["--max-cost", String(maxUsd)])).code).toBe(4);
      expect((await manifestOf(out)).totals["llm.cost_usd"]).toBeCloseTo(spent, 9);

      const resumed = await rxsynth(out, cache, ["--max-cost", String(Math.ceil(fullSpend * 2))]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect((await manifestOf(out)).complete).toBe(true);
      expect((await idsOf(out)).sort()).toEqual(referenceIds);
      expect((await manifestOf(out)).totals["llm.cost_usd"]).toBeCloseTo(fullSpend, 9);
    }
  }, 240_000);
});
