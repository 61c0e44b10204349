import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpendBound, SpendSettle } from "../../src/llm/index.ts";
import { CostGate } from "../../src/run/cost-gate.ts";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";
import { CLI, DEADLINE_MS, ROOT } from "../cli/run-cli.ts";
import { readParquetRows } from "../support/parquet.ts";

interface Planned {
  /** What the client says the request may cost, or undefined for no bound. */
  readonly bound: SpendBound | undefined;
  /** What it does cost: at most its bound when it has one. */
  readonly actual: number;
}

/**
 * Requests through the gate with `concurrency` callers, settling in the order `order` picks. Returns
 * what was spent, how many were sent, and whether the gate tripped with requests left.
 */
async function drive(gate: CostGate, planned: readonly Planned[], concurrency: number, order: readonly number[]) {
  const controller = new AbortController();
  let tripped = false;
  gate.open(0, () => (tripped = true));
  const inFlight: Array<{ settle: SpendSettle; actual: number }> = [];
  let next = 0;
  let sent = 0;
  let step = 0;
  const waiting = new Set<Promise<void>>();
  const start = () => {
    const request = planned[next++]!;
    const admitted = gate.admit(() => request.bound, controller.signal).then(
      (settle) => {
        sent++;
        inFlight.push({ settle, actual: request.actual });
      },
      () => undefined,
    );
    waiting.add(admitted);
    void admitted.then(() => waiting.delete(admitted));
  };
  for (;;) {
    while (next < planned.length && inFlight.length + waiting.size < concurrency) start();
    await new Promise((resolve) => setImmediate(resolve));
    if (inFlight.length === 0) {
      if (tripped || next >= planned.length) break;
      continue;
    }
    const index = order[step++ % order.length]! % inFlight.length;
    const done = inFlight.splice(index, 1)[0]!;
    done.settle(done.actual);
  }
  controller.abort();
  return { spent: gate.spent(), sent, tripped, left: planned.length - sent };
}

