import { ConfigError, defineFilter, drop, type Operator, type RunContext } from "../../src/index.ts";
import { fieldValue } from "../dedup/fields.ts";
import { LshIndex, resolveBands } from "../dedup/lsh.ts";
import { createMinHasher, halfSignature, hashString, type MinHasher } from "../dedup/minhash.ts";
import { readState, statePath, writeStateAtomic } from "../dedup/state-file.ts";
import { LcsMatcher, rougeLBound, rougeTokens } from "./rouge.ts";
import { int32FromBase64, toBase64 } from "./state-image.ts";

export interface RougeFilterOptions {
  /** Operator name in metrics, rejects and the state file (`<runDir>/state/<name>.bin`). Default "rouge_filter". */
  readonly name?: string;
  /** Data field compared. Default "instruction". */
  readonly field?: string;
  /** ROUGE-L F-measure against an accepted sample at or above which a sample is rejected. Default 0.7. */
  readonly threshold?: number;
  /**
   * What a score of exactly `threshold` does: "drop" (default) or "keep", as Self-Instruct's code does
   * (`if max(rouge_scores) > 0.7: continue`; on 5,000 Alpaca instructions the two differ by 7).
   */
  readonly atThreshold?: "drop" | "keep";
  /**
   * How the pool is searched: "lsh" compares only with samples sharing an LSH band of their token MinHash
   * (exact LCS on those); "brute" compares with every accepted sample. Default "lsh".
   */
  readonly search?: "lsh" | "brute";
  /** MinHash permutations for the candidate search. Default 256. */
  readonly numPerm?: number;
  /** Tokens per shingle of the candidate MinHash (1 = tokens). Default 1. */
  readonly ngram?: number;
  /**
   * Jaccard similarity of the occurrence-numbered tokens (see `signatureOf`) at which a pair must become a candidate with probability
   * `candidateRecall` (the LSH bands are the most selective that do: `bandsForRecall`, 64 x 4 for the
   * defaults). ROUGE-L >= t means an LCS of at least t (m + n) / 2 tokens, so a pair has that
   * Jaccard >= (t / 2) / (1 - t / 2) = t / (2 - t), repeated words or not: the default, that bound to two
   * decimals (0.54 for t = 0.7, 0.33 for 0.5), covers every such pair with probability >= 0.99 (light
   * paraphrases sit far higher). benchmarks/fidelity.ts measures the agreement with brute force at 0.5,
   * 0.6 and 0.7. Default: t / (2 - t) to two decimals.
   */
  readonly lshThreshold?: number;
  /**
   * Default 0.99 (64 x 4 bands at 0.7). A pair just above the bound can still be missed: over the 5,000
   * instructions of benchmarks/fidelity.ts one was, at 0.7, and two decisions of 5,000 parted from brute
   * force's. 0.999 (85 x 3) agrees on all of them but makes 4x the LCS comparisons (32 per query, against
   * 7), which takes benchmarks/dedup.ts's speed-up over brute force from 35x to 8x: set it (the
   * Self-Instruct graphs do), or `search: "brute"`, where the exact decision matters more than the time.
   */
  readonly candidateRecall?: number;
  /** Override the bands x rows chosen from `lshThreshold`. */
  readonly bands?: number;
  readonly rows?: number;
  /** Default 1. */
  readonly seed?: number;
  /** Save the pool with each run checkpoint and reload it on resume. Default true. */
  readonly checkpoint?: boolean;
}

const DEFAULTS = {
  name: "rouge_filter",
  field: "instruction",
  threshold: 0.7,
  search: "lsh",
  numPerm: 256,
  ngram: 1,
  candidateRecall: 0.99,
  seed: 1,
  checkpoint: true,
} as const;

export type RougePoolOptions = Omit<RougeFilterOptions, "name" | "field" | "checkpoint">;

/** The token-set Jaccard below which no pair reaches ROUGE-L `threshold` (see `lshThreshold`). */
export function candidateThreshold(threshold: number): number {
  return Math.round((100 * threshold) / (2 - threshold)) / 100;
}

/** The options with their defaults, the candidate threshold following the ROUGE threshold. */
function resolved<T extends RougeFilterOptions>(options: T) {
  const config = { ...DEFAULTS, ...options };
  return { ...config, lshThreshold: options.lshThreshold ?? candidateThreshold(config.threshold) };
}

/**
 * A pool as a checkpoint saves it: its members in order, their tokens numbered by first use among the
 * members. Which words only queries brought into the vocabulary is left out, so two pools with the same
 * members give the same image whatever they were asked; the LSH index is rebuilt from the words.
 */
