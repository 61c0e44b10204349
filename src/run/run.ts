import { setMaxListeners } from "node:events";
import { mkdir, rm } from "node:fs/promises";
import { Observable, type Subscriber } from "rxjs";
import { withRunContext, type CheckpointHook, type RejectInfo, type RunContext } from "../context.ts";
import { ConfigError, errorMessage } from "../errors.ts";
import type { BuiltGraph } from "../graph.ts";
import type { Manifest, OperatorCount } from "../io/manifest.ts";
import { checkOutputFolder, openFileSinks } from "../io/run-files.ts";
import type { OutputRow, RejectRow, RunSink, ShardInfo, Source, SourceItem } from "../io/types.ts";
import { Metrics, type MetricsSnapshot } from "../metrics.ts";
import { TICKET, createSample, sourceSampleId, ticketOf, type Sample, type Ticket } from "../sample.ts";
import { Committer, faultsFromEnvironment, type FaultHook } from "./commit.ts";
import { projectedCost } from "./projected-cost.ts";
import type { CostGate } from "./cost-gate.ts";
import { CreditLedger } from "./credit.ts";
import { describeUnencodable, unencodablePath } from "./encodable.ts";
import { fuseOperators } from "./fusion.ts";
import type { PositionTracker } from "./position-tracker.ts";
import { planResume } from "./resume.ts";
import { SourceIdRegistry } from "./source-ids.ts";
import { Timeline, nextSession, type TimelinePoint } from "./timeline.ts";

/** Polls of 100 ms with no sample settling after the cost gate tripped: the rest are held at the gate. */
const COST_STOP_QUIET_POLLS = 5;

export interface RunOptions {
  /** Output folder: shards, rejects, manifest, operator state. Required unless the graph brings its own sinks. */
  readonly out?: string;
  /** Most samples in flight at once (default: the graph's, else 1024). A hard bound, fan-outs included. */
  readonly budget?: number;
  /** Stop after this many source records (counting those finished by an earlier run). */
  readonly limit?: number;
  /** An operator error fails the run instead of rejecting the sample. */
  readonly failFast?: boolean;
  /** A malformed source record fails the run instead of going to rejects. */
  readonly strictInput?: boolean;
  /** Commit shards and the manifest after this many rows were written (default 50,000). */
  readonly checkpointRows?: number;
  /**
   * ...and at least this often while anything finished is uncommitted (default 30 s), however full the
   * sink batch: after a crash at most this much finished work is redone, and none is lost.
   */
  readonly checkpointSeconds?: number;
  /** Rows handed to the sinks at once (default: a quarter of the budget, at most 1024). */
  readonly sinkBatch?: number;
  /** After a stop request, how long in-flight work may finish before it is abandoned (default 10 s). */
  readonly graceMs?: number;
  /** Aborting it stops the run cleanly (the CLI wires SIGINT/SIGTERM to it). */
  readonly signal?: AbortSignal;
  /** Resume a folder whose run used another endpoint or model (recorded in the manifest). */
  readonly allowIdentityChange?: boolean;
  /** Called after each step of the commit protocol (tests inject crashes); also `RXSYNTH_FAULT`. */
  readonly fault?: FaultHook;
  /**
   * Awaited before each commit writes anything; a throw fails the run with nothing of that commit written.
   * A scaled-out worker checks here that its lease on the chunk still holds (src/scale/worker.ts).
   */
  readonly fence?: () => Promise<void>;
  /**
   * `--max-cost`: the gate the graph's LLM clients ask before each priced request (see CostGate). The run
   * opens it with the folder's earlier spend and stops once it trips, `stopped` with `stopReason:
   * "max_cost"`: what finished is committed, the samples it held are redone by a resume.
   */
  readonly costGate?: CostGate;
  readonly onProgress?: (progress: RunProgress) => void;
  readonly progressEveryMs?: number;
  /** Given, once the run has started, a way to read its progress at any moment (a metrics endpoint scrapes it). */
  readonly live?: (progress: () => RunProgress) => void;
  /** Append periodic snapshots to `timeline.jsonl` in the output folder (default: true when there is one). */
  readonly timeline?: boolean;
  readonly log?: (line: string) => void;
}

export interface RunProgress extends MetricsSnapshot {
  readonly inFlight: number;
  readonly budget: number;
  /** Total source records when the sources know it. */
  readonly expected: number | undefined;
  /** When the last commit of this run landed (epoch ms); undefined before the first. */
  readonly lastCheckpointAt?: number;
  readonly cost?: CostFigures;
}

