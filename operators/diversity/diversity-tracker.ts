import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, truncateSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { ConfigError, defineTap, type Operator, type RunContext, type Sample, type SharedServices } from "../../src/index.ts";
import { fieldList, fieldValue, textOf, type Fields } from "../dedup/fields.ts";
import { createMinHasher, hashKey64, hashString, isEmptySignature, jaccardEstimate, words, type ShingleOptions } from "../dedup/minhash.ts";
import { readState, statePath, writeStateAtomic } from "../dedup/state-file.ts";
import { opening } from "./openings.ts";
import {
  DistinctCounter,
  LengthStats,
  Reservoir,
  seededRandom,
  SpaceSaving,
  type DistinctCounterImage,
  type LengthStatsImage,
  type LengthSummary,
  type SeededRandom,
  type SpaceSavingImage,
} from "./sketches.ts";
import { toBase64, uint16FromBase64, uint32FromBase64 } from "./state-image.ts";

export interface DiversityTrackerOptions {
  /** Operator name in metrics and the state file (`<runDir>/state/<name>.bin`). Default "diversity_tracker". */
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
  /**
   * With a run folder, save what was measured with each run checkpoint and reload it on resume, so the
   * summary and snapshots describe the whole run, not its last session. Costs 8 bytes per sample (a hash of
   * its id, so a sample replayed after a crash is counted once). Default true.
   */
  readonly checkpoint?: boolean;
  /**
   * The workers' shared state of a scaled-out run (GraphEnvironment.shared): when the input completes, the
   * distinct 1/2/3-gram counters of group "all" are merged into the run's counters
   * `<name>.distinct_1/2/3` in Redis, which `rxsynth status` shows for the whole run. Needs hllPrecision 14.
   */
  readonly shared?: SharedServices;
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
  checkpoint: true,
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

/** What was measured, and nothing else: no clock time, so the same samples always give the same bytes. */
export interface DiversitySummary {
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

/** One group's figures as a checkpoint saves them. */
interface GroupImage {
  readonly samples: number;
  readonly distinct: readonly [DistinctCounterImage, DistinctCounterImage, DistinctCounterImage];
  readonly totals: readonly number[];
  readonly length: LengthStatsImage;
  readonly leading: SpaceSavingImage;
  readonly openings: SpaceSavingImage;
  readonly openingsMatched: number;
  /** The pool reservoir: signatures back to back, `width` values each. */
  readonly pool: { readonly seen: number; readonly width: number; readonly signatures: string };
  readonly similaritySum: number;
  readonly similarityCount: number;
}

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

  image(): GroupImage {
    const pool = this.pool.items;
    const width = pool[0]?.length ?? 0;
    const signatures = new Uint32Array(pool.length * width);
    pool.forEach((sig, i) => signatures.set(sig, i * width));
    return {
      samples: this.samples,
      distinct: [this.distinct[0].image(), this.distinct[1].image(), this.distinct[2].image()],
      totals: [...this.totals],
      length: this.length.image(),
      leading: this.leading.image(),
      openings: this.openings.image(),
      openingsMatched: this.openingsMatched,
      pool: { seen: this.pool.seen, width, signatures: toBase64(signatures) },
      similaritySum: this.similaritySum,
      similarityCount: this.similarityCount,
    };
  }

