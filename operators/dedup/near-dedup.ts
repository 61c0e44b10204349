import { ConfigError, defineAsyncFilter, defineFilter, drop, type Operator, type RunContext, type Sample, type SharedNearIndex, type SharedServices } from "../../src/index.ts";
import { fieldList, textOf, type Fields } from "./fields.ts";
import { groupedId, splitGroupedId } from "./grouped-id.ts";
import { LshIndex, resolveBands } from "./lsh.ts";
import { bands as bandKeys, createMinHasher, isEmptySignature, type MinHasher, type ShingleOptions } from "./minhash.ts";
import { readState, statePath, writeStateAtomic } from "./state-file.ts";

/** How two texts are judged near-duplicates: shared by the streaming operator and the offline clustering. */
export interface NearDuplicateMatch {
  /** Data fields compared, joined with a blank line. Default "text". */
  readonly fields?: Fields;
  /** Estimated Jaccard similarity of shingle sets at or above which two texts are near-duplicates. Default 0.8. */
  readonly threshold?: number;
  /** MinHash permutations. Default 128. */
  readonly numPerm?: number;
  /** Default word 5-grams. */
  readonly shingle?: ShingleOptions;
  /** Seed of the permutations. Default 1. */
  readonly seed?: number;
  /**
   * Probability that a pair exactly at `threshold` is compared at all: the LSH bands are the most selective
   * reaching it (`bandsForRecall`; 21 x 6 for 0.8 / 128). Candidates are confirmed on their signatures, so
   * a lower value only saves comparisons and loses duplicates. Default 0.99.
   */
  readonly candidateRecall?: number;
  /** Explicit LSH bands and rows, instead of `candidateRecall`. */
  readonly bands?: number;
  readonly rows?: number;
}

export interface NearDedupOptions extends NearDuplicateMatch {
  /** Operator name in metrics, rejects and the state file (`<runDir>/state/<name>.bin`). Default "near_dedup". */
  readonly name?: string;
  /** Save the index with each run checkpoint and reload it on resume. Default true. */
  readonly checkpoint?: boolean;
  /**
   * The workers' shared state of a scaled-out run (GraphEnvironment.shared): the index is one in Redis for
   * every worker instead of one in each. Unset (a single process): the local index.
   */
  readonly shared?: SharedServices;
  /**
   * Samples with one group key are never near-duplicates of each other, only of other groups' samples: the
   * instances of one task share its instruction, and a long instruction with short inputs would otherwise
   * make them near-duplicates of their siblings. Default: no groups.
   */
  readonly group?: (sample: Sample) => string;
}

const DEFAULTS = {
  name: "near_dedup",
  fields: "text",
  threshold: 0.8,
  numPerm: 128,
  shingle: { kind: "word", n: 5 },
  seed: 1,
  candidateRecall: 0.99,
  checkpoint: true,
} as const;

interface State {
  index: LshIndex | undefined;
  /** Documents `[0, restored)` came from the checkpoint; one of them may be met once by its own replayed sample. */
  restored: number;
  /** Per restored document: 1 once its replay has been met in this run. */
  replayed: Uint8Array;
  /** A document was inserted since the last save (or the load): a save with none would rewrite the same index. */
  changed: boolean;
  writes: Promise<void>;
  /** Index bytes and documents last reported to the run's metrics totals. */
  reportedBytes: number;
  sinceReport: number;
}

/** Totals the run report reads: bytes held by every dedup index and the samples in them. */
export const INDEX_BYTES_TOTAL = "dedup.index_bytes";
export const INDEXED_TOTAL = "dedup.indexed";

/**
 * Streaming near-duplicate removal with MinHash and LSH: a sample whose estimated Jaccard similarity to an
 * already kept sample reaches `threshold` is rejected; the first of a group is kept. Candidates come from
 * the LSH bands and are confirmed on their signatures, so a sample is compared with a handful of others,
 * not the pool. The index is saved with each run checkpoint (written to a temporary file, then renamed)
 * and reloaded when the run resumes; a sample that was in flight at the checkpoint finds itself in the
 * index and is kept, as it was the first time. "Itself" is a document loaded from the checkpoint, with
 * the sample's id (ids are unique, see `sourceSampleId`) and the same signature, not yet met in this run:
 * a document this run added is never "me", so a second sample with an equal id is compared like any other.
 *
 * Reads: `fields`. Writes: nothing.
 * Drop reasons: `near_duplicate` (`duplicateOf` = the kept sample, `value` = estimated Jaccard, `threshold`).
 * Metrics totals: `dedup.index_bytes`, `dedup.indexed`.
 *
 * @example
 * nearDedup({ fields: ["instruction", "output"], threshold: 0.8 })
 */