export interface RougePoolImage {
  readonly format: 1;
  readonly ids: readonly string[];
  readonly words: readonly string[];
  /** Member i's tokens are tokens[starts[i] .. starts[i + 1]), base64 of little-endian int32. */
  readonly starts: string;
  readonly tokens: string;
}

/** A text prepared for the pool: its token ids and, with LSH search, its MinHash signature. */
export interface PreparedText {
  readonly tokens: Int32Array;
  readonly signature: Uint32Array | undefined;
}

export interface RougeMatch {
  readonly id: string;
  /** ROUGE-L F-measure. */
  readonly score: number;
}

/**
 * The accepted pool behind `rougeFilter`: token sequences of accepted texts, and an LSH index over their
 * token MinHash when searching by LSH. Usable on its own (e.g. to pre-load seed tasks or to benchmark).
 */
export class RougePool {
  readonly threshold: number;
  readonly search: "lsh" | "brute";
  /** Whether a score of exactly `threshold` is a match. */
  private readonly dropsAtThreshold: boolean;
  /** Token ids of every pool member back to back; member i is arena[starts[i] .. starts[i + 1]). */
  private arena = new Int32Array(1024);
  private starts = new Int32Array(1025);
  private readonly ids: string[] = [];
  private readonly vocabulary = new Map<string, number>();
  /** The vocabulary's words by token id. */
  private readonly words: string[] = [];
  private readonly index: LshIndex | undefined;
  private readonly hasher: MinHasher;
  private readonly ngram: number;
  private hashes = new Uint32Array(64);
  private readonly matcher = new LcsMatcher();
  /** LCS computations so far: what the search saves, against `size` per query for brute force. */
  comparisons = 0;

  constructor(options: RougePoolOptions = {}) {
    const config = resolved(options);
    if (!(config.threshold > 0 && config.threshold <= 1)) throw new ConfigError(`rouge threshold must be in (0, 1], got ${config.threshold}`);
    if (config.search !== "lsh" && config.search !== "brute") throw new ConfigError(`rouge search must be "lsh" or "brute", got ${JSON.stringify(config.search)}`);
    if (!Number.isInteger(config.ngram) || config.ngram < 1) throw new ConfigError(`rouge ngram must be a positive integer, got ${config.ngram}`);
    if (config.atThreshold !== undefined && config.atThreshold !== "drop" && config.atThreshold !== "keep") {
      throw new ConfigError(`rouge atThreshold must be "drop" or "keep", got ${JSON.stringify(config.atThreshold)}`);
    }
    this.threshold = config.threshold;
    this.dropsAtThreshold = config.atThreshold !== "keep";
    this.search = config.search;
    this.ngram = config.ngram;
    const shape = poolBands(config);
    if (config.numPerm % 2 !== 0) throw new ConfigError(`rouge numPerm must be even, got ${config.numPerm}`);
    // Half as many 32-bit permutations, each giving two 16-bit minima (see halfSignature).
    this.hasher = createMinHasher({ numPerm: config.numPerm / 2, seed: config.seed });
    // LCS decides, so the index needs no fingerprints to confirm with.
    this.index =
      config.search === "lsh" ? new LshIndex({ numPerm: config.numPerm, bands: shape.bands, rows: shape.rows, fingerprints: false }) : undefined;
  }

  get size(): number {
    return this.ids.length;
  }

  prepare(text: string): PreparedText {
    return this.prepareWords(rougeTokens(text));
  }

  private prepareWords(words: readonly string[]): PreparedText {
    const tokens = new Int32Array(words.length);
    for (let i = 0; i < words.length; i++) {
      let id = this.vocabulary.get(words[i]!);
      if (id === undefined) {
        id = this.vocabulary.size;
        this.vocabulary.set(words[i]!, id);
        this.words.push(words[i]!);
      }
      tokens[i] = id;
    }
    return { tokens, signature: this.index && words.length > 0 ? this.signatureOf(words) : undefined };
  }

