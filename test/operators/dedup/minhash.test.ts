import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../src/index.ts";
import {
  bands,
  createMinHasher,
  halfSignature,
  hashString,
  isEmptySignature,
  jaccard,
  jaccardEstimate,
  normalize,
  shingles,
  signature,
  words,
} from "../../../operators/dedup/minhash.ts";
import { corpus, shingleSet } from "./fixtures.ts";

describe("normalize", () => {
  it("lowercases, deletes punctuation and collapses whitespace by default", () => {
    expect(normalize("  Hello,   World!\n\tIt's  ÉTÉ — 2024.  ")).toBe("hello world its été 2024");
  });

  it("applies each step only when asked", () => {
    const text = " Hello,  World! ";
    expect(normalize(text, { lowercase: false })).toBe("Hello World");
    expect(normalize(text, { stripPunctuation: false })).toBe("hello, world!");
    expect(normalize(text, { collapseWhitespace: false })).toBe(" hello  world ");
    expect(normalize(text, { lowercase: false, stripPunctuation: false, collapseWhitespace: false })).toBe(text);
  });
});

describe("words", () => {
  it("gives the words of normalize, or splits at punctuation as rouge_score does", () => {
    const text = "Don't STOP -- now, 2 times! Café naïve";
    expect(words(text)).toEqual(["dont", "stop", "now", "2", "times", "café", "naïve"]);
    expect(words(text)).toEqual(normalize(text).split(" "));
    expect(words(text, "split")).toEqual(["don", "t", "stop", "now", "2", "times", "café", "naïve"]);
    expect(words(" ... ")).toEqual([]);
  });
});

describe("shingles", () => {
  it("hashes exactly the word n-grams of the normalised text, one per position", () => {
    const text = corpus(1).document(120);
    const expected = shingleSet(normalize(text));
    const hashes = shingles(text, { kind: "word", n: 5 });
    expect(hashes.length).toBe(normalize(text).split(" ").length - 4);
    expect(new Set(hashes).size).toBe(expected.size);
  });

  it("ignores case, punctuation and spacing, but not word order", () => {
    const a = shingles("The quick brown fox jumps over the lazy dog");
    const b = shingles("the QUICK, brown fox...   jumps over the lazy dog!");
    const c = shingles("the quick brown fox jumps the over lazy dog");
    expect([...b]).toEqual([...a]);
    expect(new Set([...c].filter((h) => a.includes(h))).size).toBeLessThan(a.length);
  });

  it("hashes an n-gram the same wherever it occurs", () => {
    const inner = [...shingles("c d e f g")];
    expect(inner).toHaveLength(1);
    expect([...shingles("a b c d e f g h")]).toContain(inner[0]);
    expect([...shingles("c d e f g h", { kind: "char", n: 3 })]).toEqual(expect.arrayContaining([...shingles("d e", { kind: "char", n: 3 })]));
  });

  it("makes one shingle of a text shorter than n, and none of an empty one", () => {
    expect(shingles("two words", { kind: "word", n: 5 }).length).toBe(1);
    expect(shingles(" ... ", { kind: "word", n: 5 }).length).toBe(0);
    expect(shingles("abcdef", { kind: "char", n: 3 }).length).toBe(4);
    expect(shingles("ab", { kind: "char", n: 3 }).length).toBe(1);
  });

  it("refuses a shingle size that is not a positive integer", () => {
    expect(() => shingles("x", { kind: "word", n: 0 })).toThrow(ConfigError);
    expect(() => createMinHasher({ shingle: { kind: "line" as "word", n: 2 } })).toThrow(ConfigError);
  });
});

