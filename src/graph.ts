import { ConfigError } from "./errors.ts";
import type { Operator } from "./operator.ts";
import type { RunSink, SinkFormat, Source } from "./io/types.ts";
import type { LlmOptions } from "./llm/client.ts";
import type { BatchMode } from "./llm/batch/mode.ts";
import type { SpendGate } from "./llm/spend.ts";

/** How accepted and rejected samples are written when the run has an output folder. */
export interface OutputOptions {
  /** Formats of accepted shards; several write the same rows in each (e.g. parquet + jsonl). */
  readonly formats?: readonly SinkFormat[];
  /** Format of the rejects shards. */
  readonly rejectsFormat?: SinkFormat;
  /** Rows per shard before it rotates. */
  readonly shardRows?: number;
}

/** A graph ready to run: source(s) -> operators -> sinks, plus the rejects branch. */
export interface BuiltGraph {
  readonly name: string;
  readonly sources: readonly Source[];
  readonly operators: readonly Operator[];
  readonly output?: OutputOptions;
  /** Custom sinks instead of files (tests, benchmarks, queues). */
  readonly sinks?: { readonly accepted: readonly RunSink[]; readonly rejects: RunSink };
  /** Most samples in flight at once; bounds memory whatever the source size. */
  readonly budget?: number;
  /**
   * Every sample's outcome depends on that sample alone (and on state shared through GraphEnvironment.shared),
   * so the graph may run as chunks of source positions on several workers (`rxsynth submit`) with the
   * single-process output. Exact and near dedup share their index when given `shared`, a generative loop its
   * folded waves (with `serialChunks`); a graph with other state kept in an operator must not say so.
   */
  readonly chunkable?: boolean;
  /**
   * Each source position depends on the committed outcome of every position before it (a generative loop's
   * waves, whose prompts draw on the pool the earlier waves made): a scaled-out run feeds chunks of one
   * position, one at a time, in order, and keeps the loop's state in GraphEnvironment.shared.
   */
  readonly serialChunks?: boolean;
  /** Resolved options, recorded in the manifest so a resume with other options is caught. */
  readonly options?: unknown;
  /** Releases what `build` acquired (a simulator, a connection). */
  readonly dispose?: () => Promise<void> | void;
  /**
   * Options that may change when a run is resumed because they extend the same dataset rather than
   * define another (a larger `target`, more `maxRounds`); they are left out of the options hash.
   */
  readonly continuable?: readonly string[];
  /** Asked when the sources are exhausted: why the run did not reach its goal, and how to continue. */
  readonly incomplete?: () => string | undefined;
  /**
   * How far the graph is toward its own goal (accepted rows of a `target`), where that, not the source's
   * size, says when the run is done: the run projects its cost at completion from it.
   */
  readonly goal?: () => { readonly done: number; readonly total: number };
  /**
   * What answers the graph's requests (endpoint, model), recorded in the manifest: resuming a folder
   * against another endpoint would mix two models' answers in one dataset.
   */
  readonly identity?: Readonly<Record<string, unknown>>;
}

export interface GraphEnvironment {
  /** One line to the user (the CLI prints it above the progress). */
  log(message: string): void;
  /** The output folder when the run has one (for caches kept with the run). */
  readonly out: string | undefined;
  /** False: the graph's LLM calls bypass the response cache (`rxsynth run --no-cache`). Default true. */
  readonly cache?: boolean;
  /** Set: the graph's LLM calls go through the provider's Batch API at the batch price (`rxsynth run --batch`; see src/llm/batch). */
  readonly batch?: BatchMode;
  /** Set: `--max-cost`, which the graph's LLM clients ask before each priced request (pass it as createLlm's `spend`). */
  readonly costGate?: SpendGate;
  /**
   * Registers a release (a simulator, a client) as soon as it is acquired, so it is closed even when
   * `build` fails after acquiring it, and when the run ends. Releases run once, newest first.
   */
  onDispose?(release: () => Promise<void> | void): void;
  /** Records part of the run's identity (e.g. `identify("endpoint", { baseURL, model })`); see BuiltGraph.identity. */
  identify?(key: string, value: unknown): void;
  /** State shared by every worker of a scaled-out run (src/scale); absent in a single-process run. */
  readonly shared?: SharedServices;
}

