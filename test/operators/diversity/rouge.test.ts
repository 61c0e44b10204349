import { describe, expect, it } from "vitest";
import { lcsLength, rougeL, rougeLBound, rougeTokens } from "../../../operators/diversity/rouge.ts";

describe("rougeL", () => {
  it("tokenises like rouge_score: lowercase, split on anything but letters and digits", () => {
    expect(rougeTokens("Don't STOP -- now, 2 times!")).toEqual(["don", "t", "stop", "now", "2", "times"]);
    expect(rougeTokens(" ... ")).toEqual([]);
  });

  it("finds longest common subsequences of hand-worked examples", () => {
    expect(lcsLength([..."ABCBDAB"], [..."BDCABA"])).toBe(4);
    expect(lcsLength(["a", "b"], [])).toBe(0);
    expect(lcsLength([1, 2, 3], [3, 2, 1])).toBe(1);
  });

  it("scores the F-measure of the LCS, 2 LCS / (m + n)", () => {
    // rouge_score's README: rougeL precision 0.625, recall 0.556, F 0.588 (LCS "the quick brown jumps the").
    expect(rougeL("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log.")).toBeCloseTo(10 / 17, 12);
    // LCS "the cat on mat" = 4 of 6 and 6 tokens.
    expect(rougeL("the cat sat on the mat", "The cat lay on a mat")).toBeCloseTo(8 / 12, 12);
    expect(rougeL("Write a poem about cats.", "write a poem about dogs")).toBeCloseTo(0.8, 12);
    expect(rougeL("", "anything")).toBe(0);
    expect(rougeL("same", "SAME!")).toBe(1);
    expect(rougeLBound(4, 12)).toBe(0.5);
  });
});