/** The folder's spend, earlier sessions included; projected at completion when the run's extent is known. */
export interface CostFigures {
  readonly spentUsd: number;
  readonly projectedUsd: number | undefined;
  readonly maxUsd: number | undefined;
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
  /** What stopped a `stopped` run: a stop request (a signal), or `--max-cost` before its spend passed the cap. */
  readonly stopReason?: "request" | "max_cost";
  readonly cost: CostFigures;
  /** Whether this session committed anything (false for a rerun of a finished folder, which changes no file). */
  readonly committed: boolean;
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
 * Runs a graph to completion, a limit, or a stop request, and resumes a folder a previous run left
 * (even after kill -9) to exactly the output an uninterrupted run would have written. The parts, each
 * in its own file: the credit ledger (the budget as a hard bound), the commit protocol (rows -> shards ->
 * operator state -> manifest), and the resume plan (what the manifest says is finished or partial).
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
  const checkpointRows = options.checkpointRows ?? 50_000;
  const checkpointMs = (options.checkpointSeconds ?? 30) * 1000;

  const folderExisted = out ? await checkOutputFolder(out) : false;
  const plan = await planResume(graph, out, options.allowIdentityChange === true);
  // Operators may write reports into the folder before the first checkpoint; a failed start removes it again.
  if (out) await mkdir(out, { recursive: true });
  const { previous, trackers } = plan;
  /** Source records the folder's earlier sessions finished, for the cost estimate and the timeline's counts. */
  const finishedBefore = [...trackers.values()].reduce((sum, tracker) => sum + tracker.watermark + tracker.progress().done.length, 0);
  const spentBefore = previous?.totals["llm.cost_usd"] ?? 0;
  const gate = options.costGate;
  const sinks = graph.sinks ?? (await openFileSinks(out!, graph.output, previous?.shards ?? []));
  const acceptedSinks: readonly RunSink[] = sinks.accepted;
  const rejectsSink = sinks.rejects;

  const metrics = new Metrics();
  // Registered in graph order, so reports list operators as the graph reads, not in subscription order.
  for (const operator of graph.operators) metrics.counters(operator.meta.name);
  const stopController = new AbortController();
  // Every operator listens on the run's signal; a long graph has more than Node's default of 10.
  setMaxListeners(0, stopController.signal);
  const sourceIds = new SourceIdRegistry(out, graph.sources.map((source) => source.name), previous !== undefined, log);
  const hooks: CheckpointHook[] = [() => sourceIds.save()];
  const operatorParams: Record<string, { version: string; params: unknown }> = { ...previous?.operators };
  const committedShards: ShardInfo[] = [...(previous?.shards ?? [])];
  const newShards: ShardInfo[] = [];
  const partialTickets = new Set<RootTicket>();
  const committer = new Committer(
    { out, sinks: [...acceptedSinks, rejectsSink], hooks, fault: options.fault ?? faultsFromEnvironment(), fence: options.fence },
    previous !== undefined,
  );

  let accepted = 0;
  let rejected = 0;
  let stopping = false;
  let discarding = false;
  let fatal: unknown;
  /** A sink write or commit failed: what the sinks hold is unknown, so nothing more is committed. */
  let sinksBroken = false;
  let sourcesExhausted = false;
  let incompleteReason: string | undefined;
  let stopReason: RunSummary["stopReason"];
  let finishedThisRun = 0;
  let committedThisSession = false;
  let lastCommitAt: number | undefined;

  const finishRoot = (finished: Ticket) => {
    const ticket = finished as RootTicket;
    ticket.tracker.finish(ticket.position);
    // Only a ticket with outputs written before it finished is in the set: the others skip a hash lookup.
    if (ticket.written !== undefined) partialTickets.delete(ticket);
    if (plan.partial.size > 0) plan.partial.delete(ticket.root);
    finishedThisRun++;
  };
  const ledger = new CreditLedger(budget, budget - Math.max(1, Math.floor(budget / 4)), () => flushIfDue(), finishRoot);

  const settle = (row: OutputRow) => {
    const ticket = ticketOf(row) as RootTicket;
    if (!ledger.release(ticket)) {
      (ticket.written ??= []).push(row.id);
      partialTickets.add(ticket);
    }
    metrics.source.inFlight = ledger.inFlight;
  };