  restore(image: GroupImage): void {
    this.samples = image.samples;
    image.distinct.forEach((counter, n) => this.distinct[n as 0 | 1 | 2].restore(counter));
    this.totals.splice(0, 3, ...image.totals);
    this.length.restore(image.length);
    this.leading.restore(image.leading);
    this.openings.restore(image.openings);
    this.openingsMatched = image.openingsMatched;
    const all = uint32FromBase64(image.pool.signatures);
    const { width } = image.pool;
    const signatures = width === 0 ? [] : Array.from({ length: all.length / width }, (_, i) => all.slice(i * width, (i + 1) * width));
    this.pool.restore(signatures, image.pool.seen);
    this.similaritySum = image.similaritySum;
    this.similarityCount = image.similarityCount;
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
  random: SeededRandom;
  /** Figures last added to the metrics totals, so totals can follow the current values. */
  readonly reported: Map<string, number>;
  /** Whether the saved state, if any, was read (on the first sample or hook, which bring the run's context). */
  loaded: boolean;
  /**
   * 64-bit hashes of the ids counted (4 UTF-16 units each), in the order counted, kept when checkpointing:
   * a sample in flight at a checkpoint was counted there and is replayed after a crash, and must not count
   * twice. `true`: loaded from the checkpoint and not yet met by its replay (met once at most, so a
   * sample this run counted is never taken for an earlier one).
   */
  counted: Map<string, boolean> | undefined;
  /**
   * Bytes of the snapshot file that hold the periodic snapshots of the samples counted. Anything after
   * them is the closing snapshot of a session, or lines a crash left after the checkpoint this state
   * comes from: cut before the next snapshot is written.
   */
  snapshotBytes: number;
  snapshotTrimmed: boolean;
  /** Something changed since the state was restored or last saved. */
  dirty: boolean;
  writes: Promise<void>;
}

/** What a checkpoint saves, as JSON, in `<runDir>/state/<name>.bin`. */
interface SavedTracker {
  readonly format: 1;
  readonly samples: number;
  readonly random: number;
  readonly reported: Readonly<Record<string, number>>;
  /** The hashes of `State.counted`, back to back. */
  readonly counted: string;
  readonly snapshotBytes: number;
  readonly groups: ReadonlyArray<readonly [string, GroupImage]>;
}

/**
 * Tracks how diverse the accepted samples are, in bounded memory, overall and per origin and generation
 * depth: distinct-1/2/3 ratios and vocabulary (exact sets up to a cap, then HyperLogLog), length
 * distribution, the most common leading words and verb-object openings (space-saving top-k), and the mean
 * MinHash similarity of each new sample to a reservoir of the pool accepted before it.
 * With a run folder, appends a snapshot line to `diversity.jsonl` every `snapshotEvery` samples and writes
 * `diversity-summary.json` at the end; in memory, `tracker.summary()` answers. Totals
 * `diversity.distinct_1/2/3` and `diversity.pool_similarity` (of group "all") follow the latest snapshot.
 * What it measured is saved with each run checkpoint (a temporary file, then renamed) and reloaded when
 * the run resumes, so a run killed and resumed ends with the snapshots and summary of an uninterrupted
 * one: snapshot lines written after the checkpoint are cut, and a sample in flight at the checkpoint,
 * counted then and replayed after the crash, is recognised by its id and not counted again. A file whose
 * content would not change is not rewritten, so rerunning a finished run leaves the folder as it was.
 *
 * Reads: `fields`. Writes: nothing (a tap). Drop reasons: none.
 *
 * @example
 * const tracker = diversityTracker({ fields: "instruction", snapshotEvery: 500 });
 * // ... after the run: tracker.summary()?.groups.all.distinct2.ratio
 */
export function diversityTracker(options: DiversityTrackerOptions = {}): DiversityTracker {
  const config = { ...DEFAULTS, ...options, shared: undefined };
  const fields = fieldList(config.fields);
  const openingField = config.openingField ?? fields[0]!;
  if (!Number.isInteger(config.snapshotEvery) || config.snapshotEvery < 1) {
    throw new ConfigError(`snapshotEvery must be a positive integer, got ${config.snapshotEvery}`);
  }
  const hasher = createMinHasher({ numPerm: config.similarity.numPerm ?? 64, seed: config.seed, shingle: config.similarity.shingle ?? { kind: "word", n: 1 } });
  if (options.shared && config.hllPrecision !== 14) throw new ConfigError(`a shared diversity tracker needs hllPrecision 14 (Redis's HyperLogLog), got ${config.hllPrecision}`);
  const sharedCounters = options.shared ? ([1, 2, 3] as const).map((n) => options.shared!.distinct(`${config.name}.distinct_${n}`)) : undefined;
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
    return { samples: state.samples, groups };
  };

  const newState = (random: SeededRandom): State => ({
    groups: new Map(),
    samples: 0,
    random,
    reported: new Map(),
    loaded: false,
    counted: undefined,
    snapshotBytes: 0,
    snapshotTrimmed: false,
    dirty: true,
    writes: Promise.resolve(),
  });

  const newGroup = (state: State) => new GroupStats(config, () => state.random());

  /** Reads what a previous session saved, once per run; a run that is not resumed starts empty. */
  const load = (state: State, context: RunContext): State => {
    if (state.loaded) return state;
    state.loaded = true;
    const path = config.checkpoint ? statePath(context, config.name) : undefined;
    if (!path) return state;
    state.counted = new Map();
    const bytes = context.resumed ? readState(path) : undefined;
    if (!bytes) return state;
    const saved = JSON.parse(new TextDecoder().decode(bytes)) as SavedTracker;
    if (saved.format !== 1) throw new ConfigError(`${path}: diversity tracker state format ${String(saved.format)} is not supported`);
    state.samples = saved.samples;
    state.random = seededRandom(saved.random);
    for (const [name, value] of Object.entries(saved.reported)) state.reported.set(name, value);
    const hashes = uint16FromBase64(saved.counted);
    for (let i = 0; i < hashes.length; i += 4) state.counted.set(String.fromCharCode(hashes[i]!, hashes[i + 1]!, hashes[i + 2]!, hashes[i + 3]!), true);
    state.snapshotBytes = saved.snapshotBytes;
    for (const [key, image] of saved.groups) {
      const group = newGroup(state);
      group.restore(image);
      state.groups.set(key, group);
    }
    state.dirty = false;
    return state;
  };

