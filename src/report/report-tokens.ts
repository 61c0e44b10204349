import { countTokens } from "../llm/tokens.ts";

/**
 * Tokens in a field, in time linear in its length. tiktoken's BPE is quadratic in the length of one
 * pre-tokeniser piece, and a piece is a run of letters (or of spaces and punctuation) with no break: one
 * 300k-character "xxx…" field kept `rxsynth report` busy past two minutes. Every piece lies inside a run
 * of letters and marks or a run of non-letters, non-digits (plus a character or four either side), so
 * cutting only such runs longer than `RUN_CHARS`, every `RUN_CHARS`, bounds every piece.
 *
 * Exact for a text with no run that long: it is counted whole. A long run is counted in pieces of
 * `RUN_CHARS`; each cut moves the count by at most about one token (test/report/report-tokens.test.ts
 * holds it to one; a piece of random letters is ~500 tokens, so about 0.2 %). Cost: about 0.6 s per MB
 * of random letters, the worst case (no count repeats, so none is cached).
 */
export const RUN_CHARS = 1024;

const LETTER_RUNS = /[\p{L}\p{M}]+/gu;
const OTHER_RUNS = /[^\p{L}\p{N}]+/gu;

export function fieldTokens(text: string): number {
  if (text.length <= RUN_CHARS) return countTokens(text);
  const cuts = longRunCuts(text);
  if (cuts.length === 0) return countTokens(text);
  let total = 0;
  let from = 0;
  for (const cut of cuts) {
    total += countTokens(text.slice(from, cut));
    from = cut;
  }
  return total + countTokens(text.slice(from));
}

/** Where the long runs are cut, ascending: every `RUN_CHARS` from a run's start, never inside a surrogate pair. */
export function longRunCuts(text: string): number[] {
  const cuts = new Set<number>();
  for (const pattern of [LETTER_RUNS, OTHER_RUNS]) {
    pattern.lastIndex = 0;
    for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
      const end = match.index + match[0].length;
      if (match[0].length <= RUN_CHARS) continue;
      for (let at = match.index + RUN_CHARS; at < end; at += RUN_CHARS) {
        const unit = text.charCodeAt(at);
        cuts.add(unit >= 0xdc00 && unit <= 0xdfff ? at + 1 : at);
      }
    }
  }
  return [...cuts].filter((at) => at > 0 && at < text.length).sort((a, b) => a - b);
}
