import { resolveDataPath } from "../../src/index.ts";
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildGraph, defineFanOut, memorySource, readManifest, run } from "../../src/index.ts";
import definition, { defaults, planQuotas } from "../../graphs/mix.ts";
import { readShards, useGraphRuns, type OutputRow } from "../support/graph-run.ts";

const CLI = join(import.meta.dirname, "..", "..", "bin", "rxsynth.mjs");
const GRAPH = join(import.meta.dirname, "..", "..", "graphs", "mix.ts");

/**
 * A row's fields, wherever the shard keeps them: a column, or `_extra` for fields the shard's schema (fixed
 * by its first rows, so by the sink batch) lacked; absent and null are the same.
 */
function fields(data: Record<string, unknown>): Record<string, unknown> {
  const { _extra, ...columns } = data;
  const all = { ...columns, ...(typeof _extra === "string" ? (JSON.parse(_extra) as Record<string, unknown>) : {}) };
  return Object.fromEntries(Object.entries(all).filter(([, value]) => value !== null && value !== undefined));
}

/** Accepted rows (id and data) and rejects (id and reason), by id: what two runs of the same mix share. */
function dataset(rows: OutputRow[], rejects: OutputRow[]) {
  const byId = <T>(list: [string, T][]) => list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    accepted: byId(rows.map((row) => [row.id, fields(row.data)] as [string, unknown])),
    rejected: byId(rejects.map((row) => [row.id, row.reject!.reason] as [string, string])),
  };
}

const { runGraph, tempDir } = useGraphRuns();

/** Runs the mix graph and reads its report back beside the shards. */
async function runMix(overrides: Partial<typeof defaults>) {
  const result = await runGraph(definition, overrides);
  const report = JSON.parse(await readFile(join(result.out, "mix-report.json"), "utf8")) as Record<string, unknown>;
  return { ...result, report };
}

const reasonOf = (row: OutputRow) => row.reject!.reason;

describe("planQuotas", () => {
  it("takes the largest mix both sides can supply at the ratio", () => {
    expect(planQuotas(175, 40, 0.7)).toEqual({ human: 93, synthetic: 40 });
    expect(planQuotas(70, 1000, 0.7)).toEqual({ human: 70, synthetic: 30 });
    expect(planQuotas(100, 100, 0.5)).toEqual({ human: 100, synthetic: 100 });
    expect(planQuotas(100, 100, 1)).toEqual({ human: 100, synthetic: 0 });
    expect(planQuotas(100, 100, 0)).toEqual({ human: 0, synthetic: 100 });
  });

  it("caps the mix at count, keeping the ratio", () => {
    expect(planQuotas(175, 40, 0.7, 20)).toEqual({ human: 14, synthetic: 6 });
  });
});

