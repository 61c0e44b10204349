import { extname, relative, sep } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { glob } from "tinyglobby";
import type { Manifest, OperatorCount } from "../io/manifest.ts";
import { openParquetFile } from "../io/parquet-source.ts";
import { plainRows } from "../io/schema.ts";
import { shardBatches } from "./report-read.ts";
import { openRunFolder, readDiversity, type RunFolder, type ShardFile } from "./report-run.ts";
import { CappedCounter } from "./report-stats.ts";

/**
 * Distinct prompt hashes counted exactly per operator. A prompt hash names one request (the messages
 * sent), so a 10M-row run has millions; past the cap the rest are added up as "others" and the
 * distinct count is a lower bound, which the card says.
 */
const PROMPT_HASH_CAP = 50_000;
/** Distinct (operator, reason) pairs and (operator, model) pairs: a handful in practice; the cap is a guard. */
const KEY_CAP = 10_000;
/** Prompt hashes listed per operator, most repeated first. */
const TOP_PROMPT_HASHES = 10;
/** Rows per batch from parquet-wasm; small, for the reason src/report/report-read.ts gives. */
const PARQUET_BATCH_ROWS = 64;

/** What `datasets.load_dataset(folder)` reads for one config: the Hugging Face builder and the paths. */
export interface ConfigFiles {
  readonly format: "parquet" | "arrow" | "json";
  /** Globs relative to the run folder, or the files themselves when a glob would match files the manifest does not list. */
  readonly paths: readonly string[];
  readonly files: number;
  readonly rows: number;
  readonly bytes: number;
}

export interface PromptHashes {
  readonly operator: string;
  /** Steps of accepted rows that carry a prompt hash (a step inherited by several rows counts in each). */
  readonly steps: number;
  readonly distinct: number;
  /** The distinct count stopped at the cap: it is a lower bound. */
  readonly capped: boolean;
  readonly top: readonly { readonly hash: string; readonly count: number }[];
}

/** Everything the card states, from one bounded pass over a run folder's committed shards. */
export interface CardData {
  readonly graph: string;
  readonly options: unknown;
  readonly optionsHash: string;
  readonly identity: Readonly<Record<string, unknown>> | undefined;
  readonly identityHistory: Manifest["identityHistory"];
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly complete: boolean;
  /** Chunk folders of a scaled-out run, merged (0 for a single-process run). */
  readonly chunks: number;
  readonly accepted: ConfigFiles | undefined;
  readonly rejects: ConfigFiles | undefined;
  /** Accepted rows as the pass counted them. */
  readonly rows: number;
  readonly rejectedRows: number;
  readonly origins: Readonly<Record<string, number>>;
  /** Accepted rows by provenance depth, shallowest first. */
  readonly depths: readonly (readonly [number, number])[];
  readonly promptHashes: readonly PromptHashes[];
  /** Steps of accepted rows by operator and model, in operator order. */
  readonly models: readonly { readonly operator: string; readonly model: string; readonly steps: number }[];
  /** Per operator, in pipeline order, as the manifest added them up over sessions. */
  readonly funnel: readonly ({ readonly operator: string } & OperatorCount)[];
  /** Rejected rows by operator and reason, most first, counted from the rejects shards. */
  readonly rejectReasons: readonly { readonly operator: string; readonly reason: string; readonly count: number }[];
  readonly totals: Readonly<Record<string, number>>;
  readonly operators: Manifest["operators"];
  readonly diversity: { readonly summary: unknown; readonly note: string | undefined };
}

export async function collectCardData(runDir: string): Promise<CardData> {
  const run = await openRunFolder(runDir);
  const accepted = new AcceptedPass();
  for (const shard of run.accepted) for await (const batch of columnBatches(shard.path, "provenance")) for (const row of batch) accepted.add(row);
  const reasons = new CappedCounter(KEY_CAP);
  let rejectedRows = 0;
  for (const shard of run.rejects) {
    for await (const batch of columnBatches(shard.path, "reject")) {
      for (const row of batch) {
        const reject = (row.reject ?? {}) as { operator?: string; reason?: string };
        reasons.add(`${reject.operator ?? "(unknown)"}\u0000${reject.reason ?? "(none)"}`);
        rejectedRows++;
      }
    }
  }
  const { manifest } = run;
  const diversity = await readDiversity(run);
  return {
    graph: manifest.graph,
    options: manifest.options,
    optionsHash: manifest.optionsHash,
    identity: manifest.identity,
    identityHistory: manifest.identityHistory,
    createdAt: manifest.createdAt,
    updatedAt: manifest.updatedAt,
    complete: manifest.complete,
    chunks: run.chunks,
    accepted: await configFiles(run, run.accepted, "part"),
    rejects: await configFiles(run, run.rejects, "rejects"),
    rows: accepted.rows,
    rejectedRows,
    origins: Object.fromEntries([...accepted.origins].sort(([a], [b]) => (a < b ? -1 : 1))),
    depths: [...accepted.depths].sort((a, b) => a[0] - b[0]),
    promptHashes: accepted.promptHashes(),
    models: accepted.models(),
    funnel: Object.entries(manifest.operatorCounts ?? {}).map(([operator, count]) => ({ operator, in: count.in, out: count.out, rejected: count.rejected })),
    rejectReasons: reasons.sorted().map(([key, count]) => {
      const [operator, reason] = key.split("\u0000") as [string, string];
      return { operator, reason, count };
    }),
    totals: manifest.totals,
    operators: manifest.operators,
    diversity: { summary: diversity.summary, note: diversity.note },
  };
}

