import { setMaxListeners } from "node:events";
import { rm } from "node:fs/promises";
import { join, relative } from "node:path";
import { Observable, type Subscriber } from "rxjs";
import { withRunContext, type CheckpointHook, type RejectInfo, type RunContext } from "./context.ts";
import { ConfigError, errorMessage } from "./errors.ts";
import type { BuiltGraph } from "./graph.ts";
import { stableHash } from "./hash.ts";
import { PositionTracker, identityOptions, optionChanges, readManifest, writeManifest, type Manifest } from "./io/manifest.ts";
import { checkOutputFolder, openFileSinks, removeUncommittedFiles } from "./io/run-files.ts";
import { listShardFiles } from "./io/shards.ts";
import type { OutputRow, RejectRow, RunSink, ShardInfo, Source, SourceItem } from "./io/types.ts";
import { Metrics, type MetricsSnapshot } from "./metrics.ts";
import { TICKET, createSample, sourceSampleId, ticketOf, type Ledger, type Sample, type Ticket } from "./sample.ts";

export interface RunOptions {
  /** Output folder: shards, rejects, manifest, operator state. Required unless the graph brings its own sinks. */
  readonly out?: string;
  /** Most samples in flight at once (default: the graph's, else 1024). */
  readonly budget?: number;
  /** Stop after this many source records (counting those finished by an earlier run). */
  readonly limit?: number;
  /** An operator error fails the run instead of rejecting the sample. */
  readonly failFast?: boolean;
  /** A malformed source record fails the run instead of going to rejects. */
  readonly strictInput?: boolean;
  /** Commit shards and the manifest after this many rows were written (default 50,000). */
  readonly checkpointRows?: number;
  /** ...or after this long (default 30 s). */
  readonly checkpointSeconds?: number;
  /** Rows handed to the sinks at once (default: a quarter of the budget, at most 1024). */
  readonly sinkBatch?: number;
  /** After a stop request, how long in-flight work may finish before it is abandoned (default 10 s). */
  readonly graceMs?: number;
  /** Aborting it stops the run cleanly (the CLI wires SIGINT/SIGTERM to it). */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: RunProgress) => void;
  readonly progressEveryMs?: number;
  readonly log?: (line: string) => void;
}

export interface RunProgress extends MetricsSnapshot {
  readonly inFlight: number;
  readonly budget: number;
  /** Total source records when the sources know it. */
  readonly expected: number | undefined;
}

/** `incomplete`: the sources ran out before the graph reached its goal (see BuiltGraph.incomplete). */
export type RunStatus = "complete" | "limited" | "stopped" | "incomplete";

export interface RunSummary {
  readonly status: RunStatus;
  readonly graph: string;
  readonly out: string | undefined;
  readonly accepted: number;
  readonly rejected: number;
  readonly maxInFlight: number;
  readonly budget: number;
  readonly resumed: boolean;
  /** Why an `incomplete` run stopped short, and how to continue it. */
  readonly incompleteReason?: string;
  /** Shards committed by this run. */
  readonly shards: readonly ShardInfo[];
  readonly metrics: MetricsSnapshot;
}

/** A source record's ticket: which record it was, and which of its outputs are already committed. */
interface RootTicket extends Ticket {
  readonly tracker: PositionTracker;
  readonly position: number;
  written?: string[];
}

const DEFAULT_BUDGET = 1024;

/**
 * Runs a graph to completion, a limit, or a stop request. Sources are pulled only while fewer than
 * `budget` samples are in flight; a sample stops being in flight once a sink has accepted it or it was
 * rejected. Credit is granted in batches (the pump resumes at three quarters of the budget) so the
 * per-sample cost stays a counter update, not an await.
 */
export async function run(graph: BuiltGraph, options: RunOptions = {}): Promise<RunSummary> {
  try {
    return await runGraph(graph, options);
  } finally {
    // Every path out of a run, refusals before the first sample included, releases what the graph holds
    // (an in-process simulator keeps the process alive otherwise).
    await graph.dispose?.();
  }
}