describe("graphs/mix", () => {
  it("mixes the Self-Instruct seeds with the shipped synthetic set 70/30, dropping records deeper than maxDepth", async () => {
    const { rows, rejects, report, logs } = await runMix({});
    const human = rows.filter((row) => (row.data as { origin: string }).origin === "human");
    const synthetic = rows.filter((row) => (row.data as { origin: string }).origin === "synthetic");
    // 48 synthetic records, 8 of depth 3 > maxDepth 2: 40 eligible; 40 * 0.7 / 0.3 = 93 human of 175.
    expect([human.length, synthetic.length]).toEqual([93, 40]);
    expect(rejects.filter((row) => reasonOf(row) === "too_deep")).toHaveLength(8);
    expect(rejects.filter((row) => reasonOf(row) === "over_ratio")).toHaveLength(175 - 93);
    expect(rejects.filter((row) => reasonOf(row) === "too_deep").every((row) => (row.data as { source_depth: number }).source_depth === 3)).toBe(true);

    const data = human[0]!.data as Record<string, unknown>;
    for (const column of ["instruction", "input", "output", "origin", "source_depth"]) expect(data).toHaveProperty(column);
    expect(data).not.toHaveProperty("instances");
    expect(typeof data.output).toBe("string");
    expect(human[0]!.provenance).toMatchObject({ origin: "human", source: "human", depth: 0, parents: [] });
    const steps = (human[0]!.provenance as { steps: { op: string }[] }).steps.map((step) => step.op);
    expect(steps).toEqual(["normalize"]);
    expect(synthetic.every((row) => [1, 2].includes((row.data as { source_depth: number }).source_depth))).toBe(true);

    expect(report).toMatchObject({
      target_human_ratio: 0.7,
      rows: 133,
      human: { available: 175, eligible: 175, quota: 93, kept: 93, too_deep: 0 },
      synthetic: { available: 48, eligible: 40, quota: 40, kept: 40, too_deep: 8 },
    });
    expect(report.achieved_human_ratio).toBeCloseTo(93 / 133, 6);
    expect(logs).toContain("mix: 93 human + 40 synthetic = 133 rows, human ratio 0.699 (target 0.7)");
  });

  it("spreads each side's selection over the whole input and changes it with the seed", async () => {
    const first = await runMix({ count: 30 });
    const other = await runMix({ count: 30, seed: 7 });
    const humanIds = (result: typeof first) =>
      result.rows.filter((row) => (row.data as { origin: string }).origin === "human").map((row) => Number(String(row.id).replace("human:seed_task_", "")));
    expect(humanIds(first)).toHaveLength(21);
    expect(Math.max(...humanIds(first))).toBeGreaterThan(100);
    expect(humanIds(other)).not.toEqual(humanIds(first));
    expect(first.report).toMatchObject({ rows: 30, human: { kept: 21 }, synthetic: { kept: 9 } });
  });

  it("reads another graph's run folder as the synthetic side, taking depth from provenance", async () => {
    // A run whose rows are 1, 2 and 3 generations away from their source records.
    const upstream = await tempDir();
    const deepen = (name: string) =>
      defineFanOut({ name, expand: (sample) => [{ data: { ...sample.data, output: `${String(sample.data.output)} (${name})` } }] });
    const records = Array.from({ length: 12 }, (_, i) => ({ id: `r${i}`, instruction: `Task ${i}`, input: "", output: `Answer ${i}` }));
    await run({ name: "upstream", sources: [memorySource("records", records)], operators: [deepen("gen1")] }, { out: join(upstream, "a") });
    await run({ name: "upstream", sources: [memorySource("records", records)], operators: [deepen("gen1"), deepen("gen2"), deepen("gen3")] }, { out: join(upstream, "b") });

    const shallow = await runMix({ syntheticPath: join(upstream, "a"), humanRatio: 0.5, maxDepth: 2 });
    expect(shallow.report).toMatchObject({ synthetic: { available: 12, eligible: 12, kept: 12 }, human: { kept: 12 } });
    expect(shallow.rows.filter((row) => (row.data as { origin: string }).origin === "synthetic").every((row) => (row.data as { source_depth: number }).source_depth === 1)).toBe(true);

    const deep = await runMix({ syntheticPath: join(upstream, "b"), humanRatio: 0.5, maxDepth: 2 });
    expect(deep.report).toMatchObject({ rows: 0, synthetic: { available: 12, eligible: 0, too_deep: 12 } });
    expect(deep.rejects.filter((row) => reasonOf(row) === "too_deep").map((row) => (row.reject as { value: number }).value)).toEqual(Array(12).fill(3));
  });

  it("refuses a ratio outside [0, 1] and a missing input", async () => {
    await expect(buildGraph(definition, { humanRatio: 1.5 })).rejects.toThrow(/humanRatio must be between 0 and 1/);
    await expect(buildGraph(definition, { syntheticPath: "/nonexistent/file.jsonl" })).rejects.toThrow(/synthetic input \/nonexistent\/file.jsonl does not exist/);
  });

  it("keeps the same records whatever order the input is read in: whether one is kept depends on its id alone", async () => {
    const forward = await runMix({ count: 30 });
    const dir = await tempDir();
    const lines = (await readFile(resolveDataPath(defaults.syntheticPath), "utf8")).trim().split("\n");
    const reversed = join(dir, "mix-synthetic-reversed.jsonl");
    await writeFile(reversed, `${lines.reverse().join("\n")}\n`);
    const backward = await runMix({ count: 30, syntheticPath: reversed });
    const synthetic = (result: typeof forward) =>
      result.rows.filter((row) => (row.data as { origin: string }).origin === "synthetic").map((row) => row.id).sort();
    expect(synthetic(backward)).toEqual(synthetic(forward));
    expect(backward.report).toMatchObject({ rows: 30, human: { kept: 21 }, synthetic: { kept: 9 } });
  });

  it("ends a run stopped at --limit and resumed with the rows and report of an uninterrupted run", async () => {
    const whole = await runMix({});
    const out = await tempDir();
    await runGraph(definition, {}, { out, run: { limit: 100, budget: 8, checkpointRows: 5 } });
    const resumed = await runGraph(definition, {}, { out, run: { budget: 8 } });
    expect(resumed.summary.resumed).toBe(true);
    expect(dataset(resumed.rows, resumed.rejects)).toEqual(dataset(whole.rows, whole.rejects));
    expect(JSON.parse(await readFile(join(out, "mix-report.json"), "utf8"))).toEqual(whole.report);
  });

  it.each(["shards", "state", "manifest"])("equals the uninterrupted run after a SIGKILL at the %s step and a resume", async (step) => {
    const whole = await runMix({});
    const out = await tempDir();
    const args = [CLI, "run", GRAPH, "--out", out, "--budget", "8", "--checkpoint-rows", "5", "--quiet"];
    const killed = spawnSync(process.execPath, args, { encoding: "utf8", env: { ...process.env, RXSYNTH_FAULT: `${step}:4` }, timeout: 60_000 });
    expect(killed.signal, killed.stderr).toBe("SIGKILL");
    expect((await readManifest(out))?.complete).not.toBe(true);
    const resumed = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 60_000 });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(dataset(await readShards(out, "part"), await readShards(out, "rejects"))).toEqual(dataset(whole.rows, whole.rejects));
    expect(JSON.parse(await readFile(join(out, "mix-report.json"), "utf8"))).toEqual(whole.report);
  }, 120_000);
});