  const save = (state: State, context: RunContext): Promise<void> => {
    load(state, context);
    const path = config.checkpoint ? statePath(context, config.name) : undefined;
    if (!path || !state.dirty) return state.writes;
    const hashes = new Uint16Array(state.counted!.size * 4);
    let i = 0;
    for (const key of state.counted!.keys()) for (let k = 0; k < 4; k++) hashes[i++] = key.charCodeAt(k);
    const saved: SavedTracker = {
      format: 1,
      samples: state.samples,
      random: state.random.state(),
      reported: Object.fromEntries(state.reported),
      counted: toBase64(hashes),
      snapshotBytes: state.snapshotBytes,
      groups: [...state.groups].map(([key, group]) => [key, group.image()] as const),
    };
    // Taken now, while it matches what the runner just committed; written in order behind earlier saves.
    const image = new TextEncoder().encode(JSON.stringify(saved));
    state.dirty = false;
    state.writes = state.writes.then(() => writeStateAtomic(path, image));
    return state.writes;
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
      const before = state.reported.get(name) ?? 0;
      if (value === before && state.reported.has(name)) continue;
      context.metrics.add(name, value - before);
      state.reported.set(name, value);
      state.dirty = true;
    }
  };

  /** A periodic snapshot: part of the run's record, so it counts in `snapshotBytes`. */
  const appendSnapshot = (state: State, path: string, line: string) => {
    if (!state.snapshotTrimmed) {
      state.snapshotTrimmed = true;
      const size = existsSync(path) ? statSync(path).size : 0;
      if (size > state.snapshotBytes) truncateSync(path, state.snapshotBytes);
      // Shorter than saved: someone cut the file; carry on from what is there.
      else state.snapshotBytes = size;
    }
    appendFileSync(path, line);
    state.snapshotBytes += Buffer.byteLength(line);
  };

  /** The closing snapshot of a session (`line` is empty when the last periodic one already says it all). */
  const closeSnapshots = (state: State, path: string, line: string) => {
    const expected = Buffer.from(line);
    const size = existsSync(path) ? statSync(path).size : 0;
    if (size < state.snapshotBytes) state.snapshotBytes = size;
    if (size - state.snapshotBytes === expected.length && tailEquals(path, state.snapshotBytes, expected)) return;
    if (size > state.snapshotBytes) truncateSync(path, state.snapshotBytes);
    if (expected.length > 0) appendFileSync(path, expected);
    state.snapshotTrimmed = true;
  };

  const snapshot = (state: State, context: RunContext, periodic: boolean) => {
    const summary = periodic || state.samples % config.snapshotEvery !== 0 ? summarize(state) : undefined;
    if (summary) report(state, context, summary);
    if (!context.runDir) return;
    mkdirSync(context.runDir, { recursive: true });
    const path = join(context.runDir, config.snapshotFile);
    const line = summary ? `${JSON.stringify(summary)}\n` : "";
    if (periodic) appendSnapshot(state, path, line);
    else closeSnapshots(state, path, line);
  };

  const operator = defineTap<State>({
    name: config.name,
    params: { ...config, name: undefined },
    reads: fields,
    state: () => {
      const state = newState(seededRandom(config.seed));
      latest = state;
      return state;
    },
    observe(sample, state, context) {
      load(state, context);
      if (state.counted) {
        const key = hashKey64(sample.id);
        const replayable = state.counted.get(key) === true;
        state.counted.set(key, false);
        if (replayable) return;
      }
      state.dirty = true;
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
          group = newGroup(state);
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
      if (state.samples % config.snapshotEvery === 0) snapshot(state, context, true);
    },
    async complete(state, context) {
      load(state, context);
      snapshot(state, context, false);
      const all = state.groups.get("all");
      if (sharedCounters && all) {
        // A chunk's folder names it, and stays the name when the chunk is resumed or redone.
        const part = context.runDir ? basename(context.runDir) : "run";
        await Promise.all(sharedCounters.map((counter, n) => counter.merge(all.distinct[n as 0 | 1 | 2].registerValues(), part, all.totals[n]!)));
      }
      if (!context.runDir) return;
      const path = join(context.runDir, config.summaryFile);
      const text = `${JSON.stringify(summarize(state), null, 2)}\n`;
      if (existsSync(path) && readFileSync(path, "utf8") === text) return;
      const temp = `${path}.${process.pid}.tmp`;
      await writeFile(temp, text);
      await rename(temp, path);
    },
    checkpoint: save,
  });
  return Object.assign(operator, { summary: () => (latest ? summarize(latest) : undefined) });
}

/** Whether the file holds exactly `expected` from byte `start` (the caller checked the length). */
function tailEquals(path: string, start: number, expected: Buffer): boolean {
  if (expected.length === 0) return true;
  const fd = openSync(path, "r");
  try {
    const actual = Buffer.alloc(expected.length);
    readSync(fd, actual, 0, expected.length, start);
    return actual.equals(expected);
  } finally {
    closeSync(fd);
  }
}