/** What a scaled-out run's workers share through Redis. */
export interface SharedServices {
  /** RPM/TPM buckets of one endpoint (base URL and model), one for all workers: pass as the LLM client's `buckets`. */
  rateBuckets(endpoint: string): NonNullable<LlmOptions["buckets"]>;
  /** The rate limits any worker learned from one endpoint's headers: pass as the LLM client's `learnedLimits`. */
  learnedLimits(endpoint: string): NonNullable<LlmOptions["learnedLimits"]>;
  /** At most `limit` requests in flight to one endpoint (base URL and model) from all workers: pass as the LLM client's `slots`. */
  concurrency(endpoint: string, limit: number): NonNullable<LlmOptions["slots"]>;
  /** The run's index of `name`: one for all workers (see SharedIndex). */
  index(name: string): SharedIndex;
  /** The run's MinHash LSH index of `name`, of the given shape: one for all workers (see SharedNearIndex). */
  nearIndex(name: string, shape: NearIndexShape): SharedNearIndex;
  /** The run's distinct counter of `name` (a HyperLogLog): one for all workers (see SharedDistinct). */
  distinct(name: string): SharedDistinct;
  /** The run's records of `name`, by source position: one for all workers (see SharedRecords). */
  records(name: string): SharedRecords;
}

/**
 * What the chunk of each source position decided, kept for the chunks after it (a generative loop's folded
 * waves). A chunk writes its record as part of its commit, so a failed try's record is replaced by the try
 * that commits; once the chunk is acknowledged nothing writes it again.
 */
export interface SharedRecords {
  /** Writes `value` at `position`, replacing what an earlier try of the same chunk wrote there. */
  put(position: number, value: string): Promise<void>;
  /** The values at positions [from, to), in order; undefined where nothing was written. */
  range(from: number, to: number): Promise<Array<string | undefined>>;
}

/**
 * A distinct count over every worker of a run, kept in Redis as a HyperLogLog (`PFCOUNT` reads it). Merging
 * takes each register's maximum, so merging a part twice (a chunk replayed after a crash) changes nothing.
 */
export interface SharedDistinct {
  /**
   * Merges the registers of a HyperLogLog of precision 14 (16384 ranks, each the position of the first
   * set bit of an item's hash), and records `total` (the items counted, duplicates included) under `part`,
   * a name that stays the same when that part is replayed.
   */
  merge(registers: Uint8Array, part: string, total: number): Promise<void>;
}

export interface NearIndexShape {
  readonly numPerm: number;
  readonly bands: number;
  readonly rows: number;
  /** Estimated Jaccard similarity at or above which a document is a near-duplicate of a kept one. */
  readonly threshold: number;
  /** Ids are grouped (operators/dedup/grouped-id.ts): a kept document of the same group is no match. */
  readonly grouped?: boolean;
}

/** The kept document a near-duplicate matched, and their estimated Jaccard similarity. */
export interface NearMatch {
  readonly duplicateOf: string;
  readonly jaccard: number;
}

/**
 * A MinHash LSH index kept in Redis for every worker of a run: each admission compares and inserts in one
 * atomic step, so two near-duplicates on different workers cannot both be kept.
 */
export interface SharedNearIndex {
  /**
   * Keeps `signature` (with its LSH band keys, as the operator bands it) under `id` unless a kept document
   * reaches the threshold; returns that document, or undefined when kept. A sample admitted before a crash
   * finds itself when replayed and is kept again.
   */
  admit(id: string, signature: Uint32Array, bandKeys: Uint32Array): Promise<NearMatch | undefined>;
}

/**
 * A set of keys, each held by the first sample id that claimed it, shared by every worker of a run and
 * kept in Redis (AOF) rather than in any worker's checkpoint.
 */
export interface SharedIndex {
  /**
   * Claims `key` for `id`: the id that holds it afterwards, `id` itself when it was free or already held
   * by `id` (the replay of a sample claimed before a crash finds itself).
   */
  claim(key: string, id: string): Promise<string>;
}

export type GraphOptionValues = Record<string, unknown>;

/**
 * A ready pipeline: its default options first, then `build`, which composes the graph. Building happens
 * when the runner asks, never at import, so a graph file can be listed or inspected without side effects.
 */
export interface GraphDefinition<O extends GraphOptionValues = GraphOptionValues> {
  readonly name: string;
  /** One line, shown by `rxsynth graphs`. */
  readonly description: string;
  readonly defaults: O;
  /** Option names that may change on resume (see BuiltGraph.continuable). */
  readonly continuable?: readonly string[];
  build(options: O, env: GraphEnvironment): Promise<Omit<BuiltGraph, "name" | "options">> | Omit<BuiltGraph, "name" | "options">;
}

export function defineGraph<O extends GraphOptionValues>(definition: GraphDefinition<O>): GraphDefinition<O> {
  return definition;
}

export function isGraphDefinition(value: unknown): value is GraphDefinition {
  return typeof value === "object" && value !== null && typeof (value as GraphDefinition).build === "function";
}

/** Operators to splice into a ready graph without editing its file. */
export interface GraphCustomization {
  readonly insert?: ReadonlyArray<{
    /** Name of the operator after which the new ones run; "start" puts them first. */
    readonly after: string;
    readonly operators: readonly Operator[];
  }>;
}

