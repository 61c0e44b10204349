import { setMaxListeners } from "node:events";
import { Observable, type OperatorFunction } from "rxjs";
import { currentRunContext, type RejectInfo, type RunContext } from "./context.ts";
import { ConfigError, errorMessage, stopsRun } from "./errors.ts";
import { countReason, type OperatorCounters } from "./metrics.ts";
import type { OperatorMeta, ResolvedMeta } from "./operator.ts";
import { ticketOf, type Sample } from "./sample.ts";

/** What a stage body is given: emit a sample downstream, or reject one. */
export interface StageTools {
  readonly context: RunContext;
  readonly counters: OperatorCounters;
  emit(sample: Sample): void;
  reject(sample: Sample, verdict: Omit<RejectInfo, "operator">): void;
  /** An error on one sample: rejected with reason `error`, or the run fails when fail-fast. */
  fail(sample: Sample, error: unknown): void;
  /**
   * Takes credit for extra outputs of one input (fan-out), keeping the runner's in-flight accounting
   * exact; a promise means the budget is full and the outputs must wait until it resolves.
   */
  addPending(sample: Sample, extra: number): Promise<void> | undefined;
  /** True once downstream unsubscribed: late async results are dropped, the run is over for them. */
  closed(): boolean;
}

export interface StageBody {
  /**
   * Handles one sample. A sync body returns when done. An async body (`async: true`) must call `done`
   * exactly once, after emitting or rejecting, and route its own errors to `fail`: one callback per
   * sample instead of a chain of promises, because this runs millions of times.
   */
  next(sample: Sample, signal: AbortSignal, done: () => void): void;
  readonly async?: boolean;
  /** Runs once the input completed and all work is done, before completing downstream. */
  complete?(): void | Promise<void>;
  teardown?(): void;
}

export type StageSetup = (tools: StageTools) => StageBody;

/**
 * Where a stage sends what it emits: the RxJS subscriber of its own Observable, or, in a fused run of
 * synchronous stages (src/run/fusion.ts), the next stage of the run. An RxJS Subscriber is one as it is.
 */
export interface StageOutput {
  next(sample: Sample): void;
  error(error: unknown): void;
  complete(): void;
  readonly closed: boolean;
}

/** One subscription of a stage: what its input calls, and the cleanup to run after the input is unsubscribed. */
export interface OpenStage {
  next(sample: Sample): void;
  complete(): void;
  teardown(): void;
}

/**
 * A synchronous stage's definition, kept on its operator (hidden) so the runner can run consecutive ones
 * as direct calls instead of one RxJS subscriber hop each; the operator itself stays a plain RxJS operator.
 */
export interface SyncStage {
  readonly meta: ResolvedMeta;
  readonly setup: StageSetup;
}

const SYNC_STAGE: unique symbol = Symbol("rxsynth.syncStage");

/** The synchronous stage an operator was made from, when it was made by a sync helper (map, filter, tap). */
export function syncStageOf(operator: OperatorFunction<Sample, Sample>): SyncStage | undefined {
  return (operator as { [SYNC_STAGE]?: SyncStage })[SYNC_STAGE];
}

/** The ConfigError for a declared read the sample lacks, or undefined when it has them all. */
function missingReadError(meta: Pick<OperatorMeta, "name" | "reads">, sample: Sample): ConfigError | undefined {
  const reads = meta.reads;
  if (!reads) return undefined;
  const data: Record<string, unknown> = sample.data ?? {};
  for (const field of reads) {
    if (data[field] !== undefined) continue;
    const present = Object.keys(data).filter((key) => data[key] !== undefined);
    return new ConfigError(
      `operator "${meta.name}" reads field "${field}", but samples reaching it have: ${present.length > 0 ? present.join(", ") : "(no fields)"}` +
        ` (read one of those, or insert the operator after one that writes "${field}")`,
    );
  }
  return undefined;
}

/**
 * The one place that owns subscription, error policy, counters, rejects and teardown, as a plain RxJS
 * operator. `sync` marks a body that never goes async (map, filter, tap), so the runner may fuse it.
 */