describe("the cost gate", () => {
  it("never lets requests with a bound pass the cap, at any concurrency and settling order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ bound: fc.double({ min: 0.001, max: 5, noNaN: true }), used: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })) }), { minLength: 1, maxLength: 200 }),
        fc.double({ min: 0.01, max: 100, noNaN: true }),
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.nat(1000), { minLength: 1, maxLength: 50 }),
        async (requests, maxUsd, concurrency, order) => {
          const planned = requests.map(({ bound, used }) => ({ bound: { usd: bound, exact: true }, actual: bound * used }));
          const { spent, tripped, left } = await drive(new CostGate(maxUsd), planned, concurrency, order);
          expect(spent).toBeLessThanOrEqual(maxUsd + 1e-9);
          // It stops only when the next request could not fit, and then it says so.
          if (left > 0) {
            expect(tripped).toBe(true);
            expect(spent + planned[planned.length - left]!.bound!.usd).toBeGreaterThan(maxUsd - 1e-9);
          } else expect(tripped).toBe(false);
        },
      ),
      { seed: 1302, numRuns: 200 },
    );
  });

  it("sends a request with no bound only alone, and passes the cap only by that request", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.option(fc.double({ min: 0.001, max: 5, noNaN: true }), { nil: undefined }), { minLength: 1, maxLength: 100 }),
        fc.double({ min: 0.01, max: 50, noNaN: true }),
        fc.integer({ min: 1, max: 16 }),
        async (bounds, maxUsd, concurrency) => {
          const gate = new CostGate(maxUsd);
          let peakUnbounded = 0;
          let inFlight = 0;
          const planned = bounds.map((bound) => ({ bound: bound === undefined ? undefined : { usd: bound, exact: true }, actual: bound ?? 0.5 }));
          // Wrapped to watch what is in flight beside an unbounded request.
          const watched: CostGate = Object.create(gate) as CostGate;
          watched.admit = async (bound, signal) => {
            const settle = await gate.admit(bound, signal);
            inFlight++;
            if (bound() === undefined) peakUnbounded = Math.max(peakUnbounded, inFlight);
            return (usd) => {
              inFlight--;
              settle(usd);
            };
          };
          watched.open = gate.open.bind(gate);
          watched.spent = gate.spent.bind(gate);
          const { spent } = await drive(watched, planned, concurrency, [0]);
          expect(peakUnbounded).toBeLessThanOrEqual(1);
          expect(spent).toBeLessThanOrEqual(maxUsd + 0.5 + 1e-9);
        },
      ),
      { seed: 1303, numRuns: 150 },
    );
  });

  it("lets estimated bounds through side by side far from the cap and one at a time near it: only answers longer than their estimate can pass the cap, by no more than their excess", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ estimate: fc.double({ min: 0.01, max: 2, noNaN: true }), ratio: fc.double({ min: 0, max: 3, noNaN: true }) }), { minLength: 1, maxLength: 200 }),
        fc.double({ min: 0.05, max: 100, noNaN: true }),
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.nat(1000), { minLength: 1, maxLength: 50 }),
        async (requests, maxUsd, concurrency, order) => {
          const planned = requests.map(({ estimate, ratio }) => ({ bound: { usd: estimate, exact: false }, actual: estimate * ratio }));
          const { spent } = await drive(new CostGate(maxUsd), planned, concurrency, order);
          // Only what answers cost beyond their estimate can pass the cap; with none longer, it holds.
          const excess = planned.reduce((sum, { bound, actual }) => sum + Math.max(0, actual - bound.usd), 0);
          expect(spent).toBeLessThanOrEqual(maxUsd + excess + 1e-9);
          if (excess === 0) expect(spent).toBeLessThanOrEqual(maxUsd + 1e-9);
        },
      ),
      { seed: 1305, numRuns: 200 },
    );
  });

  it("holds requests until the folder's earlier spend is known, and counts it", async () => {
    const gate = new CostGate(10);
    const controller = new AbortController();
    let admitted = false;
    const pending = gate.admit(() => ({ usd: 1, exact: true }), controller.signal).then(() => (admitted = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(admitted).toBe(false);
    let tripped = false;
    gate.open(9.5, () => (tripped = true));
    await new Promise((resolve) => setImmediate(resolve));
    // $9.5 spent before and a request that may cost $1: it waits, nothing in flight can make room, so the gate trips.
    expect(admitted).toBe(false);
    expect(tripped).toBe(true);
    controller.abort();
    await pending.catch(() => undefined);
  });

  it("does not trip while a request in flight may still make room, and admits the waiting one when it settles below its bound", async () => {
    const gate = new CostGate(3);
    const signal = new AbortController().signal;
    let tripped = false;
    gate.open(0, () => (tripped = true));
    const first = await gate.admit(() => ({ usd: 2, exact: true }), signal);
    let secondIn = false;
    const second = gate.admit(() => ({ usd: 2, exact: true }), signal).then((settle) => {
      secondIn = true;
      return settle;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(secondIn).toBe(false);
    expect(tripped).toBe(false);
    first(0.5);
    (await second)(0.5);
    expect(secondIn).toBe(true);
    expect(tripped).toBe(false);
    expect(gate.spent()).toBe(1);
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
  const rxsynth = async (out: string, cache: string, extra: readonly string[], graph = "distill-rationales") => {
    const env = { ...process.env, NO_COLOR: "1", OPENAI_BASE_URL: sim.url, RXSYNTH_MODEL: "gpt-4o-mini", RXSYNTH_PRICE: "input=1000,output=1000", RXSYNTH_CACHE_DIR: cache };
    const args = [CLI, "run", graph, "--out", out, "-q", ...extra];
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

      // The same cap again goes on only as far as the room left allows, and stops under it again.
      expect((await rxsynth(out, cache, ["--max-cost", String(maxUsd)])).code).toBe(4);
      expect((await manifestOf(out)).totals["llm.cost_usd"]).toBeLessThanOrEqual(maxUsd);

      const resumed = await rxsynth(out, cache, ["--max-cost", String(Math.ceil(fullSpend * 2))]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect((await manifestOf(out)).complete).toBe(true);
      expect((await idsOf(out)).sort()).toEqual(referenceIds);
      expect((await manifestOf(out)).totals["llm.cost_usd"]).toBeCloseTo(fullSpend, 9);
    }
  }, 240_000);

  it("holds the cap when another folder's run left the cache warm: answers the cache gives are free, the rest are still bounded", async () => {
    const cache = join(dir, "cache-warm");
    const warm = await rxsynth(join(dir, "warm-first"), cache, ["--limit", "3"]);
    expect(warm.code, warm.stderr).toBe(0);
    const fullSpend = (await manifestOf(join(dir, "reference"))).totals["llm.cost_usd"]!;
    const maxUsd = Math.round(fullSpend * 0.3 * 100) / 100;
    const out = join(dir, "warm-capped");
    const capped = await rxsynth(out, cache, ["--max-cost", String(maxUsd)]);
    expect(capped.code, capped.stderr).toBe(4);
    expect((await manifestOf(out)).totals["llm.cost_usd"]).toBeLessThanOrEqual(maxUsd);
  }, 120_000);

  it("holds the cap inside one source record of a generative graph (a Self-Instruct wave), and resumes to the uninterrupted run's rows", async () => {
    const options = ["--set", "target=24"];
    const reference = join(dir, "quickstart-reference");
    expect((await rxsynth(reference, join(dir, "cache-q-reference"), options, "quickstart")).code).toBe(0);
    const fullSpend = (await manifestOf(reference)).totals["llm.cost_usd"]!;
    const maxUsd = Math.round(fullSpend * 0.4 * 100) / 100;
    const out = join(dir, "quickstart-capped");
    const cache = join(dir, "cache-q");
    const capped = await rxsynth(out, cache, [...options, "--max-cost", String(maxUsd)], "quickstart");
    expect(capped.code, capped.stderr).toBe(4);
    const spent = (await manifestOf(out)).totals["llm.cost_usd"]!;
    expect(spent).toBeLessThanOrEqual(maxUsd);
    const resumed = await rxsynth(out, cache, [...options, "--max-cost", String(Math.ceil(fullSpend * 2))], "quickstart");
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((await idsOf(out)).sort()).toEqual((await idsOf(reference)).sort());
    expect((await manifestOf(out)).totals["llm.cost_usd"]).toBeCloseTo(fullSpend, 6);
  }, 240_000);
});
