import { ConfigError, defineFilter, drop, type Operator } from "../../src/index.ts";
import { fieldValue } from "../dedup/fields.ts";
import { LshIndex, resolveBands } from "../dedup/lsh.ts";
import { createMinHasher, hashString } from "../dedup/minhash.ts";
import { lcsLength, rougeLBound, rougeTokens } from "./rouge.ts";

export interface RougeFilterOptions {
  /** Operator name in metrics and rejects. Default "rouge_filter". */
  readonly name?: string;
  /** Data field compared. Default "instruction". */
  readonly field?: string;
  /** ROUGE-L F-measure against an accepted sample at or above which a sample is rejected. Default 0.7 (Self-Instruct). */
  readonly threshold?: number;
  /**
   * How the pool is searched: "lsh" compares only with samples sharing an LSH band of their token MinHash
   * (exact LCS on those); "brute" compares with every accepted sample. Default "lsh".
   */
  readonly search?: "lsh" | "brute";
  /** MinHash permutations for the candidate search. Default 128. */
  readonly numPerm?: number;
  /** Tokens per shingle of the candidate MinHash (1 = token sets). Default 1. */
  readonly ngram?: number;
  /**
   * Jaccard similarity the LSH bands are tuned for, with false negatives weighted 0.8. A pair at ROUGE-L
   * >= 0.7 without repeated tokens has token-set Jaccard >= 0.54, so 0.3 leaves a wide margin. Default 0.3.
   */
  readonly lshThreshold?: number;
  /** Override the bands x rows chosen from `lshThreshold`. */
  readonly bands?: number;
  readonly rows?: number;
  /** Default 1. */
  readonly seed?: number;
}

const DEFAULTS = {
  name: "rouge_filter",
  field: "instruction",
  threshold: 0.7,
  search: "lsh",
  numPerm: 128,
  ngram: 1,
  lshThreshold: 0.3,
  seed: 1,
} as const;

interface State {
  /** Token id sequences of the accepted samples, in acceptance order (= LSH document order). */
  readonly pool: Int32Array[];
  readonly ids: string[];
  readonly vocabulary: Map<string, number>;
  readonly index: LshIndex | undefined;
}

/**
 * Self-Instruct's novelty filter: rejects a sample whose ROUGE-L F-measure (lowercased word tokens, as the
 * rouge_score package computes it) against any sample this filter accepted before is at or above
 * `threshold`. With `search: "lsh"` the pool is searched through a MinHash LSH index over token sets, so a
 * sample is compared with its few plausible matches instead of the whole pool; exact LCS decides. Pairs
 * whose lengths alone rule the threshold out are skipped in both modes.
 *
 * Reads: `field`. Writes: nothing.
 * Drop reasons: `too_similar` (`duplicateOf` = the most similar accepted sample, `value` = its ROUGE-L, `threshold`).
 *
 * @example
 * rougeFilter({ field: "instruction", threshold: 0.7 })
 */
export function rougeFilter(options: RougeFilterOptions = {}): Operator {
  const config = { ...DEFAULTS, ...options };
  if (!(config.threshold > 0 && config.threshold <= 1)) throw new ConfigError(`rougeFilter threshold must be in (0, 1], got ${config.threshold}`);
  if (config.search !== "lsh" && config.search !== "brute") throw new ConfigError(`rougeFilter search must be "lsh" or "brute", got ${JSON.stringify(config.search)}`);
  if (!Number.isInteger(config.ngram) || config.ngram < 1) throw new ConfigError(`rougeFilter ngram must be a positive integer, got ${config.ngram}`);
  const shape = resolveBands({
    numPerm: config.numPerm,
    threshold: config.lshThreshold,
    bands: config.bands,
    rows: config.rows,
    falsePositiveWeight: 0.2,
    falseNegativeWeight: 0.8,
  });
  const hasher = createMinHasher({ numPerm: config.numPerm, seed: config.seed });
  let hashes = new Uint32Array(64);

  /** MinHash of the token n-grams (over the rouge tokens, so both sides see the same words). */
  const signatureOf = (tokens: readonly string[]): Uint32Array => {
    const n = Math.min(config.ngram, tokens.length);
    const count = tokens.length - n + 1;
    if (hashes.length < count) hashes = new Uint32Array(count * 2);
    for (let i = 0; i < count; i++) {
      let h = hashString(tokens[i]!, 0x5bd1e995);
      for (let k = 1; k < n; k++) h = hashString(tokens[i + k]!, h);
      hashes[i] = h;
    }
    return hasher.signatureOf(hashes, count);
  };

  return defineFilter<State>({
    name: config.name,
    params: { ...config, name: undefined, bands: shape.bands, rows: shape.rows },
    reads: [config.field],
    state: () => ({
      pool: [],
      ids: [],
      vocabulary: new Map(),
      index: config.search === "lsh" ? new LshIndex({ numPerm: config.numPerm, bands: shape.bands, rows: shape.rows }) : undefined,
    }),
    test(sample, state) {
      const tokens = rougeTokens(fieldValue(sample, config.field));
      // No tokens: ROUGE-L is 0 against everything, so it is kept and never matched.
      if (tokens.length === 0) return true;
      const ids = new Int32Array(tokens.length);
      for (let i = 0; i < tokens.length; i++) {
        let id = state.vocabulary.get(tokens[i]!);
        if (id === undefined) {
          id = state.vocabulary.size;
          state.vocabulary.set(tokens[i]!, id);
        }
        ids[i] = id;
      }
      const sig = state.index ? signatureOf(tokens) : undefined;

      let best = -1;
      let bestScore = 0;
      const consider = (doc: number) => {
        const other = state.pool[doc]!;
        if (rougeLBound(ids.length, other.length) < config.threshold) return;
        const score = (2 * lcsLength(ids, other)) / (ids.length + other.length);
        if (score > bestScore) {
          bestScore = score;
          best = doc;
        }
      };
      if (state.index && sig) for (const doc of state.index.candidates(sig)) consider(doc);
      else for (let doc = 0; doc < state.pool.length; doc++) consider(doc);

      if (best >= 0 && bestScore >= config.threshold) {
        return drop("too_similar", { duplicateOf: state.ids[best]!, value: bestScore, threshold: config.threshold });
      }
      state.pool.push(ids);
      state.ids.push(sample.id);
      if (state.index && sig) state.index.insert(sample.id, sig);
      return true;
    },
  });
}
