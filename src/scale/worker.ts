import { join } from "node:path";
import { buildGraph, type BuiltGraph } from "../graph.ts";
import { errorMessage, stopsRun } from "../errors.ts";
import { readManifest } from "../io/manifest.ts";
import { faultsFromEnvironment, type FaultHook } from "../run/commit.ts";
import { run, type RunOptions } from "../run/run.ts";
import { loadGraph } from "../cli/load-graph.ts";
import { RunQueue, workerName, type Claimed, type RunSpec } from "./queue.ts";
import { chunkName, windowGraph } from "./window.ts";

export interface WorkerOptions {
  readonly redis: string;
  readonly run: string;
  /** Keep waiting for work when the run is complete (a long-lived worker); default: exit then. */
  readonly follow?: boolean;
  /** Aborting it finishes the chunk in hand (its grace), leaves it pending for another worker, and returns. */
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
  /** LLM calls bypass the response cache. */
  readonly noCache?: boolean;
  /** Given each chunk's live progress as its run starts (a metrics endpoint reads the latest). */
  readonly live?: RunOptions["live"];
}

export interface WorkerSummary {
  readonly worker: string;
  readonly chunks: number;
  readonly reclaimed: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly state: "complete" | "failed" | "running" | "stopped";
  /** The run's output folder, once the worker has read the run's spec. */
  readonly out?: string;
}

/** Where a chunk's own run folder is: shards, manifest and operator state of that chunk alone. */
export function chunkFolder(spec: RunSpec, chunk: Pick<Claimed, "source" | "start" | "end">): string {
  return join(spec.out, "chunks", chunkName(chunk));
}

/**
 * Runs chunks of a submitted run until it is complete (or failed, or stopped). Each chunk goes through
 * the single-process runner into its own folder, with its commit protocol; the chunk is acknowledged
 * only after its run committed every output, so a worker killed at any point leaves the chunk pending,
 * and the worker that takes it over resumes its folder to the same output.
 */
