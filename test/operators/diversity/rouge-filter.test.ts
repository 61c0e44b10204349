import { describe, expect, it } from "vitest";
import { collect, ConfigError, createSample } from "../../../src/index.ts";
import { RougePool, candidateThreshold, rougeFilter } from "../../../operators/diversity/rouge-filter.ts";

const instructions = (texts: string[]) => texts.map((instruction, i) => createSample({ id: `i${i}`, data: { instruction }, source: "test" }));

describe("rougeFilter", () => {
  it("rejects a paraphrase at ROUGE-L >= 0.7 against the accepted pool and keeps distinct instructions", async () => {
    const { out, rejects } = await collect(
      rougeFilter(),
      instructions([
        "Write a short poem about the ocean at night.",
        "Explain how photosynthesis works to a child.",
        "Write a short poem about the sea at night.",
        "List three differences between cats and dogs.",
        "Explain photosynthesis to a ten year old.",
      ]),
    );
    expect(out.map((s) => s.id)).toEqual(["i0", "i1", "i3", "i4"]);
    expect(rejects).toHaveLength(1);
    // 9 tokens each, all but "ocean" / "sea" in common: LCS 8, F = 16/18.
    expect(rejects[0]).toMatchObject({ reason: "too_similar", duplicateOf: "i0", threshold: 0.7, operator: "rouge_filter" });
    expect(rejects[0]!.value).toBeCloseTo(16 / 18, 12);
    // i4 vs i1: LCS "explain photosynthesis to a" = 4 of 7 and 7 tokens: 8/14 = 0.57, kept.
  });

  it("decides as brute force does over a templated pool", async () => {
    const subjects = ["cats", "dogs", "the ocean", "a small town", "winter", "coffee", "a robot", "friendship", "rain", "the moon"];
    const forms = [
      (s: string) => `Write a short poem about ${s}.`,
      (s: string) => `Write a poem about ${s} in the style of a sonnet.`,
      (s: string) => `Give me three facts about ${s}.`,
      (s: string) => `Summarize what people usually think about ${s}.`,
      (s: string) => `Describe ${s} to someone who has never seen it.`,
      (s: string) => `List five words that rhyme with ${s}.`,
    ];
    const texts: string[] = [];
    for (const form of forms) for (const subject of subjects) texts.push(form(subject));
    for (let i = 0; i < texts.length; i += 3) texts.push(texts[i]!.replace("about", "regarding").replace("Write", "Compose"));
    const lsh = await collect(rougeFilter(), instructions(texts));
    const brute = await collect(rougeFilter({ search: "brute" }), instructions(texts));
    expect(lsh.out.map((s) => s.id)).toEqual(brute.out.map((s) => s.id));
    expect(lsh.rejects.map((r) => [r.sample.id, r.duplicateOf, r.value])).toEqual(brute.rejects.map((r) => [r.sample.id, r.duplicateOf, r.value]));
    expect(lsh.rejects.length).toBeGreaterThan(20);
  });

  it("finds through LSH a match whose words repeat, where token sets share too little to be a candidate", () => {
    // "w w w w w w w w p q" against "w w w w w w w w r s": ROUGE-L 0.8, but the token sets {w, p, q} and
    // {w, r, s} have Jaccard 0.2, far below the candidate threshold; counted occurrences give 8 / 12.
    const words = Array.from({ length: 40 }, (_, i) => `word${i}`);
    for (let seed = 1; seed <= 3; seed++) {
      const pool = new RougePool({ threshold: 0.7, search: "lsh", seed });
      for (let i = 0; i < 10; i++) pool.add(`m${i}`, pool.prepare(`${`${words[i]!} `.repeat(8)}${words[10 + i]!} ${words[20 + i]!}`));
      for (let i = 0; i < 10; i++) {
        const query = `${`${words[i]!} `.repeat(8)}${words[30 + i]!} ${words[(31 + i) % 40]!}`;
        expect(pool.best(pool.prepare(query))).toMatchObject({ id: `m${i}`, score: 0.8 });
      }
    }
  });

  it("takes its LSH candidate threshold from the ROUGE-L threshold, t / (2 - t) to two decimals", () => {
    expect([0.5, 0.6, 0.7, 0.8].map(candidateThreshold)).toEqual([0.33, 0.43, 0.54, 0.67]);
  });

  it("refuses an unknown search mode", () => {
    expect(() => rougeFilter({ search: "fast" as "lsh" })).toThrow(ConfigError);
  });
});