describe("signature", () => {
  const text = corpus(2).document(200);

  it("is the same from separately built hashers with the same seed", () => {
    const a = createMinHasher({ numPerm: 128, seed: 7 }).signature(text);
    const b = createMinHasher({ numPerm: 128, seed: 7 }).signature(text);
    expect(a).toEqual(b);
    expect(signature(text, { numPerm: 128, seed: 7 })).toEqual(a);
  });

  it("differs under a different seed", () => {
    const a = signature(text, { seed: 1 });
    const b = signature(text, { seed: 2 });
    expect(jaccardEstimate(a, b)).toBeLessThan(0.05);
  });

  it("is all-empty for a text without words", () => {
    expect(isEmptySignature(signature("  !!  "))).toBe(true);
    expect(isEmptySignature(signature("one word"))).toBe(false);
  });

  it("estimates Jaccard similarity without bias (mean absolute error near the 128-permutation floor)", () => {
    const gen = corpus(3);
    let error = 0;
    let bias = 0;
    const pairs = 150;
    for (let i = 0; i < pairs; i++) {
      const a = gen.document(150);
      const b = gen.edit(a, [0.01, 0.03, 0.06][i % 3]!);
      const exact = jaccard(shingleSet(normalize(a)), shingleSet(normalize(b)));
      const estimate = jaccardEstimate(signature(a), signature(b));
      error += Math.abs(estimate - exact);
      bias += estimate - exact;
    }
    // sqrt(2/pi) * sqrt(J(1-J)/128) is at most 0.035 for any J.
    expect(error / pairs).toBeLessThan(0.035);
    expect(Math.abs(bias / pairs)).toBeLessThan(0.01);
  });

  it("catches near-duplicates at low edit rates and not unrelated texts", () => {
    const gen = corpus(4);
    for (let i = 0; i < 20; i++) {
      const a = gen.document(250);
      expect(jaccardEstimate(signature(a), signature(gen.edit(a, 0.01)))).toBeGreaterThanOrEqual(0.8);
      expect(jaccardEstimate(signature(a), signature(gen.edit(a, 0.25)))).toBeLessThan(0.5);
      expect(jaccardEstimate(signature(a), signature(gen.document(250)))).toBeLessThan(0.05);
    }
  });

  it("refuses to compare signatures of different lengths", () => {
    expect(() => jaccardEstimate(signature("a b", { numPerm: 64 }), signature("a b"))).toThrow(ConfigError);
  });
});

describe("halfSignature", () => {
  it("gives two 16-bit minima per permutation, equal for equal sets and close for similar ones", () => {
    const seeds = createMinHasher({ numPerm: 64, seed: 3 }).seeds;
    const a = Uint32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => hashString(`w${i}`)));
    const b = Uint32Array.from([...a].reverse());
    const c = a.slice();
    c[0] = hashString("other");
    const sa = halfSignature(seeds, a);
    expect(sa.length).toBe(128);
    expect(Math.max(...sa)).toBeLessThan(65536);
    expect(halfSignature(seeds, b)).toEqual(sa);
    // 9 of 11 elements shared: Jaccard 0.82.
    expect(jaccardEstimate(sa, halfSignature(seeds, c))).toBeGreaterThan(0.6);
  });
});

describe("bands", () => {
  it("gives equal keys for equal rows and different keys per band", () => {
    const sig = signature(corpus(5).document(100));
    const copy = sig.slice();
    copy[116] = copy[116]! ^ 1; // last row of band 8 (9 x 13 = 117 rows)
    const a = bands(sig, 9, 13);
    const b = bands(copy, 9, 13);
    expect([...a.subarray(0, 8)]).toEqual([...b.subarray(0, 8)]);
    expect(a[8]).not.toBe(b[8]);
    expect(bands(new Uint32Array(128), 2, 64)[0]).not.toBe(bands(new Uint32Array(128), 2, 64)[1]);
  });

  it("refuses more bands x rows than permutations", () => {
    expect(() => bands(new Uint32Array(128), 10, 13)).toThrow(ConfigError);
  });
});

describe("hashString", () => {
  it("depends on the seed and every character", () => {
    expect(hashString("abc", 1)).not.toBe(hashString("abc", 2));
    expect(hashString("abc")).not.toBe(hashString("abd"));
    expect(hashString("abc")).toBe(hashString("abc"));
  });
});