  /**
   * MinHash of the token n-grams (over the rouge tokens, so both sides see the same words), each numbered
   * by its occurrence ("the", "the#2"): the Jaccard of these multisets bounds ROUGE-L from above even
   * when words repeat (an LCS never exceeds the multiset intersection), where that of plain token sets
   * does not: "the cat saw the dog" and "the dog saw the cat" share 4 of 5 tokens but only 3 of 4 words.
   */
  private signatureOf(words: readonly string[]): Uint32Array {
    const n = Math.min(this.ngram, words.length);
    const count = words.length - n + 1;
    if (this.hashes.length < count) this.hashes = new Uint32Array(count * 2);
    const occurrences = new Map<number, number>();
    for (let i = 0; i < count; i++) {
      let h = hashString(words[i]!, 0x5bd1e995);
      for (let k = 1; k < n; k++) h = hashString(words[i + k]!, h);
      const seen = (occurrences.get(h) ?? 0) + 1;
      occurrences.set(h, seen);
      this.hashes[i] = seen === 1 ? h : hashString(String(seen), h);
    }
    return halfSignature(this.hasher.seeds, this.hashes, count);
  }

  /** Visits the pool members that could reach the threshold: LSH candidates, or all, minus those ruled out by length. */
  private each(text: PreparedText, visit: (doc: number, score: number) => void): void {
    const tokens = text.tokens;
    if (tokens.length === 0) return;
    const matcher = this.matcher;
    matcher.setQuery(tokens);
    const { arena, starts, threshold } = this;
    const m = tokens.length;
    const consider = (doc: number) => {
      const start = starts[doc]!;
      const end = starts[doc + 1]!;
      if (rougeLBound(m, end - start) < threshold) return;
      this.comparisons++;
      visit(doc, (2 * matcher.lcs(arena, start, end)) / (m + end - start));
    };
    if (this.index && text.signature) {
      const candidates = this.index.candidates(text.signature);
      // Read every candidate's first token before comparing any: the reads are independent, so the CPU
      // overlaps their cache misses instead of taking them one comparison at a time.
      let touched = 0;
      for (const doc of candidates) touched += arena[starts[doc]!]!;
      if (touched === -1) return;
      for (const doc of candidates) consider(doc);
    } else {
      for (let doc = 0; doc < this.ids.length; doc++) consider(doc);
    }
  }

  /** The most similar pool member at or above the threshold (the oldest on ties), if any. */
  best(text: PreparedText): RougeMatch | undefined {
    let best = -1;
    let bestScore = 0;
    this.each(text, (doc, score) => {
      if (score > bestScore) {
        bestScore = score;
        best = doc;
      }
    });
    return best >= 0 && this.reaches(bestScore) ? { id: this.ids[best]!, score: bestScore } : undefined;
  }

  /** Every pool member at or above the threshold. */
  matches(text: PreparedText): RougeMatch[] {
    const found: RougeMatch[] = [];
    this.each(text, (doc, score) => {
      if (this.reaches(score)) found.push({ id: this.ids[doc]!, score });
    });
    return found;
  }

  private reaches(score: number): boolean {
    return this.dropsAtThreshold ? score >= this.threshold : score > this.threshold;
  }

  /** Adds an accepted text. A text without tokens is not added: its ROUGE-L is 0 against everything. */
  add(id: string, text: PreparedText): void {
    if (text.tokens.length === 0) return;
    const doc = this.ids.length;
    const start = this.starts[doc]!;
    const end = start + text.tokens.length;
    if (end > this.arena.length) {
      const arena = new Int32Array(Math.max(end, this.arena.length * 2));
      arena.set(this.arena);
      this.arena = arena;
    }
    this.arena.set(text.tokens, start);
    if (doc + 2 > this.starts.length) {
      const starts = new Int32Array(this.starts.length * 2);
      starts.set(this.starts);
      this.starts = starts;
    }
    this.starts[doc + 1] = end;
    this.ids.push(id);
    if (this.index && text.signature) this.index.insert(id, text.signature);
  }

  /** The members, to save (see `RougePoolImage`). */
  image(): RougePoolImage {
    const count = this.ids.length;
    const total = this.starts[count]!;
    const renumber = new Int32Array(this.vocabulary.size).fill(-1);
    const words: string[] = [];
    const tokens = new Int32Array(total);
    for (let i = 0; i < total; i++) {
      const old = this.arena[i]!;
      if (renumber[old] === -1) {
        renumber[old] = words.length;
        words.push(this.words[old]!);
      }
      tokens[i] = renumber[old]!;
    }
    return { format: 1, ids: [...this.ids], words, starts: toBase64(this.starts.slice(0, count + 1)), tokens: toBase64(tokens) };
  }

