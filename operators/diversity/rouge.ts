/**
 * ROUGE-L as the `rouge_score` package computes it (Self-Instruct's novelty check): lowercase, every run of
 * characters other than letters and digits is a separator, no stemming; F-measure of the longest common
 * subsequence with beta = 1, i.e. 2 * LCS / (|a| + |b|), and 0 when either side has no tokens.
 * rouge_score keeps only [a-z0-9]; we keep Unicode letters and digits, which is the same on ASCII text
 * and keeps non-English text from vanishing.
 */

const SEPARATORS = /[^\p{L}\p{N}]+/u;

export function rougeTokens(text: string): string[] {
  return text
    .toLowerCase()
    .split(SEPARATORS)
    .filter((token) => token.length > 0);
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
