import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { collect, createSample, type Origin, type Sample } from "../../../src/index.ts";
import { diversityTracker, type DiversitySummary } from "../../../operators/diversity/diversity-tracker.ts";
import { opening } from "../../../operators/diversity/openings.ts";
import { DistinctCounter, HyperLogLog, SpaceSaving } from "../../../operators/diversity/sketches.ts";
import { hashString } from "../../../operators/dedup/minhash.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function instruction(id: string, text: string, origin: Origin, depth: number): Sample {
  const sample = createSample({ id, data: { instruction: text }, origin, source: "test" });
  return { ...sample, provenance: { ...sample.provenance, depth } };
}

const tiny = [
  instruction("a", "Write a poem about cats.", "human", 0),
  instruction("b", "Write a poem about dogs!", "synthetic", 1),
  instruction("c", "Give me three tips for sleep.", "synthetic", 1),
];

describe("diversityTracker", () => {
  it("counts distinct n-grams, vocabulary, lengths and openings of a tiny corpus as computed by hand", async () => {
    const tracker = diversityTracker();
    const { out } = await collect(tracker, tiny);
    expect(out).toHaveLength(3);
    const all = tracker.summary()!.groups.all!;
    // Words: [write a poem about cats] [write a poem about dogs] [give me three tips for sleep]
    expect(all.samples).toBe(3);
    expect(all.distinct1).toEqual({ total: 16, distinct: 12, ratio: 12 / 16, exact: true });
    expect(all.distinct2).toEqual({ total: 13, distinct: 10, ratio: 10 / 13, exact: true });
    expect(all.distinct3).toEqual({ total: 10, distinct: 8, ratio: 8 / 10, exact: true });
    expect(all.vocabulary).toBe(12);
    expect(all.length).toMatchObject({ count: 3, mean: 16 / 3, min: 5, max: 6, quantiles: { p10: 5, p50: 5, p90: 6 } });
    expect(all.length.histogram.find((b) => b.le === 8)?.count).toBe(3);
    expect(all.leadingWords).toEqual([
      { word: "write", count: 2 },
      { word: "give", count: 1 },
    ]);
    expect(all.openings).toEqual([
      { verb: "write", object: "poem", count: 2 },
      { verb: "give", object: "tips", count: 1 },
    ]);
    expect(all.openingsMatched).toBe(3);
    // b vs {a}: word sets share 4 of 6 (J = 0.67); c vs {a, b}: nothing shared (J = 0). Mean over b and c.
    expect(all.poolSimilarity).toBeGreaterThan(0.25);
    expect(all.poolSimilarity).toBeLessThan(0.42);
  });

  it("breaks the figures down by origin and generation depth", async () => {
    const tracker = diversityTracker();
    await collect(tracker, tiny);
    const groups = tracker.summary()!.groups;
    expect(Object.keys(groups)).toEqual(["all", "depth=0", "depth=1", "origin=human", "origin=synthetic"]);
    expect(groups["origin=human"]!.samples).toBe(1);
    expect(groups["origin=human"]!.poolSimilarity).toBeNull();
    expect(groups["depth=1"]!.distinct1).toMatchObject({ total: 11, distinct: 11 });
    expect(groups["origin=synthetic"]!.leadingWords.map((w) => w.word)).toEqual(["give", "write"]);
  });

  it("appends snapshots every snapshotEvery samples and writes a summary at the end", async () => {
    const runDir = mkdtempSync(join(tmpdir(), "rxsynth-diversity-"));
    dirs.push(runDir);
    const samples = Array.from({ length: 25 }, (_, i) => instruction(`s${i}`, `Describe item number ${i} in detail`, "synthetic", 1 + (i % 7)));
    const { metrics } = await collect(diversityTracker({ snapshotEvery: 10 }), samples, { runDir });
    const lines = readFileSync(join(runDir, "diversity.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as DiversitySummary);
    expect(lines.map((l) => l.samples)).toEqual([10, 20, 25]);
    const summary = JSON.parse(readFileSync(join(runDir, "diversity-summary.json"), "utf8")) as DiversitySummary;
    expect(summary.samples).toBe(25);
    expect(Object.keys(summary.groups)).toContain("depth=5+");
    expect(summary.groups["depth=5+"]!.samples).toBe(9);
    // "describe item number _ in detail": five words repeat in all 25, the numbers 0..24 are distinct.
    expect(summary.groups.all!.vocabulary).toBe(30);
    expect(metrics.total("diversity.vocabulary")).toBe(30);
    expect(metrics.total("diversity.distinct_1")).toBeCloseTo(30 / 150);
  });
});

describe("opening", () => {
  it.each([
    ["write a short poem about cats", "write", "poem"],
    ["please give me three tips for sleeping", "give", "tips"],
    ["can you list 5 famous painters", "list", "painters"],
    ["come up with a name for a bakery", "come", "name"],
  ])("reads %j as verb %s and object %s", (text, verb, object) => {
    expect(opening(text.split(" "))).toEqual({ leading: text.split(" ")[0], verb, object });
  });

  it("gives only the leading word when the text does not open with an imperative", () => {
    expect(opening("what is the capital of france".split(" "))).toEqual({ leading: "what" });
    expect(opening([])).toEqual({ leading: undefined });
  });
});

describe("sketches", () => {
  it("counts distinct items exactly up to the cap and within 3% by HyperLogLog beyond it", () => {
    const counter = new DistinctCounter(1000, 14);
    for (let i = 0; i < 1000; i++) counter.add(hashString(`k${i}`, 1), hashString(`k${i}`, 2));
    expect([counter.count, counter.isExact]).toEqual([1000, true]);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 100_000; i++) counter.add(hashString(`k${i}`, 1), hashString(`k${i}`, 2));
    }
    expect(counter.isExact).toBe(false);
    expect(Math.abs(counter.count - 100_000) / 100_000).toBeLessThan(0.03);
  });

  it("estimates small cardinalities closely by linear counting", () => {
    const hll = new HyperLogLog(12);
    for (let i = 0; i < 500; i++) hll.add(hashString(`x${i}`, 3), hashString(`x${i}`, 4));
    expect(Math.abs(hll.estimate() - 500)).toBeLessThan(15);
  });

  it("keeps the heavy hitters of a long-tailed stream in a small top-k counter", () => {
    const top = new SpaceSaving(10);
    for (let i = 0; i < 2000; i++) {
      top.add(i % 4 === 0 ? "write" : i % 4 === 1 ? "list" : `rare${i}`);
      if (i % 10 === 0) top.add("give");
    }
    expect(top.top(3).map((t) => t.item)).toEqual(["list", "write", "give"]);
    expect(top.top(1)[0]!.count - top.top(1)[0]!.error).toBeLessThanOrEqual(500);
  });
});
