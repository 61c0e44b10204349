import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../src/index.ts";
import { memorySource } from "../../src/io/memory-source.ts";
import { encoderFor } from "../../src/llm/tokens.ts";
import { collectReportData } from "../../src/report/report-data.ts";
import { LengthHistogram } from "../../src/report/report-stats.ts";
import { fieldTokens, longRunCuts, RUN_CHARS } from "../../src/report/report-tokens.ts";
import { rxsynth } from "../cli/run-cli.ts";

// The reference is tiktoken's encoder itself on the whole text (`encode_ordinary`, no piece cache, no cuts):
// quadratic in a run's length, so it is asked only about texts of a few thousand characters.
const exact = (text: string) => encoderFor(undefined).encode_ordinary(text).length;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "rxsynth-report-tokens-"));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** A seeded string of `length` characters drawn from `alphabet` (code points, so pairs stay whole). */
function drawn(alphabet: string, length: number, seed: number): string {
  const points = [...alphabet];
  let x = seed >>> 0 || 1;
  let text = "";
  while (text.length < length) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    text += points[(x >>> 8) % points.length];
  }
  return text;
}

const ALPHABETS = {
  lower: "abcdefghijklmnopqrstuvwxyz",
  mixed: "abcXYZéüß",
  punctuation: "!?.,;:-_=+*/\\|<>()[]{}",
  whitespace: " \t\n\r",
  cjk: "的一是不了人我在有他这为之大来以个中上们",
  emoji: "😀😃🙂👍🏽",
  marks: "a\u0301e\u0308o\u0323",
  digits: "0123456789",
  prose: "the quick brown fox, jumps over 12 lazy dogs. ",
};
const alphabet = fc.constantFrom(...(Object.keys(ALPHABETS) as (keyof typeof ALPHABETS)[]));

describe("the report's token count of a field", () => {
  it("is tiktoken's exact count when no run of letters or of non-letters is longer than RUN_CHARS", () => {
    const piece = fc.record({ kind: alphabet, length: fc.integer({ min: 1, max: RUN_CHARS }), seed: fc.integer() });
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 12 }), (pieces) => {
        // Runs kept short by a digit between pieces, which ends every run of both kinds.
        const text = pieces.map(({ kind, length, seed }) => drawn(ALPHABETS[kind], Math.min(length, kind === "prose" ? RUN_CHARS * 4 : RUN_CHARS - 1), seed)).join("7");
        expect(longRunCuts(text)).toEqual([]);
        expect(fieldTokens(text)).toBe(exact(text));
      }),
      { seed: 13, numRuns: 40 },
    );
  });

  it("is within one token per cut of the exact count for long unbroken runs of any kind", () => {
    const piece = fc.record({ kind: alphabet, length: fc.integer({ min: 1, max: 5 * RUN_CHARS }), seed: fc.integer() });
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 3 }), (pieces) => {
        const text = pieces.map(({ kind, length, seed }) => drawn(ALPHABETS[kind], length, seed)).join("");
        const cuts = longRunCuts(text).length;
        expect(Math.abs(fieldTokens(text) - exact(text)), `${cuts} cuts`).toBeLessThanOrEqual(cuts);
      }),
      { seed: 13, numRuns: 20 },
    );
  });

  it("never cuts a surrogate pair", () => {
    const text = drawn(ALPHABETS.emoji, 20 * RUN_CHARS, 3);
    for (const at of longRunCuts(text)) expect(text.charCodeAt(at) >= 0xdc00 && text.charCodeAt(at) <= 0xdfff, `cut at ${at}`).toBe(false);
  });

  it("counts a 1 MB run of one letter exactly, and 1 MB of random letters within 1 % of the exact rate", { timeout: 60_000 }, () => {
    // tiktoken writes a run of x as tokens of 8 x: checked on 16,000 characters by the reference, then at 1 MB.
    expect(exact("x".repeat(16_000))).toBe(2_000);
    expect(fieldTokens("x".repeat(1_000_000))).toBe(125_000);
    // Random letters: no count is cached, each 1,024-character piece is tokenised afresh. The rate of the
    // exact count on a 16,000-character prefix of the same draw predicts the whole within 1 %.
    const letters = drawn(ALPHABETS.lower, 1_000_000, 5);
    const predicted = (exact(letters.slice(0, 16_000)) / 16_000) * letters.length;
    expect(Math.abs(fieldTokens(letters) - predicted) / predicted).toBeLessThan(0.01);
  });
});

describe("rxsynth report of a folder with a 1 MB unbroken field", () => {
  it("finishes and puts each field's token count in its bar", { timeout: 180_000 }, async () => {
    const out = join(root, "long-field");
    const texts = [drawn(ALPHABETS.lower, 1_000_000, 9), "x".repeat(300_000), "A short field of ordinary words, as most are."];
    await run({ name: "long-field", sources: [memorySource("texts", texts.map((text) => ({ text })))], operators: [] }, { out, log: () => {} });

    const cli = await rxsynth(["report", out]);
    expect(cli.code, cli.stderr).toBe(0);

    const data = await collectReportData(out);
    const field = data.rows.lengths.find((length) => length.field === "text")!;
    const expected = new LengthHistogram();
    // The x-run's exact count is known (a token per 8); the ordinary field is short enough for the reference.
    for (const count of [fieldTokens(texts[0]!), 300_000 / 8, exact(texts[2]!)]) expected.add(count);
    expect(field.tokens.accepted).toEqual(expected.counts);
  });
});