export async function runWorker(options: WorkerOptions): Promise<WorkerSummary> {
  const log = options.log ?? (() => {});
  const queue = await RunQueue.connect(options.redis, options.run, log);
  const me = workerName();
  let graph: BuiltGraph | undefined;
  let chunks = 0;
  let reclaimed = 0;
  let accepted = 0;
  let rejected = 0;
  let runOut: string | undefined;
  // One hook for the worker's life: RXSYNTH_FAULT=state:3 kills it at its third operator-state save, whichever chunk that is in.
  const fault = faultsFromEnvironment();
  try {
    const spec = options.follow ? await specOnceSubmitted(queue, options.run, log, options.signal) : await queue.spec();
    if (!spec) return summary("stopped");
    runOut = spec.out;
    const definition = await loadGraph(spec.graph);
    graph = await buildGraph(definition, spec.overrides, { log, out: spec.out, cache: !options.noCache, shared: queue.shared() });
    log(`worker ${me}: run ${options.run} (${definition.name}), chunks of ${spec.chunkSize} into ${spec.out}`);
    let holding: { chunk: Claimed; lost: AbortController } | undefined;
    const beatNow = () => {
      const held = holding;
      void queue.heartbeat(me, held?.chunk.entry).then(
        (holds) => {
          // Silent past the reclaim time (a stall, a long pause): another worker has the chunk now.
          if (!holds && held) held.lost.abort(new ChunkTaken(held.chunk));
        },
        () => undefined,
      );
    };
    const beat = setInterval(beatNow, Math.max(100, spec.reclaimMs / 4));
    beat.unref();
    queue.onReconnect(beatNow);
    try {
      for (;;) {
        if (options.signal?.aborted) return summary("stopped");
        const { state, chunk } = await queue.next(me, spec.reclaimMs, 1_000);
        if (state !== "running" && !options.follow) return summary(state);
        if (!chunk) continue;
        holding = { chunk, lost: new AbortController() };
        if (chunk.reclaimed) reclaimed++;
        // Killed after its commit, before its acknowledgement: the chunk is done, not lost.
        const committed = await committedOutcome(graph, spec, chunk);
        if (committed) {
          if ((await queue.complete(chunk, committed.exhausted, committed.counters)) === "completed") {
            chunks++;
            accepted += committed.counters.accepted ?? 0;
            rejected += committed.counters.rejected ?? 0;
          }
          holding = undefined;
          continue;
        }
        if (chunk.attempt > spec.maxAttempts) {
          await queue.fail({ ...chunk, attempt: spec.maxAttempts }, `its worker was lost ${chunk.attempt - 1} times (killed, or stalled past ${spec.reclaimMs} ms)`);
          holding = undefined;
          continue;
        }
        const lost = holding.lost.signal;
        const outcome = await runChunk(graph, spec, chunk, options.signal ? AbortSignal.any([options.signal, lost]) : lost, log, fault, async () => {
          if (lost.aborted || !(await queue.heartbeat(me, chunk.entry))) throw new ChunkTaken(chunk);
        }, options.live);
        holding = undefined;
        if (lost.aborted || (outcome.kind === "failed" && outcome.error instanceof ChunkTaken)) {
          log(`worker ${me}: chunk ${chunkName(chunk)} was taken over by another worker (this one was silent past ${spec.reclaimMs} ms); it wrote nothing more of it`);
          continue;
        }
        if (outcome.kind === "stopped") return summary("stopped");
        if (outcome.kind === "failed" && outcome.stopsRun) {
          // Not the chunk's fault (an endpoint out, a bad key, a wrong graph): it goes back as it was, no try spent.
          await queue.release(chunk);
          throw outcome.error;
        }
        if (outcome.kind === "failed") {
          const dead = await queue.fail(chunk, outcome.reason);
          log(`worker ${me}: chunk ${chunkName(chunk)} failed (try ${chunk.attempt} of ${spec.maxAttempts}): ${outcome.reason}${dead ? "; dead-lettered" : ""}`);
          continue;
        }
        if ((await queue.complete(chunk, outcome.exhausted, outcome.counters)) === "lost") {
          // Taken over after its last commit: the other worker finds it committed and acknowledges it.
          log(`worker ${me}: chunk ${chunkName(chunk)} was taken over by another worker after it committed; that one acknowledges it`);
          continue;
        }
        chunks++;
        accepted += outcome.counters.accepted ?? 0;
        rejected += outcome.counters.rejected ?? 0;
      }
    } finally {
      clearInterval(beat);
    }
  } finally {
    await queue.leave(me).catch(() => undefined);
    await graph?.dispose?.();
    await queue.close();
  }

  function summary(state: WorkerSummary["state"]): WorkerSummary {
    return { worker: me, chunks, reclaimed, accepted, rejected, state, out: runOut };
  }
}

/**
 * A long-lived worker (`--follow`) may start before its run is submitted (a fleet brought up first): it
 * says so once and waits. Undefined when stopped while waiting.
 */
async function specOnceSubmitted(queue: RunQueue, run: string, log: (line: string) => void, signal?: AbortSignal): Promise<RunSpec | undefined> {
  let told = false;
  while (!signal?.aborted) {
    if (await queue.submitted()) return queue.spec();
    if (!told) log(`worker: no run "${run}" on this Redis yet; waiting for \`rxsynth submit ... --run ${run}\``);
    told = true;
    await new Promise((done) => setTimeout(done, 1_000));
  }
  return undefined;
}

type ChunkOutcome =
  | { readonly kind: "committed"; readonly exhausted: boolean; readonly counters: Record<string, number> }
  | { readonly kind: "failed"; readonly reason: string; readonly stopsRun: boolean; readonly error: unknown }
  | { readonly kind: "stopped" };

/** The worker's lease on a chunk ran out and another worker holds it: this one stops before its next commit. */
class ChunkTaken extends Error {
  constructor(chunk: Claimed) {
    super(`chunk ${chunkName(chunk)} was taken over by another worker`);
    this.name = "ChunkTaken";
  }
}