export function stageOperator(meta: ResolvedMeta, concurrency: number, setup: StageSetup, sync = false): OperatorFunction<Sample, Sample> {
  const operator: OperatorFunction<Sample, Sample> = (source) =>
    new Observable<Sample>((subscriber) => {
      const stage = openStage(meta, concurrency, setup, subscriber);
      const subscription = source.subscribe({
        next: (sample) => stage.next(sample),
        error: (error: unknown) => subscriber.error(error),
        complete: () => stage.complete(),
      });
      return () => {
        subscription.unsubscribe();
        stage.teardown();
      };
    });
  if (sync) Object.defineProperty(operator, SYNC_STAGE, { value: { meta, setup } satisfies SyncStage, enumerable: false });
  return operator;
}

/**
 * Sets up one subscription of a stage against the run context current now. `concurrency` bounds async
 * work; inputs beyond it wait in `waiting`, a queue whose size is bounded by the runner's in-flight budget
 * (the runner never lets more samples into the graph than that).
 */
export function openStage(meta: ResolvedMeta, concurrency: number, setup: StageSetup, output: StageOutput): OpenStage {
  const context = currentRunContext(meta.name);
  context.registerOperator(meta.name, meta.version, meta.params ?? null);
  const counters = context.metrics.counters(meta.name);
  const failFast = meta.failFast ?? context.failFast;
  const abort = new AbortController();
  // Every in-flight sample of this stage listens on the one signal; concurrency already bounds them.
  setMaxListeners(0, abort.signal);
  const onRunAbort = () => abort.abort(context.signal.reason);
  context.signal.addEventListener("abort", onRunAbort, { once: true });

  const tools: StageTools = {
    context,
    counters,
    emit(sample) {
      counters.out++;
      output.next(sample);
    },
    reject(sample, verdict) {
      countReason(counters, verdict.reason);
      context.reject(sample, {
        operator: meta.name,
        reason: verdict.reason,
        value: verdict.value,
        threshold: verdict.threshold,
        message: verdict.message,
        raw: verdict.raw,
        duplicateOf: verdict.duplicateOf,
        at: Date.now(),
      });
    },
    fail(sample, error) {
      if (failFast || stopsRun(error)) output.error(error);
      else tools.reject(sample, { reason: "error", message: errorMessage(error) });
    },
    closed: () => output.closed,
    addPending(sample, extra) {
      const ticket = ticketOf(sample);
      return ticket ? ticket.ledger.grow(ticket, extra) : undefined;
    },
  };
  const body = setup(tools);

  let active = 0;
  let inputDone = false;
  let finished = false;
  const waiting: Sample[] = [];
  let waitingHead = 0;
  let readsChecked = !meta.reads || meta.reads.length === 0;

  const finish = () => {
    if (finished || !inputDone || active > 0 || waitingHead < waiting.length) return;
    finished = true;
    let completion: void | Promise<void>;
    try {
      completion = body.complete?.();
    } catch (error) {
      output.error(error);
      return;
    }
    if (completion) completion.then(() => output.complete(), (error: unknown) => output.error(error));
    else output.complete();
  };

  const settle = () => {
    active--;
    counters.inFlight--;
    if (output.closed) return;
    while (active < concurrency && waitingHead < waiting.length) {
      const next = waiting[waitingHead]!;
      waiting[waitingHead++] = undefined as unknown as Sample;
      if (waitingHead > 1024 && waitingHead * 2 > waiting.length) {
        waiting.splice(0, waitingHead);
        waitingHead = 0;
      }
      start(next);
    }
    finish();
  };

  const start = (sample: Sample): void => {
    counters.in++;
    if (body.async) {
      active++;
      counters.inFlight++;
    }
    try {
      body.next(sample, abort.signal, settle);
    } catch (error) {
      tools.fail(sample, error);
      if (body.async) settle();
    }
  };

  return {
    next(sample) {
      if (!readsChecked) {
        // A field the first sample lacks is the graph's mistake (a wrong name, the wrong place), not one
        // sample's: one error for the run, whatever failFast, instead of every sample rejected alike.
        // Until then readsChecked stays false, so a synchronous source's later samples end up here too.
        if (output.closed) return;
        const missing = missingReadError(meta, sample);
        if (missing) {
          output.error(missing);
          return;
        }
        readsChecked = true;
      }
      if (active < concurrency) start(sample);
      else waiting.push(sample);
    },
    complete() {
      inputDone = true;
      finish();
    },
    teardown() {
      context.signal.removeEventListener("abort", onRunAbort);
      if (!finished) abort.abort(new Error(`operator ${meta.name} torn down`));
      body.teardown?.();
    },
  };
}