async function runGraph(graph: BuiltGraph, options: RunOptions): Promise<RunSummary> {
  const budget = options.budget ?? graph.budget ?? DEFAULT_BUDGET;
  if (!(Number.isInteger(budget) && budget > 0)) throw new ConfigError(`budget must be a positive integer, got ${budget}`);
  const out = options.out;
  if (!out && !graph.sinks) throw new ConfigError(`graph "${graph.name}" needs an output folder: pass --out DIR`);
  const log = options.log ?? (() => {});
  // A quarter of the budget: small enough that several batches are in the pipe while one is written.
  const sinkBatch = Math.max(1, Math.min(options.sinkBatch ?? Math.min(1024, Math.floor(budget / 4)), budget));
  const resumeLevel = budget - Math.max(1, Math.floor(budget / 4));
  const checkpointRows = options.checkpointRows ?? 50_000;
  const checkpointMs = (options.checkpointSeconds ?? 30) * 1000;
  const optionsHash = stableHash(identityOptions(graph.options, graph.continuable));

  const folderExisted = out ? await checkOutputFolder(out) : false;
  const previous = out ? await readManifest(out) : undefined;
  if (previous && previous.graph !== graph.name) {
    throw new ConfigError(`${out} holds a run of graph "${previous.graph}", not "${graph.name}": choose another --out folder`);
  }
  if (previous && previous.optionsHash !== optionsHash) {
    const changes = optionChanges(previous.options, graph.options, graph.continuable);
    throw new ConfigError(
      `${out} holds a run of "${graph.name}" with other options (${changes.join(", ") || "same values, other hash"}); ` +
        `resuming would mix two datasets. Rerun with the folder's options, or pass another --out folder for the new ones`,
    );
  }
  if (out && !previous && (await listShardFiles(out)).length > 0) {
    throw new ConfigError(`${out} holds shard files but no rxsynth manifest; write into an empty or new --out folder`);
  }
  if (out) {
    await removeUncommittedFiles(out, previous?.shards ?? []);
  }
  const sinks = graph.sinks ?? (await openFileSinks(out!, graph.output, previous?.shards ?? []));
  const acceptedSinks: readonly RunSink[] = sinks.accepted;
  const rejectsSink = sinks.rejects;

  const metrics = new Metrics();
  // Registered in graph order, so reports list operators as the graph reads, not in subscription order.
  for (const operator of graph.operators) metrics.counters(operator.meta.name);
  const stopController = new AbortController();
  // Every operator listens on the run's signal; a long graph has more than Node's default of 10.
  setMaxListeners(0, stopController.signal);
  const hooks: CheckpointHook[] = [];
  const operatorParams: Record<string, { version: string; params: unknown }> = { ...previous?.operators };
  const trackers = new Map<string, PositionTracker>();
  for (const source of graph.sources) {
    if (trackers.has(source.name)) throw new ConfigError(`graph "${graph.name}" has two sources named "${source.name}"`);
    trackers.set(source.name, new PositionTracker(previous?.sources[source.name]));
  }
  /** Outputs of roots that were mid-flight at the last checkpoint and already committed then. */
  const alreadyCommitted = new Set(Object.values(previous?.partial ?? {}).flat());
  const committedShards: ShardInfo[] = [...(previous?.shards ?? [])];
  const newShards: ShardInfo[] = [];
  const partialTickets = new Set<RootTicket>();

  let inFlight = 0;
  let maxInFlight = 0;
  let accepted = 0;
  let rejected = 0;
  let stopping = false;
  let discarding = false;
  let fatal: unknown;
  let sourcesExhausted = false;
  let incompleteReason: string | undefined;
  let wakePump: (() => void) | undefined;
  let pumpWaiting = false;

  const wake = () => {
    const resolve = wakePump;
    wakePump = undefined;
    resolve?.();
  };

  const ledger: Ledger = {
    grow(ticket, extra) {
      ticket.pending += extra;
      inFlight += extra;
      metrics.source.inFlight = inFlight;
      if (inFlight > maxInFlight) maxInFlight = inFlight;
    },
  };

  const settle = (row: OutputRow) => {
    const ticket = ticketOf(row) as RootTicket;
    ticket.pending--;
    inFlight--;
    metrics.source.inFlight = inFlight;
    if (ticket.pending === 0) {
      ticket.tracker.finish(ticket.position);
      if (ticket.written) partialTickets.delete(ticket);
    } else {
      (ticket.written ??= []).push(row.id);
      partialTickets.add(ticket);
    }
    if (pumpWaiting && inFlight <= resumeLevel) wake();
  };

  // Writes and checkpoints run one after another on this chain, so a checkpoint sees every earlier write settled.
  let ioChain: Promise<void> = Promise.resolve();
  const enqueue = (task: () => Promise<void>): Promise<void> => {
    ioChain = ioChain.then(task).catch((error: unknown) => {
      fail(error);
    });
    return ioChain;
  };

  let acceptedBuffer: Sample[] = [];
  let rejectBuffer: RejectRow[] = [];
  let flushing = false;
  let rowsSinceCheckpoint = 0;
  let lastCheckpoint = Date.now();
  let inputDone = false;

  const flushIfDue = () => {
    if (flushing) return;
    const buffered = acceptedBuffer.length + rejectBuffer.length;
    if (buffered === 0) return;
    if (buffered < sinkBatch && !pumpWaiting && !inputDone && !stopping) return;
    flushing = true;
    const acceptedRows = acceptedBuffer;
    const rejectRows = rejectBuffer;
    acceptedBuffer = [];
    rejectBuffer = [];
    void enqueue(async () => {
      await Promise.all([
        ...(acceptedRows.length > 0 ? acceptedSinks.map((sink) => sink.write(acceptedRows)) : []),
        rejectRows.length > 0 ? rejectsSink.write(rejectRows) : undefined,
      ]);
      accepted += acceptedRows.length;
      rejected += rejectRows.length;
      metrics.source.committed = accepted;
      metrics.source.rejected = rejected;
      for (const row of acceptedRows) settle(row);
      for (const row of rejectRows) settle(row);
      rowsSinceCheckpoint += acceptedRows.length + rejectRows.length;
    }).then(() => {
      flushing = false;
      if (rowsSinceCheckpoint >= checkpointRows || (rowsSinceCheckpoint > 0 && Date.now() - lastCheckpoint >= checkpointMs)) {
        void checkpoint(false);
      }
      flushIfDue();
    });
  };

  const takeOutput = (sample: Sample) => {
    if (discarding) return;
    if (alreadyCommitted.has(sample.id)) {
      // Written before a crash as part of a root that had not finished; written once is enough.
      settle(sample);
      return;
    }
    acceptedBuffer.push(sample);
    flushIfDue();
  };

  const takeReject = (sample: Sample, info: RejectInfo) => {
    if (discarding) return;
    if (alreadyCommitted.has(sample.id)) {
      settle(sample);
      return;
    }
    const row = {
      id: sample.id,
      data: sample.data,
      provenance: sample.provenance,
      scores: sample.scores,
      reject: info.at === undefined ? { ...info, at: Date.now() } : (info as RejectRow["reject"]),
      [TICKET]: ticketOf(sample),
    } as RejectRow;
    rejectBuffer.push(row);
    flushIfDue();
  };

  const manifestNow = (complete: boolean): Manifest => ({
    version: 1,
    graph: graph.name,
    optionsHash,
    options: graph.options ?? null,
    createdAt: previous?.createdAt ?? new Date(metrics.startedAt).toISOString(),
    updatedAt: new Date().toISOString(),
    complete,
    shards: committedShards,
    sources: Object.fromEntries([...trackers].map(([name, tracker]) => [name, tracker.progress()])),
    partial: Object.fromEntries(
      [...partialTickets].map((ticket) => [ticket.root, [...(previous?.partial[ticket.root] ?? []), ...(ticket.written ?? [])]]),
    ),
    operators: operatorParams,
    totals: mergeTotals(previous?.totals, metrics.snapshot().totals),
  });

  // Written lazily, so a run that fails before it starts leaves no manifest behind; but always before the
  // first shard is renamed, so a folder with shards always has a manifest to vouch for them.
  let manifestWritten = previous !== undefined;
  const checkpoint = (complete: boolean): Promise<void> =>
    enqueue(async () => {
      if (out && !manifestWritten) {
        await writeManifest(out, manifestNow(false));
        manifestWritten = true;
      }
      const shards = (await Promise.all([...acceptedSinks, rejectsSink].map((sink) => sink.commit()))).flat();
      const relativeShards = shards.map((shard) => (out ? { ...shard, file: relative(out, shard.file.startsWith("/") ? shard.file : join(out, shard.file)) } : shard));
      committedShards.push(...relativeShards);
      newShards.push(...relativeShards);
      for (const hook of hooks) await hook();
      if (out) await writeManifest(out, manifestNow(complete));
      rowsSinceCheckpoint = 0;
      lastCheckpoint = Date.now();
    });

  const context: RunContext = {
    runDir: out,
    signal: stopController.signal,
    failFast: options.failFast ?? false,
    metrics,
    resumed: previous !== undefined,
    reject: takeReject,
    onCheckpoint: (hook) => hooks.push(hook),
    registerOperator(name, version, params) {
      operatorParams[name] = { version, params };
    },
    log,
  };

  function fail(error: unknown) {
    if (fatal === undefined) fatal = error;
    requestStop();
    discarding = true;
    stopController.abort(error);
    wake();
  }

  function requestStop() {
    if (stopping) return;
    stopping = true;
    wake();
    flushIfDue();
  }

  const onExternalAbort = () => requestStop();
  options.signal?.addEventListener("abort", onExternalAbort, { once: true });
  if (options.signal?.aborted) requestStop();

  // The graph: a cold observable the pump pushes into, through the operators, into the sinks.
  let input: Subscriber<Sample> | undefined;
  let resolveDrained!: () => void;
  const drained = new Promise<void>((resolve) => (resolveDrained = resolve));
  const head = new Observable<Sample>((subscriber) => {
    input = subscriber;
  });
  const subscription = withRunContext(context, () =>
    graph.operators
      .reduce<Observable<Sample>>((stream, operator) => stream.pipe(operator), head)
      .subscribe({
        next: takeOutput,
        error: (error: unknown) => {
          fail(error);
          resolveDrained();
        },
        complete: () => resolveDrained(),
      }),
  );


  // Only a hint for progress: a source that cannot tell (or fails to) fails the run in the pump, where it is handled.
  const expectedSizes = await Promise.all(graph.sources.map((source) => source.size?.().catch(() => undefined) ?? Promise.resolve(undefined)));
  const expected = expectedSizes.some((size) => size === undefined)
    ? undefined
    : Math.min(options.limit ?? Infinity, expectedSizes.reduce<number>((sum, size) => sum + (size ?? 0), 0));
  const progressTimer = options.onProgress
    ? setInterval(() => options.onProgress!({ ...metrics.snapshot(), inFlight, budget, expected }), options.progressEveryMs ?? 1000)
    : undefined;
  progressTimer?.unref();
  const checkpointTimer = setInterval(() => {
    if (!flushing && rowsSinceCheckpoint > 0 && Date.now() - lastCheckpoint >= checkpointMs) void checkpoint(false);
  }, Math.min(checkpointMs, 5000));
  checkpointTimer.unref();

  const waitForCredit = async () => {
    while (inFlight >= budget && !stopping) {
      pumpWaiting = true;
      flushIfDue();
      await new Promise<void>((resolve) => (wakePump = resolve));
      pumpWaiting = false;
    }
  };

  const push = (source: Source, tracker: PositionTracker, item: SourceItem) => {
    const id = sourceSampleId(source.name, item.position, item.id);
    const ticket: RootTicket = { pending: 1, root: id, ledger, tracker, position: item.position };
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    metrics.source.pulled++;
    metrics.source.inFlight = inFlight;
    if (item.error || !item.data) {
      if (options.strictInput) {
        fail(item.error ?? new ConfigError(`source ${source.name} yielded a record without data at position ${item.position}`));
        return;
      }
      const sample = createSample({ id, data: {}, origin: source.origin, source: source.name }, ticket);
      const counters = metrics.counters(`source:${source.name}`);
      counters.rejected++;
      counters.reasons.set("malformed_input", (counters.reasons.get("malformed_input") ?? 0) + 1);
      takeReject(sample, { operator: `source:${source.name}`, reason: "malformed_input", message: errorMessage(item.error), raw: item.raw });
      return;
    }
    input!.next(createSample({ id, data: item.data, origin: source.origin, source: source.name }, ticket));
  };

  const pump = async () => {
    let seen = 0;
    for (const source of graph.sources) {
      const tracker = trackers.get(source.name)!;
      seen += tracker.watermark;
      if (options.limit !== undefined && seen >= options.limit) return;
      for await (const batch of source.batches({ from: tracker.watermark, signal: stopController.signal })) {
        for (const item of batch) {
          if (stopping) return;
          if (options.limit !== undefined && seen >= options.limit) return;
          seen++;
          if (tracker.isDone(item.position)) {
            metrics.source.skipped++;
            continue;
          }
          if (inFlight >= budget) await waitForCredit();
          if (stopping) return;
          push(source, tracker, item);
        }
      }
    }
    sourcesExhausted = true;
  };

  try {
    try {
      await pump();
    } catch (error) {
      fail(error);
    }
    inputDone = true;
    input?.complete();
    if (stopping && !fatal) {
      log(`stopping: letting ${inFlight} in-flight samples finish (up to ${Math.round((options.graceMs ?? 10_000) / 1000)} s)`);
      const grace = new Promise<void>((resolve) => setTimeout(resolve, options.graceMs ?? 10_000).unref());
      await Promise.race([drained, grace]);
    } else {
      await drained;
    }
    flushIfDue();
    await ioChain;
    flushIfDue();
    await ioChain;
    discarding = true;
    subscription.unsubscribe();
    if (!stopController.signal.aborted) stopController.abort(new Error("run finished"));
    incompleteReason = sourcesExhausted && !stopping && fatal === undefined ? graph.incomplete?.() : undefined;
    const complete = sourcesExhausted && !stopping && fatal === undefined && incompleteReason === undefined;
    const neverStarted = fatal !== undefined && !manifestWritten && accepted + rejected === 0;
    if (!neverStarted && (fatal === undefined || out)) await checkpoint(complete).catch(() => undefined);
  } finally {
    if (progressTimer) clearInterval(progressTimer);
    clearInterval(checkpointTimer);
    options.signal?.removeEventListener("abort", onExternalAbort);
  }
  if (fatal !== undefined) {
    await Promise.all([...acceptedSinks, rejectsSink].map((sink) => sink.abort().catch(() => undefined)));
    // A run that failed before its first checkpoint leaves the folder as it found it, so the corrected
    // command starts afresh instead of being refused as a resume with other options.
    if (out && !manifestWritten && !folderExisted) await rm(out, { recursive: true, force: true }).catch(() => undefined);
    throw fatal;
  }
  const status: RunStatus = stopping ? "stopped" : !sourcesExhausted ? "limited" : incompleteReason ? "incomplete" : "complete";
  options.onProgress?.({ ...metrics.snapshot(), inFlight, budget, expected });
  return {
    status,
    graph: graph.name,
    out,
    accepted,
    rejected,
    maxInFlight,
    budget,
    resumed: previous !== undefined,
    incompleteReason,
    shards: newShards,
    metrics: metrics.snapshot(),
  };
}

function mergeTotals(before: Readonly<Record<string, number>> | undefined, now: Record<string, number>): Record<string, number> {
  const merged: Record<string, number> = { ...before };
  for (const [key, value] of Object.entries(now)) merged[key] = (merged[key] ?? 0) + value;
  return merged;
}

