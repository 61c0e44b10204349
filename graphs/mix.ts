// Mix: blends a human dataset with a synthetic one to a target ratio (default 70% human / 30% synthetic),
// with a cap on generation depth, as recommended against model collapse when training on generated data
// (Shumailov et al. 2024, "AI models collapse when trained on recursively generated data"; Gerstgrasser
// et al. 2024, "Is Model Collapse Inevitable?": accumulate real data alongside synthetic, never replace it).
//
// Inputs: `humanPath` and `syntheticPath`, each a JSONL/JSON/Parquet file or another graph's run folder
// (its accepted part-NNNNN shards). Defaults: the 175 Self-Instruct seed tasks as human data and
// data/mix-synthetic.jsonl (builtin:mix-synthetic.jsonl), 48 instruction/input/output records written for this graph, each with
// the generation `depth` its producer would record. A run folder's depth is its rows' provenance depth.
//
// Selection: both inputs are counted first (how many records, how many within `maxDepth`), which fixes the
// largest mix the ratio allows; then each side keeps exactly its quota: the records with the smallest
// seeded draws (a hash of the seed and the sample id; bottom-k sampling), so the kept records are spread
// over the whole input, not its first lines. The cut-off draw of each side is found when the graph is
// built (a second read of each input, holding at most 2 x quota draws), so whether a record is kept is a
// pure function of its id: the same on every run, in any order, and after a crash and resume (nothing
// counted at run time decides it, so nothing can run ahead of the committed output). Cost: each input is
// read once more at build time.
//
// Output columns (data): the input records' fields, Self-Instruct seed records flattened to
// instruction/input/output (their first instance); plus `origin` ("human" | "synthetic") and
// `source_depth` (the generation depth the record came with; human records 0).
// Drop reasons: too_deep (value: depth, threshold: maxDepth), over_ratio (value: its draw, threshold: the
// side's cut-off draw).
// Report: a log line and mix-report.json in the run folder (quotas, kept counts, achieved ratio); the kept
// counts come from the rank of the furthest kept record reached (saved with each checkpoint as a maximum,
// which a replayed record cannot push further), so a finished run, resumed or not, reports its quotas.
//
//   rxsynth run graphs/mix.ts --out out/mix
//   rxsynth run graphs/mix.ts --set syntheticPath=out/self-instruct --set humanRatio=0.5 --out out/mix-50
import { rename, stat, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { extname, join } from "node:path";
import {
  ConfigError,
  defineFilter,
  defineGraph,
  defineMap,
  defineTap,
  drop,
  openSource,
  resolveDataPath,
  sourceSampleId,
  stableHash,
  type RunContext,
  type SampleData,
  type Source,
  type SourceItem,
} from "../src/index.ts";
import { outputFiles, readRows } from "../src/io/read.ts";

export const defaults = {
  /** Human data: a file or a run folder. */
  humanPath: "builtin:self_instruct_seed_tasks.jsonl",
  /** Synthetic data: a file or another graph's run folder. */
  syntheticPath: "builtin:mix-synthetic.jsonl",
  /** Target fraction of human records in the mix. */
  humanRatio: 0.7,
  /** Synthetic records more generations than this away from human data are dropped (too_deep). */
  maxDepth: 2,
  /** Most records in the mix; 0 = as many as the ratio allows. */
  count: 0,
  /** Seeds which records fill each side's quota. */
  seed: 42,
};

type Side = "human" | "synthetic";

/** Counts and quotas of one side, fixed before the run. */
export interface SidePlan {
  readonly available: number;
  /** Records within maxDepth. */
  readonly eligible: number;
  readonly quota: number;
}

/**
 * The largest mix with `humanRatio` human records that both sides can supply (capped at `count` when
 * positive): synthetic = min(eligible synthetic, human * (1 - r) / r), human = synthetic * r / (1 - r).
 */
export function planQuotas(human: number, synthetic: number, humanRatio: number, count = 0): { human: number; synthetic: number } {
  let h: number;
  let s: number;
  if (humanRatio >= 1) [h, s] = [human, 0];
  else if (humanRatio <= 0) [h, s] = [0, synthetic];
  else {
    s = Math.min(synthetic, Math.floor((human * (1 - humanRatio)) / humanRatio + 1e-9));
    h = Math.min(human, Math.round((s * humanRatio) / (1 - humanRatio)));
  }
  if (count > 0 && h + s > count) {
    h = Math.round(count * humanRatio);
    s = count - h;
  }
  return { human: h, synthetic: s };
}

/** A uniform number in [0, 1) from a record id and the seed: the same record gets the same draw on every run. */
function uniform(seed: number, id: string): number {
  return Number.parseInt(stableHash(`${seed}\u0000${id}`, 12), 16) / 2 ** 48;
}

/** A record's draw with its id, the tie-break that makes the order of draws total. */
interface Draw {
  readonly u: number;
  readonly id: string;
}

function compareDraws(a: Draw, b: Draw): number {
  return a.u - b.u || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Which records of one side are kept: those whose draw is at most the cut-off, and each one's rank in input order. */
export interface SideSelection {
  /** The quota-th smallest draw; undefined when the quota is 0. */
  readonly cutoff: Draw | undefined;
  /** Kept sample id -> its rank among the kept, in input order (for the report). */
  readonly rank: ReadonlyMap<string, number>;
}

/** The `quota` eligible records with the smallest draws (bottom-k), holding at most 2 x quota draws at once. */
async function selectSide(source: Source, maxDepth: number, quota: number, seed: number): Promise<SideSelection> {
  let best: (Draw & { position: number })[] = [];
  if (quota > 0) {
    for await (const batch of source.batches({ from: 0, signal: new AbortController().signal })) {
      for (const item of batch) {
        if (!item.data || (item.data.source_depth as number) > maxDepth) continue;
        const id = sourceSampleId(source.name, item.position, item.id);
        best.push({ u: uniform(seed, id), id, position: item.position });
        if (best.length >= 2 * quota) best = best.sort(compareDraws).slice(0, quota);
      }
    }
  }
  best = best.sort(compareDraws).slice(0, quota);
  const rank = new Map([...best].sort((a, b) => a.position - b.position).map((draw, i) => [draw.id, i] as const));
  const last = best.at(-1);
  return { cutoff: last ? { u: last.u, id: last.id } : undefined, rank };
}

const RUN_OUTPUT = new Set([".parquet", ".arrow", ".arrows", ".ipc"]);

/**
 * Records of a file or run folder with their generation depth in `source_depth`. A run's shards keep depth
 * in provenance, which a plain source drops, so they are read row by row, one shard at a time.
 */
async function datasetSource(name: string, option: string, origin: Side): Promise<Source> {
  const path = resolveDataPath(option);
  const info = await stat(path).catch((error: unknown) => {
    throw new ConfigError(`mix: ${origin} input ${path} does not exist (set ${origin}Path)`, { cause: error });
  });
  const fallbackDepth = origin === "human" ? 0 : 1;
  if (info.isDirectory() || RUN_OUTPUT.has(extname(path).toLowerCase())) {
    const files = info.isDirectory() ? await outputFiles(path, "part") : [path];
    if (files.length === 0) throw new ConfigError(`mix: ${path} has no accepted shards (part-NNNNN.*)`);
    return {
      name,
      origin,
      async *batches({ from, signal }) {
        let position = 0;
        for (const file of files) {
          const rows = await readRows(file);
          const batch: SourceItem[] = [];
          for (const row of rows) {
            if (position >= from) {
              const sample = row as { id?: unknown; data?: SampleData; provenance?: { depth?: number } };
              const data = sample.data ?? (row as SampleData);
              const depth = sample.provenance?.depth ?? (typeof data.depth === "number" ? data.depth : fallbackDepth);
              batch.push({ position, ...(typeof sample.id === "string" ? { id: sample.id } : {}), data: { ...data, source_depth: depth } });
            }
            position++;
          }
          if (signal.aborted) return;
          if (batch.length > 0) yield batch;
        }
      },
    };
  }
  const inner = await openSource(path, { name, origin });
  return {
    name,
    origin,
    size: () => inner.size?.() ?? Promise.resolve(undefined),
    async *batches(options) {
      for await (const batch of inner.batches(options)) {
        yield batch.map((item) => {
          if (!item.data) return item;
          const { depth, ...rest } = item.data;
          return { ...item, data: { ...rest, source_depth: typeof depth === "number" ? depth : fallbackDepth } };
        });
      }
    },
  };
}

/** How many records a source has, and how many are within `maxDepth`. */
async function countEligible(source: Source, maxDepth: number): Promise<{ available: number; eligible: number }> {
  let available = 0;
  let eligible = 0;
  for await (const batch of source.batches({ from: 0, signal: new AbortController().signal })) {
    for (const item of batch) {
      if (!item.data) continue;
      available++;
      if ((item.data.source_depth as number) <= maxDepth) eligible++;
    }
  }
  return { available, eligible };
}

/** Self-Instruct seed tasks keep their demonstrations in `instances`; a mix row needs one flat example. */
function flatten(data: SampleData): SampleData {
  if (typeof data.output === "string" || !Array.isArray(data.instances)) return data;
  const first = (data.instances[0] ?? {}) as { input?: unknown; output?: unknown };
  const { instances: _instances, ...rest } = data;
  return { ...rest, input: typeof first.input === "string" ? first.input : "", output: typeof first.output === "string" ? first.output : "" };
}

/** Per side, how many of the kept records (in input order) the run has reached: a maximum, so replay-safe. */
interface MixState {
  reached: Record<Side, number>;
}

const STATE_FILE = "mix-state.json";

export default defineGraph({
  name: "mix",
  description: "Mix human and synthetic datasets to a target ratio (default 70/30) with a generation-depth cap; writes mix-report.json",
  defaults,
  async build(options, env) {
    const ratio = options.humanRatio;
    if (!(ratio >= 0 && ratio <= 1)) throw new ConfigError(`mix: humanRatio must be between 0 and 1, got ${ratio}`);
    if (!(Number.isInteger(options.maxDepth) && options.maxDepth >= 0)) throw new ConfigError(`mix: maxDepth must be an integer >= 0, got ${options.maxDepth}`);
    // Synthetic first: sources are read one after the other, and either order gives the same selection.
    const sources = {
      synthetic: await datasetSource("synthetic", options.syntheticPath, "synthetic"),
      human: await datasetSource("human", options.humanPath, "human"),
    };
    const counted = {
      human: await countEligible(sources.human, options.maxDepth),
      synthetic: await countEligible(sources.synthetic, options.maxDepth),
    };
    const quotas = planQuotas(counted.human.eligible, counted.synthetic.eligible, ratio, options.count);
    const plan: Record<Side, SidePlan> = {
      human: { ...counted.human, quota: quotas.human },
      synthetic: { ...counted.synthetic, quota: quotas.synthetic },
    };
    const selection: Record<Side, SideSelection> = {
      human: await selectSide(sources.human, options.maxDepth, plan.human.quota, options.seed),
      synthetic: await selectSide(sources.synthetic, options.maxDepth, plan.synthetic.quota, options.seed),
    };
    env.log(
      `mix plan: ${plan.human.quota} of ${plan.human.eligible} human + ${plan.synthetic.quota} of ${plan.synthetic.eligible} synthetic within depth ${options.maxDepth} (target human ratio ${ratio})`,
    );

    // The report's state, one per run; saved with each checkpoint so a resumed run reports the whole mix.
    const states = new WeakMap<RunContext, MixState>();
    const stateFor = (context: RunContext): MixState => {
      let state = states.get(context);
      if (!state) {
        state = { reached: { human: 0, synthetic: 0 } };
        if (context.resumed && context.runDir) {
          try {
            const saved = JSON.parse(readFileSync(join(context.runDir, STATE_FILE), "utf8")) as Partial<MixState>;
            if (saved.reached) state = { reached: saved.reached };
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
          }
        }
        states.set(context, state);
      }
      return state;
    };

    const sideOf = (origin: string): Side => (origin === "human" ? "human" : "synthetic");
    return {
      sources: [sources.synthetic, sources.human],
      operators: [
        defineMap({
          name: "normalize",
          params: { flatten: "self-instruct instances" },
          map: (sample) => ({ data: { ...flatten(sample.data), origin: sideOf(sample.provenance.origin) } }),
        }),
        defineFilter({
          name: "depth_cap",
          params: { maxDepth: options.maxDepth },
          reads: ["source_depth"],
          test(sample) {
            const depth = sample.data.source_depth as number;
            return depth <= options.maxDepth ? true : drop("too_deep", { value: depth, threshold: options.maxDepth });
          },
        }),
        defineFilter({
          name: "ratio",
          params: { humanRatio: ratio, select: "bottom-k", quotas, eligible: { human: plan.human.eligible, synthetic: plan.synthetic.eligible }, seed: options.seed },
          test(sample) {
            const side = sideOf(sample.provenance.origin);
            const { cutoff } = selection[side];
            const draw = { u: uniform(options.seed, sample.id), id: sample.id };
            if (cutoff && compareDraws(draw, cutoff) <= 0) return true;
            const { quota, eligible } = plan[side];
            return drop("over_ratio", { value: draw.u, threshold: cutoff?.u ?? 0, message: `${side} quota ${quota} of ${eligible}` });
          },
        }),
        defineTap({
          name: "mix_report",
          observe(sample, _state, context) {
            const side = sideOf(sample.provenance.origin);
            const rank = selection[side].rank.get(sample.id);
            const state = stateFor(context);
            if (rank !== undefined) state.reached[side] = Math.max(state.reached[side], rank + 1);
          },
          async checkpoint(_state, context) {
            if (!context.runDir) return;
            const file = join(context.runDir, STATE_FILE);
            await writeFile(`${file}.tmp`, JSON.stringify(stateFor(context)));
            await rename(`${file}.tmp`, file);
          },
          async complete(_state, context) {
            const kept = stateFor(context).reached;
            const total = kept.human + kept.synthetic;
            const achieved = total === 0 ? 0 : kept.human / total;
            const report = {
              target_human_ratio: ratio,
              achieved_human_ratio: achieved,
              rows: total,
              max_depth: options.maxDepth,
              human: { ...plan.human, too_deep: plan.human.available - plan.human.eligible, kept: kept.human },
              synthetic: { ...plan.synthetic, too_deep: plan.synthetic.available - plan.synthetic.eligible, kept: kept.synthetic },
            };
            context.log(`mix: ${kept.human} human + ${kept.synthetic} synthetic = ${total} rows, human ratio ${achieved.toFixed(3)} (target ${ratio})`);
            if (context.runDir) await writeFile(join(context.runDir, "mix-report.json"), `${JSON.stringify(report, null, 2)}\n`);
          },
        }),
      ],
    };
  },
});
