import { get_encoding } from "@dqbd/tiktoken";
import { describe, expect, it } from "vitest";
import { countTokens } from "../../src/llm/index.ts";
import { Rng } from "../../src/sim/random.ts";

// Letters of several scripts and cases, digits, marks, emoji, odd whitespace, contractions, special tokens.
const ALPHABET = [..."abcXYZ '’sStTreREvVmMlLdD0123456789\n\r\t .,;:!?/-_()[]{}<|>\"#@$%^&*+=~`", "é", "ß", "É", "ñ", "中", "文", "日本", "Ω", "ф", "Ж", "😀", "👍🏽", "\u0301", "\u00a0", "\u2028", "\ufeff", "\u200b", "ǅ", "ʰ", "١٢٣", "ⅷ", "²", "<|endoftext|>", "<|im_start|>", "'s", "'LL", " 's", "\n\n", "  ", "\t\n", "hello", " world", "Don't"];

describe("countTokens", () => {
  for (const [encoding, model] of [["o200k_base", "gpt-4o"], ["cl100k_base", "gpt-4"]] as const) {
    it(`matches tiktoken's ${encoding} encoder exactly on awkward text, special-token strings included`, () => {
      const encoder = get_encoding(encoding);
      const rng = new Rng(encoding);
      const mismatches: string[] = [];
      for (let i = 0; i < 3_000; i++) {
        let text = "";
        const length = rng.int(1, 40);
        for (let j = 0; j < length; j++) text += rng.pick(ALPHABET);
        if (countTokens(text, model) !== encoder.encode_ordinary(text).length) mismatches.push(JSON.stringify(text));
      }
      encoder.free();
      expect(mismatches).toEqual([]);
    });
  }

  it("counts <|endoftext|> as ordinary text instead of throwing", () => {
    expect(countTokens("<|endoftext|>")).toBe(get_encoding("o200k_base").encode_ordinary("<|endoftext|>").length);
    expect(countTokens("<|endoftext|>")).toBeGreaterThan(1);
  });
});