export function nearDedup(options: NearDedupOptions = {}): Operator {
  const config = { ...DEFAULTS, ...options };
  if (!(config.threshold > 0 && config.threshold < 1)) {
    throw new ConfigError(`nearDedup threshold must be in (0, 1), got ${config.threshold}`);
  }
  const fields = fieldList(config.fields);
  const hasher = createMinHasher({ numPerm: config.numPerm, seed: config.seed, shingle: config.shingle });
  // Resolved once, so a bad bands/rows setting fails when the graph is built, not at the first sample.
  const shape = resolveBands({
    numPerm: config.numPerm,
    threshold: config.threshold,
    recall: config.candidateRecall,
    bands: config.bands,
    rows: config.rows,
  });

  const group = options.group;
  const params = { ...config, name: undefined, shared: undefined, group: undefined, bands: shape.bands, rows: shape.rows, ...(group ? { grouped: true } : {}) };
  // Grouped, a document is stored under its group and id, so a match within the group can be passed over.
  const storedId = (sample: Sample) => (group ? groupedId(group(sample), sample.id) : sample.id);
  const plainId = (stored: string) => (group ? splitGroupedId(stored) : { group: undefined, id: stored });
  if (options.shared) {
    const index = options.shared.nearIndex(config.name, { numPerm: config.numPerm, ...shape, threshold: config.threshold, ...(group ? { grouped: true } : {}) });
    return sharedNearDedup({ name: config.name, threshold: config.threshold, ...shape }, params, fields, hasher, index, storedId, plainId);
  }

  const report = (state: State, context: RunContext, index: LshIndex) => {
    const bytes = index.memoryBytes();
    context.metrics.add(INDEX_BYTES_TOTAL, bytes - state.reportedBytes);
    context.metrics.add(INDEXED_TOTAL, state.sinceReport);
    state.reportedBytes = bytes;
    state.sinceReport = 0;
  };

  const load = (state: State, context: RunContext): LshIndex => {
    if (state.index) return state.index;
    const bytes = config.checkpoint ? readState(statePath(context, config.name)) : undefined;
    let index = new LshIndex({ numPerm: config.numPerm, bands: shape.bands, rows: shape.rows });
    if (bytes) {
      const saved = LshIndex.deserialize(bytes);
      if (saved.numPerm !== index.numPerm || saved.bands !== index.bands || saved.rows !== index.rows) {
        throw new ConfigError(
          `${config.name}: saved index has ${saved.numPerm} permutations in ${saved.bands} x ${saved.rows} bands, ` +
            `the options ask for ${index.numPerm} in ${index.bands} x ${index.rows}; use the original options or a new run folder`,
        );
      }
      index = saved;
      state.sinceReport = index.size;
      state.restored = index.size;
      state.replayed = new Uint8Array(index.size);
    }
    state.index = index;
    report(state, context, index);
    return index;
  };

  const save = (state: State, context: RunContext): Promise<void> => {
    const index = load(state, context);
    report(state, context, index);
    const path = config.checkpoint ? statePath(context, config.name) : undefined;
    // A rerun of a finished folder meets no sample, and must change no file.
    if (!path || !state.changed) return state.writes;
    state.changed = false;
    const image = index.serialize();
    state.writes = state.writes.then(() => writeStateAtomic(path, image));
    return state.writes;
  };

  return defineFilter<State>({
    name: config.name,
    params,
    reads: fields,
    state: () => ({ index: undefined, restored: 0, replayed: new Uint8Array(0), changed: false, writes: Promise.resolve(), reportedBytes: 0, sinceReport: 0 }),
    test(sample, state, context) {
      const index = load(state, context);
      const sig = hasher.signature(textOf(sample, fields));
      // Nothing to compare in an empty text: kept, and left out of the index so empties do not match each other.
      if (isEmptySignature(sig)) return true;
      let best: { id: string; jaccard: number } | undefined;
      const stored = storedId(sample);
      const ownGroup = group ? plainId(stored).group : undefined;
      for (const doc of index.candidates(sig)) {
        const { id, group: docGroup } = plainId(index.idOf(doc));
        if (id === sample.id && doc < state.restored && state.replayed[doc] === 0 && index.sameSignature(sig, doc)) {
          state.replayed[doc] = 1;
          return true;
        }
        if (ownGroup !== undefined && docGroup === ownGroup) continue;
        const jaccard = index.estimate(sig, doc);
        if (jaccard >= config.threshold && (!best || jaccard > best.jaccard)) best = { id, jaccard };
      }
      if (best) return drop("near_duplicate", { duplicateOf: best.id, value: best.jaccard, threshold: config.threshold });
      index.insert(stored, sig);
      state.changed = true;
      if (++state.sinceReport >= 1024) report(state, context, index);
      return true;
    },
    checkpoint: save,
    complete: save,
  });
}

/**
 * The same decision against the run's shared index: compare and insert are one atomic step in Redis, so of
 * two near-duplicates on different workers one is kept. Which one depends on timing, as it does for how
 * a chain (a ~ b ~ c, a !~ c) splits; no kept pair reaches the threshold either way.
 */
function sharedNearDedup(
  config: { readonly name: string; readonly threshold: number; readonly bands: number; readonly rows: number },
  params: object,
  fields: readonly string[],
  hasher: MinHasher,
  index: SharedNearIndex,
  storedId: (sample: Sample) => string,
  plainId: (stored: string) => { readonly id: string },
): Operator {
  return defineAsyncFilter({
    name: config.name,
    params,
    reads: fields,
    concurrency: 256,
    async test(sample) {
      const sig = hasher.signature(textOf(sample, fields));
      if (isEmptySignature(sig)) return true;
      const match = await index.admit(storedId(sample), sig, bandKeys(sig, config.bands, config.rows));
      return match ? drop("near_duplicate", { duplicateOf: plainId(match.duplicateOf).id, value: match.jaccard, threshold: config.threshold }) : true;
    },
  });
}
