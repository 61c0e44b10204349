/**
 * ROUGE-L as the `rouge_score` package computes it (Self-Instruct's novelty check): lowercase, every run of
 * characters other than letters and digits is a separator, no stemming; F-measure of the longest common
 * subsequence with beta = 1, i.e. 2 * LCS / (|a| + |b|), and 0 when either side has no tokens.
 * rouge_score keeps only [a-z0-9]; we keep Unicode letters, digits and combining marks, which is the same
 * on ASCII text and keeps non-English text from vanishing.
 */
import { words } from "../dedup/minhash.ts";

export function rougeTokens(text: string): string[] {
  return words(text, "split");
}

let row = new Int32Array(256);

/** Length of the longest common subsequence of two token sequences (ids or strings). */
export function lcsLength<T>(a: ArrayLike<T>, b: ArrayLike<T>): number {
  // The shorter sequence indexes the DP row, so the row is as small as it can be.
  if (a.length < b.length) [a, b] = [b, a];
  const n = b.length;
  if (n === 0) return 0;
  if (row.length < n + 1) row = new Int32Array(Math.max(n + 1, row.length * 2));
  const prev = row;
  prev.fill(0, 0, n + 1);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    let diagonal = 0;
    for (let j = 1; j <= n; j++) {
      const up = prev[j]!;
      prev[j] = x === b[j - 1] ? diagonal + 1 : up > prev[j - 1]! ? up : prev[j - 1]!;
      diagonal = up;
    }
  }
  return prev[n]!;
}

/** ROUGE-L F-measure of two token sequences. */
export function rougeLTokens<T>(a: ArrayLike<T>, b: ArrayLike<T>): number {
  if (a.length === 0 || b.length === 0) return 0;
  return (2 * lcsLength(a, b)) / (a.length + b.length);
}

/** ROUGE-L F-measure of two texts (symmetric: precision and recall swap, F does not). */
export function rougeL(a: string, b: string): number {
  return rougeLTokens(rougeTokens(a), rougeTokens(b));
}

/** Largest ROUGE-L F two sequences of these lengths could reach (when the shorter is inside the longer). */
export function rougeLBound(lengthA: number, lengthB: number): number {
  if (lengthA === 0 || lengthB === 0) return 0;
  return (2 * Math.min(lengthA, lengthB)) / (lengthA + lengthB);
}

/**
 * LCS of one query against many sequences of integer tokens, bit-parallel (Hyyro 2004): with the query's
 * positions as bits of one 32-bit word, each token of the other sequence costs a few word operations
 * instead of a row of the DP table. Queries longer than 32 tokens fall back to the DP.
 */
export class LcsMatcher {
  private masks = new Int32Array(1024);
  private query: Int32Array = new Int32Array(0);

  /** Sets the query; token ids must be non-negative. */
  setQuery(tokens: Int32Array): void {
    for (let i = 0; i < this.query.length && this.query.length <= 32; i++) this.masks[this.query[i]!] = 0;
    this.query = tokens;
    if (tokens.length > 32) return;
    let max = 0;
    for (let i = 0; i < tokens.length; i++) if (tokens[i]! > max) max = tokens[i]!;
    if (max >= this.masks.length) {
      const grown = new Int32Array(Math.max(max + 1, this.masks.length * 2));
      this.masks = grown;
    }
    for (let i = 0; i < tokens.length; i++) this.masks[tokens[i]!]! |= 1 << i;
  }

  /** LCS of the query and `other[start .. end)`. */
  lcs(other: Int32Array, start = 0, end = other.length): number {
    const m = this.query.length;
    if (m === 0 || end <= start) return 0;
    if (m > 32) return lcsLength(this.query, start === 0 && end === other.length ? other : other.subarray(start, end));
    const masks = this.masks;
    const limit = masks.length;
    let v = -1;
    for (let j = start; j < end; j++) {
      const t = other[j]!;
      const match = t < limit ? masks[t]! : 0;
      const u = v & match;
      v = ((v + u) | (v & ~match)) | 0;
    }
    // LCS = zero bits of v among the query's m positions.
    let zeros = ~v;
    if (m < 32) zeros &= (1 << m) - 1;
    return popcount(zeros);
  }
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
