import { appendFileSync, mkdirSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError, defineTap, type Operator, type RunContext, type Sample } from "../../src/index.ts";
import { fieldList, fieldValue, textOf, type Fields } from "../dedup/fields.ts";
import { createMinHasher, hashString, isEmptySignature, jaccardEstimate, words, type ShingleOptions } from "../dedup/minhash.ts";
import { opening } from "./openings.ts";
import { DistinctCounter, LengthStats, Reservoir, seededRandom, SpaceSaving, type LengthSummary } from "./sketches.ts";

export interface DiversityTrackerOptions {
  /** Operator name in metrics. Default "diversity_tracker". */
  readonly name?: string;
  /** Text measured (distinct n-grams, vocabulary, length, similarity), joined with a blank line. Default "instruction". */
  readonly fields?: Fields;
  /** Field whose opening words are counted. Default the first of `fields`. */
  readonly openingField?: string;
  /** Samples between snapshots appended to `<runDir>/<snapshotFile>`. Default 1000. */
  readonly snapshotEvery?: number;
  /** Default "diversity.jsonl". */
  readonly snapshotFile?: string;
  /** Written when the input completes. Default "diversity-summary.json". */
  readonly summaryFile?: string;
  /** Distinct n-grams are counted exactly up to this many per counter, then by HyperLogLog. Default 10,000. */
  readonly exactDistinctCap?: number;
  /** HyperLogLog precision (registers = 2^p; error about 1.04 / sqrt(2^p)). Default 14. */
  readonly hllPrecision?: number;
  /** Items tracked by each top-k counter (space-saving). Default 200. */
  readonly topKCapacity?: number;
  /** Items listed in summaries. Default 20. */
  readonly topK?: number;
  /** Lengths kept for quantiles (exact while the group is no larger). Default 2048. */
  readonly lengthReservoir?: number;
  /** Signatures of the accepted pool kept per group for the similarity estimate. Default 512. */
  readonly poolReservoir?: number;
  /** Pool signatures each new sample is compared with. Default 64. */
  readonly compareWith?: number;
  /** MinHash for the pool similarity. Default 64 permutations over word unigrams. */
  readonly similarity?: { readonly numPerm?: number; readonly shingle?: ShingleOptions };
  /** Depths at or above this are one group ("depth=5+"). Default 5. */
  readonly maxDepthGroup?: number;
  /** Seed of the reservoirs. Default 1. */
  readonly seed?: number;
}

const DEFAULTS = {
  name: "diversity_tracker",
  fields: "instruction",
  snapshotEvery: 1000,
  snapshotFile: "diversity.jsonl",
  summaryFile: "diversity-summary.json",
  exactDistinctCap: 10_000,
  hllPrecision: 14,
  topKCapacity: 200,
  topK: 20,
  lengthReservoir: 2048,
  poolReservoir: 512,
  compareWith: 64,
  similarity: { numPerm: 64, shingle: { kind: "word", n: 1 } },
  maxDepthGroup: 5,
  seed: 1,
} as const;

export interface DistinctSummary {
  /** n-grams seen (with repeats). */
  readonly total: number;
  /** Distinct n-grams (estimated once past the exact cap; see `exact`). */
  readonly distinct: number;
  /** distinct / total: the distinct-n metric of Li et al. (2016). */
  readonly ratio: number;
  readonly exact: boolean;
}

export interface GroupSummary {
  readonly samples: number;
  readonly distinct1: DistinctSummary;
  readonly distinct2: DistinctSummary;
  readonly distinct3: DistinctSummary;
  /** Distinct words (= distinct1.distinct). */
  readonly vocabulary: number;
  /** Words per sample. */
  readonly length: LengthSummary;
  readonly leadingWords: ReadonlyArray<{ readonly word: string; readonly count: number }>;
  readonly openings: ReadonlyArray<{ readonly verb: string; readonly object: string; readonly count: number }>;
  /** Samples whose opening matched the verb-object heuristic. */
  readonly openingsMatched: number;
  /**
   * Mean estimated Jaccard similarity (MinHash) of each sample to a sample of the pool accepted before it;
   * lower is more diverse. null until a sample had a pool to compare with.
   */
  readonly poolSimilarity: number | null;
}

export interface DiversitySummary {
  /** Epoch milliseconds. */
  readonly at: number;
  readonly samples: number;
  /** "all", then "origin=<origin>" and "depth=<depth>" (the last depth group is "<max>+"). */
  readonly groups: Readonly<Record<string, GroupSummary>>;
}

/** An operator that also answers what it has measured so far (in the run it last took part in). */
export type DiversityTracker = Operator & { summary(): DiversitySummary | undefined };

