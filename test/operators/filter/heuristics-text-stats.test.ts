import { describe, expect, it } from "vitest";
import { analyzeText, ngramFractions, NgramLadder, prepareStopWords, textStats } from "../../../operators/filter/index.ts";

/** Straightforward string-based versions of the same definitions, to check the hashed ones against. */
const PUNCT = /[\p{P}\p{S}]/u;
function referenceWords(text: string): string[] {
  const words: string[] = [];
  for (const token of text.split(/\s+/)) {
    let start = 0;
    let end = token.length;
    while (start < end && PUNCT.test(token[start]!)) start++;
    while (end > start && PUNCT.test(token[end - 1]!)) end--;
    if (end > start) words.push(token.slice(start, end).replace(/[A-Z]/g, (c) => c.toLowerCase()));
  }
  return words;
}

function referenceNgrams(text: string, n: number) {
  const words = referenceWords(text);
  const total = words.reduce((sum, w) => sum + w.length, 0);
  const grams: string[] = [];
  for (let i = 0; i + n <= words.length; i++) grams.push(words.slice(i, i + n).join("\u0000"));
  const counts = new Map<string, number>();
  for (const g of grams) counts.set(g, (counts.get(g) ?? 0) + 1);
  let top = 0;
  let topCount = 1;
  for (const [g, count] of counts) {
    const chars = g.length - (n - 1);
    if (count > topCount || (count === topCount && count > 1 && chars > top / count)) {
      topCount = count;
      top = count * chars;
    }
  }
  const covered = new Array<boolean>(words.length).fill(false);
  grams.forEach((g, i) => {
    if (counts.get(g)! > 1) for (let k = i; k < i + n; k++) covered[k] = true;
  });
  const dup = words.reduce((sum, w, i) => sum + (covered[i] ? w.length : 0), 0);
  return { top: total ? top / total : 0, dup: total ? dup / total : 0 };
}

function referenceLines(text: string) {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
  const seen = new Set<string>();
  let dup = 0;
  let dupChars = 0;
  for (const line of lines) {
    if (seen.has(line)) {
      dup++;
      dupChars += line.length;
    } else seen.add(line);
  }
  return { lines: lines.length, dup, dupChars };
}

/** Seeded text with a tiny vocabulary, so repeats of every length are common. */
function randomText(seed: number): string {
  let state = seed;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
  const vocab = ["the", "The", "cat", "sat", "on", "mat", "(mat),", "dog...", "#tag", "-", "…", "42", "Ünïcode", "emoji😀"];
  const parts: string[] = [];
  const length = 5 + Math.floor(next() * 200);
  for (let i = 0; i < length; i++) {
    parts.push(vocab[Math.floor(next() * vocab.length)]!);
    const r = next();
    parts.push(r < 0.05 ? "\n\n" : r < 0.15 ? "\n" : r < 0.2 ? "  " : " ");
  }
  return parts.join("");
}

describe("text statistics", () => {
  it("counts tokens, words, word characters and letters by the documented definitions", () => {
    const s = textStats("Hello, world! -- 2024 is (almost) over... #done");
    expect(s.tokens).toBe(8);
    expect(s.words).toBe(7); // "--" is a token but not a word
    expect(s.wordChars).toBe(5 + 5 + 4 + 2 + 6 + 4 + 4); // Hello world 2024 is almost over done
    expect(s.alphaTokens).toBe(6);
    expect(s.hashes).toBe(1);
    expect(s.ellipses).toBe(1);
  });

  it("counts ellipses as str.count does: non-overlapping runs of three dots, plus …", () => {
    expect(textStats("a.. b... c.... d...... e…").ellipses).toBe(1 + 1 + 2 + 1);
  });

  it("skips blank lines and trims lines before comparing them", () => {
    const s = textStats("  alpha \n\n\t\nalpha\r\nbeta\n  \n");
    expect(s.lines).toBe(3);
    expect(s.dupLines).toBe(1);
    expect(s.dupLineChars).toBe(5);
    expect(s.paragraphs).toBe(2);
  });

  it("splits paragraphs at blank lines and compares them whole", () => {
    const s = textStats("one\ntwo\n\nthree\n\none\ntwo\n\n  one\ntwo  ");
    expect(s.paragraphs).toBe(4);
    expect(s.dupParagraphs).toBe(2);
    expect(s.dupParagraphChars).toBe(14);
  });

  it("matches stop words ignoring case, and only whole words", () => {
    const s = textStats("THE theme of The tower, to-do and THAT", prepareStopWords(["the", "that", "to"]));
    expect(s.stopWords).toBe(3);
  });

  it("gives an empty text zero everywhere rather than NaN", () => {
    const s = textStats("");
    expect(Object.values(s).every((v) => v === 0)).toBe(true);
    expect(ngramFractions(analyzeText(""), [2], [5])).toEqual({ top: { 2: 0 }, dup: { 5: 0 } });
  });

  it("agrees with a string-based reference on n-gram fractions and duplicate lines for 300 random texts", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const text = randomText(seed);
      const analysis = analyzeText(text);
      const fractions = ngramFractions(analysis, [1, 2, 3, 4], [5, 6, 7, 8, 9, 10]);
      for (const n of [1, 2, 3, 4]) expect(fractions.top[n], `seed ${seed} top ${n}`).toBeCloseTo(referenceNgrams(text, n).top, 12);
      for (const n of [5, 6, 7, 8, 9, 10]) expect(fractions.dup[n], `seed ${seed} dup ${n}`).toBeCloseTo(referenceNgrams(text, n).dup, 12);
      const lines = referenceLines(text);
      expect([analysis.lines, analysis.dupLines, analysis.dupLineChars], `seed ${seed}`).toEqual([lines.lines, lines.dup, lines.dupChars]);
      expect(analysis.words).toBe(referenceWords(text).length);
    }
  });

  it("answers n-gram sizes asked out of order the same as in order", () => {
    const text = randomText(7);
    const ladder = new NgramLadder(analyzeText(text));
    const late = ladder.dupFraction(8);
    const early = ladder.topFraction(2);
    expect(late).toBeCloseTo(referenceNgrams(text, 8).dup, 12);
    expect(early).toBeCloseTo(referenceNgrams(text, 2).top, 12);
  });
});