/**
 * Runs one chunk into its folder. `fence` is awaited before every commit: a worker whose lease ran out
 * (it stalled past the reclaim time, and another worker resumed the folder) fails there, having written
 * only temporary files under its own names, which the other worker's resume removes.
 */
async function runChunk(
  graph: BuiltGraph,
  spec: RunSpec,
  chunk: Claimed,
  signal: AbortSignal | undefined,
  log: (line: string) => void,
  fault: FaultHook | undefined,
  fence: () => Promise<void>,
  live: RunOptions["live"],
): Promise<ChunkOutcome> {
  const out = chunkFolder(spec, chunk);
  let summary;
  try {
    summary = await run(windowGraph(graph, chunk), { out, budget: spec.budget, signal, log, fault, fence, live });
  } catch (error) {
    // An endpoint that is out or refuses the key fails every chunk alike: the worker stops instead of burning tries.
    return { kind: "failed", reason: errorMessage(error), stopsRun: stopsRun(error), error };
  }
  if (summary.status === "stopped") return { kind: "stopped" };
  if (summary.status !== "complete") return { kind: "failed", reason: `the chunk's run ended ${summary.status}`, stopsRun: false, error: undefined };
  const committed = await committedOutcome(graph, spec, chunk, summary.metrics);
  if (!committed) return { kind: "failed", reason: "the chunk's run ended without a complete manifest", stopsRun: false, error: undefined };
  return committed;
}

/**
 * The outcome of a chunk whose folder holds a complete run, from its manifest; undefined when it does not.
 * Counts come from the committed shards, so a chunk finished over several tries counts each row once.
 */
async function committedOutcome(
  graph: BuiltGraph,
  spec: RunSpec,
  chunk: Claimed,
  metrics?: Awaited<ReturnType<typeof run>>["metrics"],
): Promise<Extract<ChunkOutcome, { kind: "committed" }> | undefined> {
  const out = chunkFolder(spec, chunk);
  const manifest = await readManifest(out).catch(() => undefined);
  if (!manifest?.complete) return undefined;
  const shards = manifest?.shards ?? [];
  // Every accepted format holds the same rows: one format's count is the chunk's.
  const counted = shards.find((shard) => shard.kind === "accepted")?.format;
  const counters: Record<string, number> = {
    accepted: shards.filter((shard) => shard.kind === "accepted" && shard.format === counted).reduce((sum, shard) => sum + shard.rows, 0),
    rejected: shards.filter((shard) => shard.kind === "rejects").reduce((sum, shard) => sum + shard.rows, 0),
  };
  // Per operator, every try's work as of its last commit (the manifest adds them up): a chunk found
  // committed by the worker that takes it over counts too.
  for (const [name, count] of Object.entries(manifest.operatorCounts ?? {})) {
    counters[`op:${name}:in`] = count.in;
    counters[`op:${name}:out`] = count.out;
    counters[`op:${name}:rejected`] = count.rejected;
  }
  // LLM totals are the chunk's over every try, as its manifest adds them up: what a killed try spent was spent.
  for (const [key, value] of Object.entries(manifest.totals ?? {})) counters[key] = value;
  counters.records = metrics?.source.pulled ?? 0;
  const source = spec.sources.find((candidate) => candidate.name === chunk.source);
  const exhausted = source?.size === null ? !(await anythingFrom(graph, chunk.source, chunk.end)) : false;
  return { kind: "committed", exhausted, counters };
}

/** Whether the source yields any record at or after `position` (blank lines yield nothing). */
async function anythingFrom(graph: BuiltGraph, name: string, position: number): Promise<boolean> {
  const source = graph.sources.find((candidate) => candidate.name === name);
  if (!source) return false;
  const stop = new AbortController();
  try {
    for await (const batch of source.batches({ from: position, signal: stop.signal })) if (batch.length > 0) return true;
    return false;
  } finally {
    stop.abort();
  }
}
