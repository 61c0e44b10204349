import { describe, expect, it } from "vitest";
import { collect, ConfigError, createSample, type Sample } from "../../../src/index.ts";
import {
  compileHeuristics,
  HEURISTIC_REASONS,
  heuristicFilter,
  textStats,
  noRules,
  type HeuristicFilterOptions,
} from "../../../operators/filter/index.ts";

/** Every rule off, so one rule can be tested at its boundary without the others interfering. */
const ALL_OFF: HeuristicFilterOptions = noRules;

function sample(text: string, index = 0): Sample {
  return createSample({ id: `s${index}`, data: { text }, source: "test" });
}

async function judge(options: HeuristicFilterOptions, ...texts: string[]) {
  return collect(heuristicFilter(options), texts.map(sample));
}

/** Distinct words of exactly `length` letters (length >= 4): "q" + three letters + "z" padding. */
function distinctWords(count: number, length = 4, lead = "q"): string[] {
  const letters = "abcdefghijklmnopqrstuvwxy";
  return Array.from({ length: count }, (_, i) => {
    const code = letters[Math.floor(i / 625) % 25]! + letters[Math.floor(i / 25) % 25]! + letters[i % 25]!;
    return (lead + code).padEnd(length, "z");
  });
}

/** Distinct words totalling exactly `chars` characters (chars >= 4). */
function fillerOfChars(chars: number, lead = "q"): string[] {
  const count = Math.floor(chars / 4);
  const words = distinctWords(count, 4, lead);
  words[count - 1] = words[count - 1]!.padEnd(4 + (chars - count * 4), "z");
  return words;
}

/** Expects the first text kept and the second dropped with `reason` at `threshold`. */
async function expectBoundary(
  options: HeuristicFilterOptions,
  kept: string,
  dropped: string,
  reason: string,
  threshold: number,
) {
  const { out, rejects } = await judge({ ...ALL_OFF, ...options }, kept, dropped);
  expect(out.map((s) => s.id)).toEqual(["s0"]);
  expect(rejects).toHaveLength(1);
  expect(rejects[0]).toMatchObject({ operator: "heuristic_filter", reason, threshold });
  expect(rejects[0]!.sample.id).toBe("s1");
  return rejects[0]!;
}