/** Builds a definition with `overrides` applied over its defaults; unknown option names are an error. */
export async function buildGraph<O extends GraphOptionValues>(
  definition: GraphDefinition<O>,
  overrides: Partial<O> = {},
  env: GraphEnvironment = { log: () => {}, out: undefined },
  customization: GraphCustomization = {},
): Promise<BuiltGraph> {
  for (const key of Object.keys(overrides)) {
    if (!(key in definition.defaults)) {
      const known = Object.keys(definition.defaults).join(", ") || "(none)";
      throw new ConfigError(`graph "${definition.name}" has no option "${key}"; its options are: ${known}`);
    }
  }
  const options = { ...definition.defaults, ...overrides } as O;
  const releases = new Releases();
  const identity: Record<string, unknown> = {};
  const scoped: GraphEnvironment = {
    ...env,
    onDispose: (release) => releases.add(release),
    identify: (key, value) => {
      identity[key] = value;
    },
  };
  try {
    const built = await definition.build(options, scoped);
    if (built.dispose) releases.add(built.dispose);
    const operators = insertOperators(definition.name, built.operators, customization);
    const graph: BuiltGraph = {
      ...built,
      operators,
      name: definition.name,
      options,
      continuable: built.continuable ?? definition.continuable,
      identity: built.identity ?? (Object.keys(identity).length > 0 ? identity : undefined),
      dispose: () => releases.run(),
    };
    validateGraph(graph);
    return graph;
  } catch (error) {
    // build() may have started a simulator or opened a connection before failing: release it, or the process never exits.
    await releases.run().catch(() => undefined);
    throw error;
  }
}

/** Releases registered while a graph is built; run once, newest first, every one even if one fails. */
class Releases {
  private readonly pending: Array<() => Promise<void> | void> = [];
  private done: Promise<void> | undefined;

  add(release: () => Promise<void> | void): void {
    this.pending.push(release);
  }

  run(): Promise<void> {
    this.done ??= (async () => {
      let failure: unknown;
      for (const release of this.pending.reverse()) {
        try {
          await release();
        } catch (error) {
          failure ??= error;
        }
      }
      if (failure !== undefined) throw failure;
    })();
    return this.done;
  }
}

/**
 * A ready graph with operators spliced in, as a new definition a graph file can export:
 * `export default extendGraph(selfInstruct, { insert: [{ after: "dedup", operators: [myFilter()] }] })`.
 */
export function extendGraph<O extends GraphOptionValues>(definition: GraphDefinition<O>, customization: GraphCustomization): GraphDefinition<O> {
  return {
    ...definition,
    async build(options, env) {
      const built = await definition.build(options, env);
      try {
        return { ...built, operators: insertOperators(definition.name, built.operators, customization) };
      } catch (error) {
        await built.dispose?.();
        throw error;
      }
    },
  };
}

function insertOperators(graph: string, operators: readonly Operator[], customization: GraphCustomization): readonly Operator[] {
  let result = [...operators];
  for (const insertion of customization.insert ?? []) {
    const index = insertion.after === "start" ? -1 : result.findIndex((op) => op.meta.name === insertion.after);
    if (insertion.after !== "start" && index < 0) {
      throw new ConfigError(
        `cannot insert after "${insertion.after}": graph "${graph}" has no such operator (it has: ${result.map((op) => op.meta.name).join(", ")})`,
      );
    }
    result = [...result.slice(0, index + 1), ...insertion.operators, ...result.slice(index + 1)];
  }
  return result;
}

/** Checks what can be checked before any sample flows: sources exist, names are unique, reads are written. */
export function validateGraph(graph: BuiltGraph): void {
  if (graph.sources.length === 0) throw new ConfigError(`graph "${graph.name}" has no source`);
  if (graph.budget !== undefined && !(Number.isInteger(graph.budget) && graph.budget > 0)) {
    throw new ConfigError(`graph "${graph.name}": budget must be a positive integer, got ${graph.budget}`);
  }
  const names = new Set<string>();
  for (const operator of graph.operators) {
    if (names.has(operator.meta.name)) {
      throw new ConfigError(
        `graph "${graph.name}" has two operators named "${operator.meta.name}"; give one a distinct name option (counters, rejects and provenance are keyed by name)`,
      );
    }
    names.add(operator.meta.name);
  }
  const sourceFields = graph.sources.map((source) => source.fields);
  if (sourceFields.some((fields) => fields === undefined)) return;
  const available = new Set(sourceFields.flatMap((fields) => fields ?? []));
  for (const operator of graph.operators) {
    for (const field of operator.meta.reads ?? []) {
      if (!available.has(field)) {
        throw new ConfigError(
          `operator "${operator.meta.name}" reads field "${field}", which neither the sources nor an earlier operator provide (available: ${[...available].join(", ")})`,
        );
      }
    }
    for (const field of operator.meta.writes ?? []) available.add(field);
  }
}
