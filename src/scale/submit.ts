import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ConfigError } from "../errors.ts";
import { buildGraph } from "../graph.ts";
import { loadGraph } from "../cli/load-graph.ts";
import type { FileSource } from "../io/source-common.ts";
import type { Source } from "../io/types.ts";
import { RunQueue, redactedUrl, type RunSpec, type RunStatus } from "./queue.ts";

export interface SubmitOptions {
  readonly redis: string;
  readonly run: string;
  /** A graph file, or a ready graph's name. */
  readonly graph: string;
  readonly overrides?: Readonly<Record<string, unknown>>;
  readonly out: string;
  /** Source records per chunk. Default 1024. */
  readonly chunkSize?: number;
  /** Chunks fed ahead of the workers. Default 64. */
  readonly maxQueued?: number;
  /** Tries per chunk before it goes to the dead letters. Default 3. */
  readonly maxAttempts?: number;
  /** A chunk whose worker is silent this long goes to another worker: longer than the slowest call. Default 600 s. */
  readonly reclaimSeconds?: number;
  readonly budget?: number;
  readonly log?: (line: string) => void;
}

export const SUBMIT_DEFAULTS = { chunkSize: 1024, maxQueued: 64, maxAttempts: 3, reclaimSeconds: 600 } as const;

/** The file in the output folder that says the run is a scaled-out one, and where its queue lives. */
export const SCALE_RECORD_FILE = "scale.json";

/**
 * Registers a run with Redis and feeds its first chunks: the graph is built once here to learn its
 * sources (and their sizes) and what answers it, then released; the workers build their own. Submitting
 * the same run again (same graph, options and folder) changes nothing and reports it.
 */
export async function submitRun(options: SubmitOptions): Promise<{ readonly spec: RunSpec; readonly created: boolean }> {
  const log = options.log ?? (() => {});
  const graphRef = existsSync(resolve(options.graph)) ? resolve(options.graph) : options.graph;
  const definition = await loadGraph(graphRef);
  const out = resolve(options.out);
  const overrides = options.overrides ?? {};
  const graph = await buildGraph(definition, overrides, { log, out, cache: true });
  let sources: RunSpec["sources"];
  let serial = false;
  try {
    if (graph.chunkable !== true) {
      throw new ConfigError(
        `graph "${definition.name}" does not declare itself chunkable: its operators may keep state across samples (a pool, a counter, a quota) that workers do not share, so a scaled-out run would differ from \`rxsynth run\`; run it with \`rxsynth run\`, or set chunkable: true in its build if every sample's outcome depends on that sample alone`,
      );
    }
    sources = await Promise.all(graph.sources.map(async (source) => ({ name: source.name, size: await positionsOf(source) })));
    serial = graph.serialChunks === true;
  } finally {
    await graph.dispose?.();
  }
  const spec: RunSpec = {
    graph: graphRef,
    overrides,
    options: { ...definition.defaults, ...overrides },
    out,
    // A loop's waves: each depends on the ones before, so one position a chunk, one chunk out at a time.
    chunkSize: serial ? 1 : (options.chunkSize ?? SUBMIT_DEFAULTS.chunkSize),
    sources,
    maxQueued: serial ? 1 : (options.maxQueued ?? SUBMIT_DEFAULTS.maxQueued),
    maxAttempts: options.maxAttempts ?? SUBMIT_DEFAULTS.maxAttempts,
    reclaimMs: Math.round((options.reclaimSeconds ?? SUBMIT_DEFAULTS.reclaimSeconds) * 1000),
    budget: options.budget,
    identity: graph.identity,
    submittedAt: new Date().toISOString(),
  };
  if (serial && options.chunkSize !== undefined && options.chunkSize !== 1) {
    log(`graph "${definition.name}" runs its waves one at a time, in order (each draws on the ones before): --chunk-size ${options.chunkSize} is ignored, a chunk is one wave`);
  }
  const queue = await RunQueue.connect(options.redis, options.run, log);
  try {
    const outcome = await queue.register(spec);
    await mkdir(out, { recursive: true });
    if (outcome === "created") {
      const where = { redis: redactedUrl(options.redis), run: options.run, graph: definition.name, submittedAt: spec.submittedAt };
      await writeFile(join(out, SCALE_RECORD_FILE), `${JSON.stringify(where, null, 2)}\n`);
    }
    await queue.feed();
    return { spec: outcome === "created" ? spec : await queue.spec(), created: outcome === "created" };
  } finally {
    await queue.close();
  }
}

/**
 * How many positions a source spans, when it can tell without consuming anything: a file's lines (blank
 * ones keep their numbers, so its record count would stop the feed short), else its size. A pipe cannot.
 */
async function positionsOf(source: Source): Promise<number | null> {
  const size = await source.size?.().catch(() => undefined);
  if (size === undefined) return null;
  const span = (source as Partial<FileSource>).span;
  return span ? await span.call(source) : size;
}

/** Polls the run until it is complete or failed, telling `onStatus` each time. */
export async function waitForRun(redis: string, run: string, onStatus: (status: RunStatus) => void, pollMs = 1_000, signal?: AbortSignal): Promise<RunStatus> {
  const queue = await RunQueue.connect(redis, run);
  try {
    for (;;) {
      const status = await queue.status();
      onStatus(status);
      if (status.state !== "running" || signal?.aborted) return status;
      await new Promise((done) => setTimeout(done, pollMs));
    }
  } finally {
    await queue.close();
  }
}