  /** Adds the members of a saved pool, in their order, to this (empty) pool. */
  restore(image: RougePoolImage): void {
    if (image.format !== 1) throw new ConfigError(`ROUGE pool image format ${String(image.format)} is not supported`);
    if (this.ids.length > 0) throw new ConfigError("a ROUGE pool image is restored into an empty pool");
    const starts = int32FromBase64(image.starts);
    const tokens = int32FromBase64(image.tokens);
    if (starts.length !== image.ids.length + 1) throw new ConfigError(`ROUGE pool image holds ${image.ids.length} ids and ${starts.length - 1} members`);
    image.ids.forEach((id, i) => {
      const words = Array.from(tokens.subarray(starts[i]!, starts[i + 1]!), (token) => image.words[token]!);
      this.add(id, this.prepareWords(words));
    });
  }
}

function poolBands(config: { numPerm: number; lshThreshold: number; candidateRecall: number; bands?: number; rows?: number }) {
  return resolveBands({
    numPerm: config.numPerm,
    threshold: config.lshThreshold,
    recall: config.candidateRecall,
    bands: config.bands,
    rows: config.rows,
  });
}

/**
 * Self-Instruct's novelty filter: rejects a sample whose ROUGE-L F-measure (lowercased word tokens, as the
 * rouge_score package computes it) against any sample this filter accepted before is at or above
 * `threshold`. With `search: "lsh"` the pool is searched through a MinHash LSH index over token sets, so a
 * sample is compared with its few plausible matches instead of the whole pool; exact LCS decides. Pairs
 * whose lengths alone rule the threshold out are skipped in both modes. The pool is saved with each run
 * checkpoint (a temporary file, then renamed) and reloaded when the run resumes; a sample that was in
 * flight at the checkpoint finds its own id among the members loaded and is kept, as it was the first
 * time (once: a member this run added is never taken for the sample itself).
 *
 * Reads: `field`. Writes: nothing.
 * Drop reasons: `too_similar` (`duplicateOf` = the most similar accepted sample, `value` = its ROUGE-L, `threshold`).
 *
 * @example
 * rougeFilter({ field: "instruction", threshold: 0.7 })
 */
export function rougeFilter(options: RougeFilterOptions = {}): Operator {
  const config = resolved(options);
  const { name, field, checkpoint, ...poolOptions } = config;
  // Built once here so bad options fail when the graph is built; each run gets a fresh pool.
  new RougePool(poolOptions);
  const shape = poolBands(config);

  /** Reads the pool a previous session saved, once per run, at the first sample or checkpoint (which bring the context). */
  const load = (state: RougeState, context: RunContext): RougePool => {
    if (state.pool) return state.pool;
    const pool = new RougePool(poolOptions);
    const bytes = checkpoint && context.resumed ? readState(statePath(context, name)) : undefined;
    if (bytes) {
      const image = JSON.parse(new TextDecoder().decode(bytes)) as RougePoolImage;
      pool.restore(image);
      state.replayable = new Set(image.ids);
      state.saved = pool.size;
    }
    state.pool = pool;
    return pool;
  };
  const save = (state: RougeState, context: RunContext): Promise<void> => {
    const pool = load(state, context);
    const path = checkpoint ? statePath(context, name) : undefined;
    // The pool only grows: the same size is the same pool, already on disk.
    if (!path || pool.size === state.saved) return state.writes;
    // Taken now, while it matches what the runner just committed; written in order behind earlier saves.
    const image = new TextEncoder().encode(JSON.stringify(pool.image()));
    state.saved = pool.size;
    state.writes = state.writes.then(() => writeStateAtomic(path, image));
    return state.writes;
  };

  return defineFilter<RougeState>({
    name,
    params: { ...config, name: undefined, bands: shape.bands, rows: shape.rows },
    reads: [field],
    state: () => ({ pool: undefined, replayable: new Set(), saved: -1, writes: Promise.resolve() }),
    test(sample, state, context) {
      const pool = load(state, context);
      // The replay of a sample kept before a crash but not committed meets its checkpointed member: kept again, once.
      if (state.replayable.delete(sample.id)) return true;
      const text = pool.prepare(fieldValue(sample, field));
      const match = pool.best(text);
      if (match) return drop("too_similar", { duplicateOf: match.id, value: match.score, threshold: pool.threshold });
      pool.add(sample.id, text);
      return true;
    },
    checkpoint: save,
  });
}

interface RougeState {
  pool: RougePool | undefined;
  /**
   * Ids of the members loaded from the checkpoint, until each one's own sample meets it (replayed after a
   * resume). A member this run added is never "me": ids are unique, so an equal id twice is a duplicate.
   */
  replayable: Set<string>;
  /** Pool size last saved or restored; -1 before the first save of a run that restored nothing. */
  saved: number;
  writes: Promise<void>;
}