/** Counts over accepted rows; holds counters, never rows. */
class AcceptedPass {
  rows = 0;
  readonly origins = new Map<string, number>();
  readonly depths = new Map<number, number>();
  /** Operators in the order their first step was seen, which is pipeline order. */
  private readonly hashes = new Map<string, { steps: number; counter: CappedCounter }>();
  private readonly modelSteps = new CappedCounter(KEY_CAP);

  add(row: Record<string, unknown>): void {
    this.rows++;
    const provenance = (row.provenance ?? {}) as {
      origin?: string;
      depth?: number;
      steps?: readonly { op: string; model?: string | null; promptHash?: string; prompt_hash?: string | null }[];
    };
    const origin = provenance.origin ?? "(unknown)";
    this.origins.set(origin, (this.origins.get(origin) ?? 0) + 1);
    const depth = provenance.depth ?? -1;
    this.depths.set(depth, (this.depths.get(depth) ?? 0) + 1);
    for (const step of provenance.steps ?? []) {
      if (step.model) this.modelSteps.add(`${step.op}\u0000${step.model}`);
      const hash = step.promptHash ?? step.prompt_hash;
      if (!hash) continue;
      let tally = this.hashes.get(step.op);
      if (!tally) this.hashes.set(step.op, (tally = { steps: 0, counter: new CappedCounter(PROMPT_HASH_CAP) }));
      tally.steps++;
      tally.counter.add(hash);
    }
  }

  promptHashes(): PromptHashes[] {
    return [...this.hashes].map(([operator, { steps, counter }]) => ({
      operator,
      steps,
      distinct: counter.counts.size,
      capped: counter.others > 0,
      top: counter
        .sorted()
        .slice(0, TOP_PROMPT_HASHES)
        .map(([hash, count]) => ({ hash, count })),
    }));
  }

  models(): { operator: string; model: string; steps: number }[] {
    return [...this.modelSteps.counts]
      .map(([key, steps]) => {
        const [operator, model] = key.split("\u0000") as [string, string];
        return { operator, model, steps };
      })
      .sort((a, b) => (a.operator < b.operator ? -1 : a.operator > b.operator ? 1 : a.model < b.model ? -1 : a.model > b.model ? 1 : 0));
  }
}

/**
 * Rows of one shard with at least the column the card counts. Parquet is read with only that column
 * (the text in `data` is most of a shard's bytes, and the card needs none of it), as plain rows: a
 * step's prompt hash is then `prompt_hash`. Other formats come whole from the shared readers.
 */
async function* columnBatches(file: string, column: "provenance" | "reject"): AsyncGenerator<Record<string, unknown>[]> {
  if (extname(file).toLowerCase() !== ".parquet") {
    yield* shardBatches(file);
    return;
  }
  const parquet = await openParquetFile(file);
  try {
    const groups = parquet.metadata().numRowGroups();
    for (let group = 0; group < groups; group++) {
      // Whole top-level columns only: parquet-wasm aborts the process on a nested path such as "reject.reason".
      const reader = (await parquet.stream({ rowGroups: [group], batchSize: PARQUET_BATCH_ROWS, columns: [column] })).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const batch of tableFromIPC(value.intoIPCStream()).batches) yield plainRows(batch);
      }
    }
  } finally {
    parquet.free();
  }
}

const BUILDERS: Readonly<Record<string, ConfigFiles["format"]>> = { ".parquet": "parquet", ".arrow": "arrow", ".jsonl": "json" };

/**
 * The paths of one config: a glob (`part-*.parquet`, or `chunks/*\/part-*.parquet` for a scaled-out run)
 * when it matches exactly the shards the manifests list, else those files by name, so what the Hub
 * loads is what the run committed even beside a crashed run's leftovers.
 */
async function configFiles(run: RunFolder, shards: readonly ShardFile[], prefix: string): Promise<ConfigFiles | undefined> {
  if (shards.length === 0) return undefined;
  const extension = extname(shards[0]!.path).toLowerCase();
  const listed = shards.map((shard) => relative(run.dir, shard.path).split(sep).join("/")).sort();
  const pattern = `${run.chunks > 0 ? "chunks/*/" : ""}${prefix}-*${extension}`;
  const matched = (await glob(pattern, { cwd: run.dir, onlyFiles: true })).sort();
  const exact = matched.length === listed.length && matched.every((file, i) => file === listed[i]);
  return {
    format: BUILDERS[extension] ?? "parquet",
    paths: exact ? [pattern] : listed,
    files: shards.length,
    rows: shards.reduce((sum, shard) => sum + shard.rows, 0),
    bytes: shards.reduce((sum, shard) => sum + shard.bytes, 0),
  };
}