  // Writes and commits run one after another on this chain, so a commit sees every earlier write settled.
  let ioChain: Promise<void> = Promise.resolve();
  const enqueue = (task: () => Promise<void>): Promise<void> => {
    ioChain = ioChain.then(task).catch((error: unknown) => {
      sinksBroken = true;
      fail(error);
    });
    return ioChain;
  };

  let acceptedBuffer: Sample[] = [];
  let rejectBuffer: RejectRow[] = [];
  let writing = false;
  let rowsSinceCheckpoint = 0;
  let lastCheckpoint = Date.now();
  let checkpointQueued = false;
  let inputDone = false;

  const checkpointDue = () => rowsSinceCheckpoint >= checkpointRows || Date.now() - lastCheckpoint >= checkpointMs;

  const flushIfDue = (force = false) => {
    if (writing || sinksBroken) return;
    const buffered = acceptedBuffer.length + rejectBuffer.length;
    if (buffered === 0) return;
    if (!force && buffered < sinkBatch && !ledger.waiting && !inputDone && !stopping) return;
    writing = true;
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
      writing = false;
      if (rowsSinceCheckpoint > 0 && checkpointDue()) void checkpoint(false);
      flushIfDue();
    });
  };

  const rejectRow = (sample: Sample, info: RejectInfo): RejectRow =>
    ({
      id: sample.id,
      data: sample.data,
      provenance: sample.provenance,
      scores: sample.scores,
      reject: info.at === undefined ? { ...info, at: Date.now() } : (info as RejectRow["reject"]),
      [TICKET]: ticketOf(sample),
    }) as RejectRow;

  // Only rows bound for a sink that serialises are walked: one that stores objects can hold any value.
  const checkAccepted = acceptedSinks.some((sink) => sink.storesObjects !== true);
  const checkRejects = rejectsSink.storesObjects !== true;
  /** A value no sink can write rejects its one sample, kept readable in `raw`, instead of failing a batch. */
  const unencodableReject = (sample: Sample, operator: string): RejectRow | undefined => {
    const path = unencodablePath(sample);
    if (!path) return undefined;
    const counters = metrics.counters("sink");
    counters.rejected++;
    counters.reasons.set("unencodable", (counters.reasons.get("unencodable") ?? 0) + 1);
    const emptied = { ...sample, data: {}, scores: {}, provenance: { ...sample.provenance, steps: [] } } as Sample;
    return rejectRow(emptied, {
      operator,
      reason: "unencodable",
      message: `${path} cannot be written to a shard; make the operator that set it produce plain data`,
      raw: describeUnencodable(sample.data),
    });
  };

  const takeOutput = (sample: Sample) => {
    if (discarding) return;
    if (plan.alreadyCommitted.size > 0 && plan.alreadyCommitted.has(sample.id)) {
      // Written before a crash as part of a root that had not finished; written once is enough.
      settle(sample);
      return;
    }
    const unencodable = checkAccepted ? unencodableReject(sample, "sink") : undefined;
    if (unencodable) rejectBuffer.push(unencodable);
    else acceptedBuffer.push(sample);
    flushIfDue();
  };

  const takeReject = (sample: Sample, info: RejectInfo) => {
    if (discarding) return;
    if (plan.alreadyCommitted.size > 0 && plan.alreadyCommitted.has(sample.id)) {
      settle(sample);
      return;
    }
    rejectBuffer.push((checkRejects ? unencodableReject(sample, info.operator) : undefined) ?? rejectRow(sample, info));
    flushIfDue();
  };

  /** Partly committed roots: those carried from earlier runs and those caught mid-flight now. */
  const partialNow = (): Record<string, string[]> => {
    const merged: Record<string, string[]> = Object.fromEntries([...plan.partial].map(([root, ids]) => [root, [...ids]]));
    for (const ticket of partialTickets) merged[ticket.root] = [...new Set([...(merged[ticket.root] ?? []), ...(ticket.written ?? [])])];
    return merged;
  };

  /**
   * The manifest as of a commit. `initial` (the first commit's manifest, written before any shard is
   * renamed) vouches for no progress: rows written so far are not committed until their shards are.
   */
  const manifestNow = (complete: boolean, shards: readonly ShardInfo[], initial = false): Manifest => ({
    version: 1,
    graph: graph.name,
    optionsHash: plan.optionsHash,
    options: graph.options ?? null,
    identity: plan.identity,
    identityHistory: plan.identityHistory,
    createdAt: previous?.createdAt ?? new Date(metrics.startedAt).toISOString(),
    updatedAt: new Date().toISOString(),
    complete,
    shards: [...committedShards, ...shards],
    sources: initial ? {} : Object.fromEntries([...trackers].map(([name, tracker]) => [name, tracker.progress()])),
    partial: initial ? {} : partialNow(),
    operators: operatorParams,
    totals: mergeTotals(previous?.totals, metrics.snapshot().totals),
    operatorCounts: mergeOperatorCounts(previous?.operatorCounts, metrics.snapshot().operators),
  });

  /** Periodic checkpoints coalesce; the final one always runs, after everything before it. */
  const checkpoint = (complete: boolean, final = false): Promise<void> => {
    if (checkpointQueued && !final) return ioChain;
    checkpointQueued = true;
    return enqueue(async () => {
      checkpointQueued = false;
      if (sinksBroken) return;
      const shards = await committer.commit((fresh, initial) => manifestNow(complete && !initial, fresh, initial));
      committedShards.push(...shards);
      newShards.push(...shards);
      rowsSinceCheckpoint = 0;
      lastCheckpoint = Date.now();
      lastCommitAt = lastCheckpoint;
    });
  };

  const context: RunContext = {
    runDir: out,
    signal: stopController.signal,
    failFast: options.failFast ?? false,
    metrics,
    resumed: previous !== undefined,
    budget,
    reject: takeReject,
    onCheckpoint: (hook) => hooks.push(hook),
    registerOperator(name, version, params) {
      operatorParams[name] = { version, params };
    },
    log,
  };

  function fail(error: unknown) {
    if (fatal === undefined) fatal = error;
    resolveFailed();
    requestStop();
    discarding = true;
    stopController.abort(error);
  }

  function requestStop() {
    if (stopping) return;
    stopping = true;
    ledger.wakePump();
    flushIfDue();
  }

  const onExternalAbort = () => {
    stopReason ??= "request";
    requestStop();
  };
  options.signal?.addEventListener("abort", onExternalAbort, { once: true });
  if (options.signal?.aborted) requestStop();

  // The graph: a cold observable the pump pushes into, through the operators, into the sinks.
  let input: Subscriber<Sample> | undefined;
  let resolveDrained!: () => void;
  const drained = new Promise<void>((resolve) => (resolveDrained = resolve));
  // A fatal error gives up the work in flight: waiting for it to drain could wait for ever (a fan-out
  // waiting for credit that no discarded sample will return).
  let resolveFailed!: () => void;
  const failed = new Promise<void>((resolve) => (resolveFailed = resolve));
  const head = new Observable<Sample>((subscriber) => {
    input = subscriber;
  });
  // RXSYNTH_FUSE=0 pipes every operator on its own: a way to tell whether fusion is behind a difference.
  const operators = process.env.RXSYNTH_FUSE === "0" ? graph.operators : fuseOperators(graph.operators);
  const subscription = withRunContext(context, () =>
    operators
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
  graph.sources.forEach((source, index) => {
    const size = expectedSizes[index];
    if (size !== undefined) sourceIds.reserve(source.name, size);
  });
  const expected = expectedSizes.some((size) => size === undefined)
    ? undefined
    : Math.min(options.limit ?? Infinity, expectedSizes.reduce<number>((sum, size) => sum + (size ?? 0), 0));
  const costFigures = (): CostFigures => {
    const spentUsd = spentBefore + metrics.total("llm.cost_usd");
    const goal = graph.goal?.();
    const done = goal ? { finished: goal.done, total: goal.total } : expected === undefined ? undefined : { finished: finishedBefore + finishedThisRun, total: expected };
    return { spentUsd, projectedUsd: projectedCost(spentUsd, done), maxUsd: gate?.maxUsd };
  };
  const progress = (): RunProgress => ({ ...metrics.snapshot(), inFlight: ledger.inFlight, budget, expected, lastCheckpointAt: lastCommitAt, cost: costFigures() });
  options.live?.(progress);
  const stopForCost = () => {
    if (stopping) return;
    stopReason = "max_cost";
    const { spentUsd, projectedUsd } = costFigures();
    log(
      `--max-cost: stopping, as the next request could pass $${gate!.maxUsd}: $${spentUsd.toFixed(4)} spent${projectedUsd === undefined ? "" : `, $${projectedUsd.toFixed(4)} projected at completion`}; what finished is committed, the held samples are redone on resume`,
    );
    requestStop();
    // The samples the gate holds never finish: once the rest have settled, the run ends without them.
    let last = "";
    let quietPolls = 0;
    // Not unref'd: the held requests keep nothing else alive, and the run must go on to its last commit.
    costPoll = setInterval(() => {
      const settled = `${accepted} ${rejected} ${ledger.inFlight}`;
      quietPolls = settled === last ? quietPolls + 1 : 0;
      last = settled;
      if (quietPolls >= COST_STOP_QUIET_POLLS) {
        clearInterval(costPoll);
        resolveCostHeld();
      }
    }, 100);
  };
  let costPoll: NodeJS.Timeout | undefined;
  let resolveCostHeld!: () => void;
  const costHeld = new Promise<void>((resolve) => (resolveCostHeld = resolve));
  const acceptedBefore = (previous?.shards ?? []).filter((shard) => shard.kind === "accepted").reduce((sum, shard) => sum + shard.rows, 0);
  const rejectedBefore = (previous?.shards ?? []).filter((shard) => shard.kind === "rejects").reduce((sum, shard) => sum + shard.rows, 0);
  const timeline = out && options.timeline !== false ? new Timeline(out, log) : undefined;
  const session = timeline ? await nextSession(out!) : 0;
  const timelinePoint = (): TimelinePoint => {
    const snapshot = metrics.snapshot();
    const cost = costFigures();
    return {
      at: Date.now(),
      session,
      elapsedMs: snapshot.elapsedMs,
      pulled: finishedBefore + snapshot.source.pulled,
      accepted: acceptedBefore + accepted,
      rejected: rejectedBefore + rejected,
      inFlight: ledger.inFlight,
      budget,
      operators: mergeOperatorCounts(previous?.operatorCounts, snapshot.operators),
      totals: mergeTotals(previous?.totals, snapshot.totals),
      cost: { spentUsd: cost.spentUsd, projectedUsd: cost.projectedUsd ?? null },
    };
  };
  // Held back until the session does something, so a rerun of a finished run changes no file.
  const sessionStart = timeline ? timelinePoint() : undefined;
  let timelineStarted = false;
  const appendTimeline = () => {
    if (!timeline || metrics.source.pulled === 0 || fatal !== undefined) return;
    const points = timelineStarted ? [timelinePoint()] : [sessionStart!, timelinePoint()];
    timelineStarted = true;
    void timeline.append(points, options.fence);
  };
  const progressTimer = options.onProgress ? setInterval(() => options.onProgress!(progress()), options.progressEveryMs ?? 1000) : undefined;
  progressTimer?.unref();
  // Time-bounded loss: whatever has finished is written and committed at least every checkpointMs, even
  // when a slow source never fills a sink batch.
  const checkpointTimer = setInterval(
    () => {
      if (timeline?.due(Date.now() - metrics.startedAt)) appendTimeline();
      if (Date.now() - lastCheckpoint < checkpointMs) return;
      if (acceptedBuffer.length + rejectBuffer.length > 0) flushIfDue(true);
      if (writing || rowsSinceCheckpoint > 0) void checkpoint(false);
    },
    Math.max(50, Math.min(checkpointMs / 4, 1000)),
  );
  checkpointTimer.unref();

  const push = (source: Source, tracker: PositionTracker, item: SourceItem) => {
    const id = sourceSampleId(source.name, item.position, item.id);
    const ticket: RootTicket = { pending: 0, root: id, ledger, tracker, position: item.position };
    ledger.takeRoot(ticket);
    metrics.source.pulled++;
    metrics.source.inFlight = ledger.inFlight;
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
        // The whole batch at once (as far as the limit reads), before the skip: a finished record's id still
        // counts against a later repeat. Records checked but not pushed (a stop) pass when a resume reads them again.
        if (stopping) return;
        sourceIds.check(source.name, batch, options.limit === undefined ? batch.length : Math.min(batch.length, Math.max(0, options.limit - seen)));
        for (const item of batch) {
          if (stopping) return;
          if (options.limit !== undefined && seen >= options.limit) return;
          seen++;
          if (tracker.isDone(item.position)) {
            metrics.source.skipped++;
            continue;
          }
          // Asked again after each wait: a fan-out may have taken the credit that woke the pump.
          for (let credit = ledger.pumpCredit(); credit && !stopping; credit = ledger.pumpCredit()) await credit;
          if (stopping) return;
          push(source, tracker, item);
        }
      }
    }
    sourcesExhausted = true;
  };

  const requestsBefore = previous?.totals["llm.requests"] ?? 0;
  gate?.open(spentBefore, stopForCost, requestsBefore > 0 && spentBefore > 0 ? spentBefore / requestsBefore : undefined);
  try {
    try {
      // A source that waits on its own samples (a Self-Instruct wave) waits for ever on those the cost gate holds.
      await Promise.race([pump(), costHeld]);
    } catch (error) {
      fail(error);
    }
    inputDone = true;
    input?.complete();
    if (stopping && !fatal && stopReason !== "max_cost") {
      log(`stopping: letting ${ledger.inFlight} in-flight samples finish (up to ${Math.round((options.graceMs ?? 10_000) / 1000)} s)`);
      const grace = new Promise<void>((resolve) => setTimeout(resolve, options.graceMs ?? 10_000).unref());
      await Promise.race([drained, grace, failed]);
    } else {
      await Promise.race([drained, failed, costHeld]);
    }
    flushIfDue(true);
    await ioChain;
    flushIfDue(true);
    await ioChain;
    discarding = true;
    subscription.unsubscribe();
    if (!stopController.signal.aborted) stopController.abort(new Error("run finished"));
    incompleteReason = sourcesExhausted && !stopping && fatal === undefined ? graph.incomplete?.() : undefined;
    const complete = sourcesExhausted && !stopping && fatal === undefined && incompleteReason === undefined;
    // A rerun of a finished run changes no file, a --limit run the folder had already passed included: it
    // read no record, so stateful operators never loaded their state, and saving it would erase it. A
    // session that read records or sent requests commits (its spend counts toward --max-cost); a run that
    // failed before it started leaves no manifest.
    const readNothing = metrics.source.pulled === 0 && metrics.source.skipped === 0;
    const nothingNew =
      previous !== undefined &&
      rowsSinceCheckpoint === 0 &&
      finishedThisRun === 0 &&
      metrics.total("llm.requests") === 0 &&
      (previous.complete === complete || (previous.complete && readNothing));
    const neverStarted = fatal !== undefined && !committer.started && accepted + rejected === 0;
    committedThisSession = !nothingNew && !neverStarted && !sinksBroken;
    if (committedThisSession) await checkpoint(complete, true);
    if (!nothingNew && !neverStarted) appendTimeline();
    await timeline?.settled();
  } finally {
    if (progressTimer) clearInterval(progressTimer);
    clearInterval(checkpointTimer);
    clearInterval(costPoll);
    options.signal?.removeEventListener("abort", onExternalAbort);
  }
  if (fatal !== undefined) {
    // Nothing of a batch a sink failed on is committed: its uncommitted part is given up and redone on resume.
    await Promise.all([...acceptedSinks, rejectsSink].map((sink) => sink.abort().catch(() => undefined)));
    // A run that failed before its first checkpoint leaves the folder as it found it, so the corrected
    // command starts afresh instead of being refused as a resume with other options; unless the fence
    // refused it, when the folder is another worker's now, with that one's files in it.
    if (out && !committer.started && !committer.fenced && !folderExisted) await rm(out, { recursive: true, force: true }).catch(() => undefined);
    throw fatal;
  }
  const status: RunStatus = stopping ? "stopped" : !sourcesExhausted ? "limited" : incompleteReason ? "incomplete" : "complete";
  options.onProgress?.(progress());
  return {
    status,
    graph: graph.name,
    out,
    accepted,
    rejected,
    maxInFlight: ledger.maxInFlight,
    budget,
    resumed: previous !== undefined,
    incompleteReason,
    stopReason: status === "stopped" ? (stopReason ?? "request") : undefined,
    cost: costFigures(),
    committed: committedThisSession,
    shards: newShards,
    metrics: metrics.snapshot(),
  };
}

function mergeOperatorCounts(before: Manifest["operatorCounts"], now: MetricsSnapshot["operators"]): Record<string, OperatorCount> {
  const merged: Record<string, OperatorCount> = { ...before };
  for (const operator of now) {
    const earlier = merged[operator.name];
    merged[operator.name] = { in: (earlier?.in ?? 0) + operator.in, out: (earlier?.out ?? 0) + operator.out, rejected: (earlier?.rejected ?? 0) + operator.rejected };
  }
  return merged;
}

function mergeTotals(before: Readonly<Record<string, number>> | undefined, now: Record<string, number>): Record<string, number> {
  const merged: Record<string, number> = { ...before };
  for (const [key, value] of Object.entries(now)) merged[key] = (merged[key] ?? 0) + value;
  return merged;
}