const wordsOf = (text: string): string[] => words(text);

type GroupConfig = Pick<
  Required<DiversityTrackerOptions>,
  "exactDistinctCap" | "hllPrecision" | "lengthReservoir" | "topKCapacity" | "poolReservoir"
>;

class GroupStats {
  samples = 0;
  readonly distinct: [DistinctCounter, DistinctCounter, DistinctCounter];
  readonly totals = [0, 0, 0];
  readonly length: LengthStats;
  readonly leading: SpaceSaving;
  readonly openings: SpaceSaving;
  openingsMatched = 0;
  readonly pool: Reservoir<Uint32Array>;
  similaritySum = 0;
  similarityCount = 0;

  constructor(config: GroupConfig, random: () => number) {
    this.distinct = [0, 1, 2].map(() => new DistinctCounter(config.exactDistinctCap, config.hllPrecision)) as GroupStats["distinct"];
    this.length = new LengthStats(config.lengthReservoir, random);
    this.leading = new SpaceSaving(config.topKCapacity);
    this.openings = new SpaceSaving(config.topKCapacity);
    this.pool = new Reservoir(config.poolReservoir, random);
  }

  summary(topK: number): GroupSummary {
    const distinct = (n: 0 | 1 | 2): DistinctSummary => {
      const total = this.totals[n]!;
      const count = this.distinct[n].count;
      return { total, distinct: count, ratio: total === 0 ? 0 : count / total, exact: this.distinct[n].isExact };
    };
    return {
      samples: this.samples,
      distinct1: distinct(0),
      distinct2: distinct(1),
      distinct3: distinct(2),
      vocabulary: this.distinct[0].count,
      length: this.length.summary(),
      leadingWords: this.leading.top(topK).map(({ item, count }) => ({ word: item, count })),
      openings: this.openings.top(topK).map(({ item, count }) => {
        const [verb, object] = item.split(" ") as [string, string];
        return { verb, object, count };
      }),
      openingsMatched: this.openingsMatched,
      poolSimilarity: this.similarityCount === 0 ? null : this.similaritySum / this.similarityCount,
    };
  }
}

interface State {
  readonly groups: Map<string, GroupStats>;
  samples: number;
  readonly random: () => number;
  /** Figures last added to the metrics totals, so totals can follow the current values. */
  readonly reported: Map<string, number>;
}

/**
 * Tracks how diverse the accepted samples are, in bounded memory, overall and per origin and generation
 * depth: distinct-1/2/3 ratios and vocabulary (exact sets up to a cap, then HyperLogLog), length
 * distribution, the most common leading words and verb-object openings (space-saving top-k), and the mean
 * MinHash similarity of each new sample to a reservoir of the pool accepted before it.
 * With a run folder, appends a snapshot line to `diversity.jsonl` every `snapshotEvery` samples and writes
 * `diversity-summary.json` at the end; in memory, `tracker.summary()` answers. Totals
 * `diversity.distinct_1/2/3` and `diversity.pool_similarity` (of group "all") follow the latest snapshot.
 *
 * Reads: `fields`. Writes: nothing (a tap). Drop reasons: none.
 *
 * @example
 * const tracker = diversityTracker({ fields: "instruction", snapshotEvery: 500 });
 * // ... after the run: tracker.summary()?.groups.all.distinct2.ratio
 */
