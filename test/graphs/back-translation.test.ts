import { describe, expect, it } from "vitest";
import definition, { chrF } from "../../graphs/back-translation.ts";
import { useGraphRuns } from "../support/graph-run.ts";

const { runGraph } = useGraphRuns();

describe("graphs/back-translation", () => {
  it("scores round trips with chrF as sacrebleu defines it", () => {
    expect(chrF("The cat sat on the mat.", "The cat sat on the mat.")).toBe(1);
    expect(chrF("xyz", "abc")).toBe(0);
    expect(chrF("", "abc")).toBe(0);
    // "ab" vs "abc": unigram P 1, R 2/3; bigram P 1, R 1/2; longer orders absent on one side.
    // P = 1, R = 7/12, F2 = 5PR / (4P + R) = 7/11.
    expect(chrF("ab", "abc")).toBeCloseTo(7 / 11, 12);
    // Whitespace is not part of the character n-grams.
    expect(chrF("a b", "ab c")).toBeCloseTo(7 / 11, 12);
    // Recall weighs more than precision (beta = 2): missing text costs more than extra text.
    expect(chrF("the bridge will be closed", "the bridge will be closed for repairs in May")).toBeLessThan(
      chrF("the bridge will be closed for repairs in May and June", "the bridge will be closed for repairs in May"),
    );
  });

  it("writes sentence, translation and round trip with the chrF kept as a score", async () => {
    const { rows, logs } = await runGraph(definition, { count: 8 });
    expect(logs).toContain("back-translation: placeholder translations cannot round-trip, so pairs are kept from chrF 0 (simulatorMinChrF), not 0.5");
    expect(rows).toHaveLength(8);
    for (const row of rows) {
      expect(Object.keys(row.data).filter((key) => key !== "_extra").sort()).toEqual(["pivot_language", "round_trip", "source_language", "text", "translation"]);
      expect(row.data).toMatchObject({ source_language: "English", pivot_language: "German" });
      expect(row.scores.chrf).toBeCloseTo(chrF(row.data.round_trip as string, row.data.text as string), 12);
      expect(row.provenance).toMatchObject({ origin: "synthetic", depth: 1, parents: [expect.stringMatching(/^back-translation:sentence-\d+$/)] });
      expect(row.provenance.steps.map((step) => step.op)).toEqual(["translate", "translate_back"]);
      expect(row.provenance.steps.every((step) => step.model === "rxsynth-sim")).toBe(true);
    }
  });

  it("rejects pairs whose round trip drifts below the chrF threshold, with the value", async () => {
    // The simulator's translations are unrelated text, so at a real model's threshold the round trips fail.
    const { rows, rejects } = await runGraph(definition, { count: 10, simulatorMinChrF: 0.5 });
    const low = rejects.filter((row) => row.reject!.reason === "low_round_trip");
    expect(low.length).toBeGreaterThan(0);
    expect(rows.length + rejects.length).toBe(10);
    for (const row of low) {
      expect(row.reject).toMatchObject({ operator: "round_trip_filter", threshold: 0.5 });
      expect(row.reject!.value).toBeCloseTo(chrF(row.data.round_trip as string, row.data.text as string), 12);
      expect(row.reject!.value).toBeLessThan(0.5);
    }
  });
});