describe("heuristicFilter", () => {
  it("keeps ordinary English prose under every default Gopher rule", async () => {
    const text = [
      "The harbour town woke slowly on Sunday morning, and the fishermen were already mending their nets beside the old stone wall.",
      "Children ran between the market stalls while their parents argued about the price of bread, cheese and the first strawberries of the season.",
      "Later that afternoon a storm rolled in from the west, so most of the visitors took shelter in the library or the small museum near the church.",
    ].join("\n\n");
    const { out, rejects } = await judge({}, text);
    expect(rejects).toEqual([]);
    expect(out).toHaveLength(1);
  });

  it("lists every reason it can drop with, once", () => {
    expect(new Set(HEURISTIC_REASONS).size).toBe(HEURISTIC_REASONS.length);
    expect(HEURISTIC_REASONS).toContain("dup_10gram");
    expect(HEURISTIC_REASONS).toContain("unsupported_modality");
  });

  it("drops text with fewer words than minWords and keeps text with exactly minWords", async () => {
    const words = distinctWords(50);
    const rejected = await expectBoundary(
      { minWords: 50 },
      words.join(" "),
      words.slice(1).join(" "),
      "too_few_words",
      50,
    );
    expect(rejected.value).toBe(49);
  });

  it("does not count punctuation-only tokens as words", () => {
    expect(textStats("alpha - beta ... gamma # delta").words).toBe(4);
    expect(textStats("alpha - beta ... gamma # delta").tokens).toBe(7);
  });

  it("drops text with more words than maxWords and keeps text with exactly maxWords", async () => {
    const rejected = await expectBoundary(
      { maxWords: 100_000 },
      "word ".repeat(100_000),
      "word ".repeat(100_001),
      "too_many_words",
      100_000,
    );
    expect(rejected.value).toBe(100_001);
  });

  it("drops text whose mean word length falls below the minimum, trimming punctuation off words", async () => {
    const kept = "abc, abc. (abc) abc abc abc abc abc abc abc";
    const dropped = "abc abc abc abc abc abc abc abc abc ab";
    const rejected = await expectBoundary({ minMeanWordLength: 3 }, kept, dropped, "mean_word_length", 3);
    expect(rejected.value).toBeCloseTo(2.9, 12);
  });

  it("drops text whose mean word length rises above the maximum", async () => {
    const kept = Array(10).fill("abcdefghij").join(" ");
    const dropped = [...Array(9).fill("abcdefghij"), "abcdefghijk"].join(" ");
    const rejected = await expectBoundary({ maxMeanWordLength: 10 }, kept, dropped, "mean_word_length", 10);
    expect(rejected.value).toBeCloseTo(10.1, 12);
  });

  it("drops text with more than one hash per ten words", async () => {
    const words = distinctWords(20);
    const rejected = await expectBoundary(
      { maxSymbolRatio: 0.1 },
      `${words.join(" ")} # #`,
      `${words.slice(1).join(" ")} # #`,
      "symbol_ratio",
      0.1,
    );
    expect(rejected.value).toBeCloseTo(2 / 19, 12);
  });

  it("drops text with more than one ellipsis per ten words, counting ... and … alike", async () => {
    const words = distinctWords(20);
    const kept = `${words.slice(0, 10).join(" ")}... ${words.slice(10).join(" ")} …`;
    const dropped = `${words.slice(1, 10).join(" ")}... ${words.slice(10).join(" ")} …`;
    const rejected = await expectBoundary({ maxSymbolRatio: 0.1 }, kept, dropped, "symbol_ratio", 0.1);
    expect(rejected.value).toBeCloseTo(2 / 19, 12);
  });

  it("drops text where more than 90% of lines start with a bullet (•, -, *, ‣)", async () => {
    const bullets = ["• one", "- two", "* three", "‣ four", "  - five", "• six", "- seven", "* eight", "‣ nine"];
    const kept = [...bullets, "plain line", "", "   "].join("\n");
    const dropped = [...bullets, ...bullets, "• ten", "plain line"].join("\n");
    const rejected = await expectBoundary({ maxBulletLines: 0.9 }, kept, dropped, "bullet_lines", 0.9);
    expect(rejected.value).toBeCloseTo(19 / 20, 12);
  });

  it("drops text where more than 30% of lines end with an ellipsis", async () => {
    const lines = (ellipsis: number, plain: number) => [
      ...Array.from({ length: ellipsis }, (_, i) => (i % 2 === 0 ? `line ${i} trails off...  ` : `line ${i} trails off…`)),
      ...Array.from({ length: plain }, (_, i) => `line ${i} ends well.`),
    ];
    const rejected = await expectBoundary(
      { maxEllipsisLines: 0.3 },
      lines(30, 70).join("\n"),
      lines(31, 69).join("\n"),
      "ellipsis_lines",
      0.3,
    );
    expect(rejected.value).toBeCloseTo(0.31, 12);
  });

  it("drops text where fewer than 80% of tokens contain a letter", async () => {
    const tokens = (alpha: number, other: number) =>
      [...distinctWords(alpha), ...Array.from({ length: other }, (_, i) => (i % 2 ? String(i) : "—"))].join(" ");
    const rejected = await expectBoundary(
      { minAlphaWords: 0.8 },
      tokens(80, 20),
      tokens(79, 21),
      "alpha_words",
      0.8,
    );
    expect(rejected.value).toBeCloseTo(0.79, 12);
  });

  it("drops text with fewer than two stop words, matching them in any case", async () => {
    const rejected = await expectBoundary(
      { minStopWords: 2 },
      "The fox jumps over THE dog",
      "The fox jumps over a dog",
      "stop_words",
      2,
    );
    expect(rejected.value).toBe(1);
  });

  it("drops text where more than 30% of paragraphs repeat an earlier one", async () => {
    const paragraphs = (repeats: number, unique: number) =>
      [...distinctWords(unique).map((w) => `${w} paragraph`), ...Array(repeats).fill("same paragraph")].join("\n\n");
    // "same paragraph" appears repeats times: the first is original, the rest are duplicates.
    const rejected = await expectBoundary(
      { maxDupParaFrac: 0.3 },
      paragraphs(4, 6), // 3 duplicates of 10
      paragraphs(5, 5), // 4 of 10
      "dup_para_frac",
      0.3,
    );
    expect(rejected.value).toBeCloseTo(0.4, 12);
  });

  it("drops text where repeated paragraphs hold more than 20% of the characters", async () => {
    const repeated = "a repeated paragraph";
    expect(repeated).toHaveLength(20);
    const text = (filler: number) => [repeated, "f".repeat(filler), repeated].join("\n\n");
    expect(text(56)).toHaveLength(100);
    const rejected = await expectBoundary({ maxDupParaCharFrac: 0.2 }, text(56), text(55), "dup_para_char_frac", 0.2);
    expect(rejected.value).toBeCloseTo(20 / 99, 12);
  });

  it("drops text where more than 30% of lines repeat an earlier one, ignoring surrounding whitespace", async () => {
    const lines = (repeats: number, unique: number) =>
      [...distinctWords(unique), ...Array.from({ length: repeats }, (_, i) => (i % 2 ? "same line" : "  same line\t"))].join("\n");
    const rejected = await expectBoundary({ maxDupLineFrac: 0.3 }, lines(4, 6), lines(5, 5), "dup_line_frac", 0.3);
    expect(rejected.value).toBeCloseTo(0.4, 12);
  });

  it("drops text where repeated lines hold more than 20% of the characters", async () => {
    const repeated = "this line repeats!!!";
    const text = (filler: number) => [repeated, "f".repeat(filler), repeated].join("\n");
    expect(text(58)).toHaveLength(100);
    const rejected = await expectBoundary({ maxDupLineCharFrac: 0.2 }, text(58), text(57), "dup_line_char_frac", 0.2);
    expect(rejected.value).toBeCloseTo(20 / 99, 12);
  });

  describe("top n-gram character fraction", () => {
    // The top n-gram is made of n distinct two-letter words, repeated `count` times between unique fillers.
    const cases = [
      { n: 2 as const, limit: 0.2, count: 5 },
      { n: 3 as const, limit: 0.18, count: 3 },
      { n: 4 as const, limit: 0.16, count: 2 },
    ];
    for (const { n, limit, count } of cases) {
      it(`drops text whose most frequent ${n}-gram holds more than ${limit} of the word characters`, async () => {
        const gram = ["ka", "kb", "kc", "kd"].slice(0, n).join(" ");
        const gramChars = 2 * n * count;
        const text = (total: number) => {
          const filler = fillerOfChars(total - gramChars);
          const parts: string[] = [];
          filler.forEach((word, i) => {
            if (i < count) parts.push(gram);
            parts.push(word);
          });
          return parts.join(" ");
        };
        expect(gramChars / 100).toBe(limit);
        const rejected = await expectBoundary(
          { maxTopNgram: { [n]: limit } },
          text(100),
          text(99),
          `top_${n}gram`,
          limit,
        );
        expect(rejected.value).toBeCloseTo(gramChars / 99, 12);
      });
    }

    it("does not count an n-gram that occurs once as repetition", () => {
      const judgeTop = compileHeuristics({ ...ALL_OFF, maxTopNgram: { 2: 0.2 }, scores: true });
      expect(judgeTop("one two three four")).toEqual({ keep: true, scores: { "heuristics.top_2gram": 0 } });
    });
  });

  describe("duplicate n-gram character fraction", () => {
    const cases = [
      { n: 5 as const, limit: 0.15 },
      { n: 6 as const, limit: 0.14 },
      { n: 7 as const, limit: 0.13 },
      { n: 8 as const, limit: 0.12 },
      { n: 9 as const, limit: 0.11 },
      { n: 10 as const, limit: 0.1 },
    ];
    for (const { n, limit } of cases) {
      it(`drops text whose repeated ${n}-grams cover more than ${limit} of the word characters`, async () => {
        // A span of n words occurs twice; pick a word length that makes the limit land on a whole total.
        let length = 4;
        while (!Number.isInteger(Math.round((2 * n * length) / limit)) || (2 * n * length) / Math.round((2 * n * length) / limit) !== limit) length++;
        const covered = 2 * n * length;
        const total = Math.round(covered / limit);
        const span = distinctWords(n, length, "k").join(" ");
        const text = (chars: number) => {
          const filler = fillerOfChars(chars - covered);
          const half = Math.floor(filler.length / 2);
          return [span, ...filler.slice(0, half), span, ...filler.slice(half)].join(" ");
        };
        const rejected = await expectBoundary({ maxDupNgram: { [n]: limit } }, text(total), text(total - 1), `dup_${n}gram`, limit);
        expect(rejected.value).toBeCloseTo(covered / (total - 1), 12);
      });
    }

    it("counts each word once where repeated n-grams overlap", () => {
      const judgeDup = compileHeuristics({ ...ALL_OFF, maxDupNgram: { 5: 1 }, scores: true });
      // Six identical words: every 5-gram is the same, and all 6 words are covered exactly once.
      const verdict = judgeDup("abc abc abc abc abc abc xyzw");
      expect(verdict).toEqual({ keep: true, scores: { "heuristics.dup_5gram": 18 / 22 } });
    });
  });

  it("writes every measured value to scores when asked", async () => {
    const text = "The quick brown fox jumps over the lazy dog near the river bank today.";
    const { out } = await collect(heuristicFilter({ minWords: 5, scores: true }), [sample(text)]);
    expect(Object.keys(out[0]!.scores).sort()).toEqual(
      [
        "words",
        ...HEURISTIC_REASONS.filter(
          (r) => !["too_few_words", "too_many_words", "unsupported_modality", "starts_with_punctuation", "non_ascii_start"].includes(r),
        ),
      ]
        .map((key) => `heuristics.${key}`)
        .sort(),
    );
    expect(out[0]!.scores["heuristics.words"]).toBe(14);
    expect(out[0]!.scores["heuristics.stop_words"]).toBe(3);
  });

  it("judges several fields as one text, and a function of the sample", async () => {
    const data = { instruction: "Name a colour.", output: "Blue is a colour of the sky." };
    const both = createSample({ id: "a", data, source: "test" });
    const bothFields = await collect(heuristicFilter({ ...ALL_OFF, fields: ["instruction", "output"], maxWords: 9 }), [both]);
    expect(bothFields.rejects[0]).toMatchObject({ reason: "too_many_words", value: 10 });
    const viaFunction = await collect(
      heuristicFilter({ ...ALL_OFF, fields: (s) => String(s.data.output), maxWords: 9 }),
      [both],
    );
    expect(viaFunction.out).toHaveLength(1);
  });

  it("rejects a sample whose field is not text with an input error, and counts every sample once", async () => {
    const bad = createSample({ id: "bad", data: { text: 42 }, source: "test" });
    const good = sample("the cat and the hat");
    const before = structuredClone(good);
    const { out, rejects, metrics } = await collect(heuristicFilter({ ...ALL_OFF, minWords: 1 }), [bad, good]);
    expect(out.map((s) => s.id)).toEqual(["s0"]);
    expect(rejects[0]).toMatchObject({ reason: "error" });
    expect(rejects[0]!.message).toContain("text");
    expect({ id: good.id, data: good.data, provenance: good.provenance, scores: good.scores }).toEqual(before);
    const counters = metrics.snapshot().operators[0]!;
    expect(counters.in).toBe(counters.out + counters.rejected);
  });

  it("refuses thresholds that cannot work, saying which option to change", () => {
    expect(() => heuristicFilter({ minWords: 200, maxWords: 100 })).toThrow(ConfigError);
    expect(() => heuristicFilter({ maxSymbolRatio: -1 })).toThrow(/maxSymbolRatio/);
    expect(() => heuristicFilter({ maxTopNgram: { 7: 0.1 } as never })).toThrow(/maxTopNgram/);
  });

  it("stamps its resolved options into the params hash", () => {
    expect(heuristicFilter().meta.paramsHash).toBe(heuristicFilter({ minWords: 50 }).meta.paramsHash);
    expect(heuristicFilter().meta.paramsHash).not.toBe(heuristicFilter({ minWords: 51 }).meta.paramsHash);
  });
});