export function diversityTracker(options: DiversityTrackerOptions = {}): DiversityTracker {
  const config = { ...DEFAULTS, ...options };
  const fields = fieldList(config.fields);
  const openingField = config.openingField ?? fields[0]!;
  if (!Number.isInteger(config.snapshotEvery) || config.snapshotEvery < 1) {
    throw new ConfigError(`snapshotEvery must be a positive integer, got ${config.snapshotEvery}`);
  }
  const hasher = createMinHasher({ numPerm: config.similarity.numPerm ?? 64, seed: config.seed, shingle: config.similarity.shingle ?? { kind: "word", n: 1 } });
  let latest: State | undefined;

  const groupKeys = (sample: Sample): string[] => {
    const depth = sample.provenance.depth;
    const depthKey = depth >= config.maxDepthGroup ? `${config.maxDepthGroup}+` : String(depth);
    return ["all", `origin=${sample.provenance.origin}`, `depth=${depthKey}`];
  };

  const summarize = (state: State): DiversitySummary => {
    const groups: Record<string, GroupSummary> = {};
    const keys = [...state.groups.keys()].sort((a, b) => (a === "all" ? -1 : b === "all" ? 1 : a < b ? -1 : a > b ? 1 : 0));
    for (const key of keys) groups[key] = state.groups.get(key)!.summary(config.topK);
    return { at: Date.now(), samples: state.samples, groups };
  };

  const report = (state: State, context: RunContext, summary: DiversitySummary) => {
    const all = summary.groups.all;
    if (!all) return;
    const figures: Record<string, number> = {
      "diversity.distinct_1": all.distinct1.ratio,
      "diversity.distinct_2": all.distinct2.ratio,
      "diversity.distinct_3": all.distinct3.ratio,
      "diversity.vocabulary": all.vocabulary,
      "diversity.pool_similarity": all.poolSimilarity ?? 0,
    };
    for (const [name, value] of Object.entries(figures)) {
      context.metrics.add(name, value - (state.reported.get(name) ?? 0));
      state.reported.set(name, value);
    }
  };

  const snapshot = (state: State, context: RunContext) => {
    const summary = summarize(state);
    report(state, context, summary);
    if (!context.runDir) return;
    mkdirSync(context.runDir, { recursive: true });
    appendFileSync(join(context.runDir, config.snapshotFile), `${JSON.stringify(summary)}\n`);
  };

  const operator = defineTap<State>({
    name: config.name,
    params: { ...config, name: undefined },
    reads: fields,
    state: () => {
      const state: State = { groups: new Map(), samples: 0, random: seededRandom(config.seed), reported: new Map() };
      latest = state;
      return state;
    },
    observe(sample, state, context) {
      state.samples++;
      const text = textOf(sample, fields);
      const words = wordsOf(text);
      // Two independent 32-bit hashes per n-gram (n = 1, 2, 3): an order-sensitive combination of its words'.
      const ngrams: [Uint32Array, Uint32Array][] = [];
      let h1 = Uint32Array.from(words, (w) => hashString(w, 0x1234567));
      let h2 = Uint32Array.from(words, (w) => hashString(w, 0x7654321));
      for (let n = 0; n < 3; n++) {
        if (n > 0) {
          const length = Math.max(0, h1.length - 1);
          const next1 = new Uint32Array(length);
          const next2 = new Uint32Array(length);
          for (let i = 0; i < length; i++) {
            next1[i] = Math.imul(h1[i]! ^ (h1[i]! >>> 15), 0x2c1b3c6d) ^ ngrams[0]![0][i + n]!;
            next2[i] = Math.imul(h2[i]! ^ (h2[i]! >>> 13), 0x297a2d39) ^ ngrams[0]![1][i + n]!;
          }
          h1 = next1;
          h2 = next2;
        }
        ngrams.push([h1, h2]);
      }
      const openingWords = fields.length === 1 && openingField === fields[0] ? words : wordsOf(fieldValue(sample, openingField));
      const open = opening(openingWords);
      const sig = hasher.signature(text);
      const hasSignature = !isEmptySignature(sig);

      for (const key of groupKeys(sample)) {
        let group = state.groups.get(key);
        if (!group) {
          group = new GroupStats(config, state.random);
          state.groups.set(key, group);
        }
        group.samples++;
        for (let n = 0; n < 3; n++) {
          const counter = group.distinct[n as 0 | 1 | 2];
          const [first, second] = ngrams[n]!;
          for (let i = 0; i < first.length; i++) counter.add(first[i]!, second[i]!);
          group.totals[n]! += first.length;
        }
        group.length.add(words.length);
        if (open.leading !== undefined) group.leading.add(open.leading);
        if (open.verb !== undefined && open.object !== undefined) {
          group.openings.add(`${open.verb} ${open.object}`);
          group.openingsMatched++;
        }
        if (hasSignature) {
          const pool = group.pool.items;
          if (pool.length > 0) {
            const compare = Math.min(config.compareWith, pool.length);
            let sum = 0;
            for (let c = 0; c < compare; c++) {
              const other = compare === pool.length ? pool[c]! : pool[Math.floor(state.random() * pool.length)]!;
              sum += jaccardEstimate(sig, other);
            }
            group.similaritySum += sum / compare;
            group.similarityCount++;
          }
          group.pool.add(sig);
        }
      }
      if (state.samples % config.snapshotEvery === 0) snapshot(state, context);
    },
    async complete(state, context) {
      if (state.samples % config.snapshotEvery !== 0) snapshot(state, context);
      if (!context.runDir) return;
      const path = join(context.runDir, config.summaryFile);
      const temp = `${path}.${process.pid}.tmp`;
      await writeFile(temp, `${JSON.stringify(summarize(state), null, 2)}\n`);
      await rename(temp, path);
    },
  });
  return Object.assign(operator, { summary: () => (latest ? summarize(latest) : undefined) });
}
