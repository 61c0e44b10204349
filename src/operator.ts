import { Observable, type OperatorFunction } from "rxjs";
import type { RejectInfo, RunContext } from "./context.ts";
import { stableHash } from "./hash.ts";
import { stageOperator, type StageBody, type StageSetup, type StageTools } from "./stage.ts";
import {
  TICKET,
  childSampleId,
  ticketOf,
  withTicket,
  type Origin,
  type Provenance,
  type Sample,
  type SampleData,
  type StepRecord,
} from "./sample.ts";

/** What every operator declares about itself; `params` must be serialisable (it is hashed into provenance). */
export interface OperatorMeta {
  readonly name: string;
  readonly version?: string;
  readonly params?: unknown;
  /**
   * Top-level data fields the operator needs. Checked against earlier writes when the graph is built (if
   * every source declares its fields), and against the first sample that reaches the operator at run time:
   * a field it lacks (absent or `undefined`; `null` counts as present) fails the run with a ConfigError.
   * Later samples are not checked: one malformed record is the operator's to reject, not a wrong graph.
   */
  readonly reads?: readonly string[];
  /** Data fields the operator adds or replaces. */
  readonly writes?: readonly string[];
  /** Error policy for this operator alone; the run's `failFast` applies when unset. */
  readonly failFast?: boolean;
}

/** An RxJS operator over samples that carries its name and declarations. */
export type Operator = OperatorFunction<Sample, Sample> & { readonly meta: ResolvedMeta };

export interface ResolvedMeta extends OperatorMeta {
  readonly version: string;
  readonly paramsHash: string;
}

export interface DropVerdict extends Omit<RejectInfo, "operator"> {
  readonly keep: false;
}
export interface KeepVerdict {
  readonly keep: true;
  /** Measurements to keep on the sample (merged into `scores`). */
  readonly scores?: Record<string, number>;
}
/** A filter's decision: `true` keeps, a DropVerdict rejects with a reason. */
export type Verdict = true | KeepVerdict | DropVerdict;

/** Fields an operator may add to its step record (model, usage, latency, a note). */
export type StepExtras = Omit<Partial<StepRecord>, "op" | "version" | "at" | "params">;

/** What a map returns: the parts of the sample it changes. */
export interface Patch<T extends SampleData = SampleData> {
  readonly data?: T;
  readonly scores?: Record<string, number>;
  readonly step?: StepExtras;
  readonly provenance?: Partial<Pick<Provenance, "origin" | "source">>;
}

/** One output of a fan-out. */
export interface Child<T extends SampleData = SampleData> {
  readonly data: T;
  readonly scores?: Record<string, number>;
  readonly step?: StepExtras;
  /** Defaults to "synthetic". */
  readonly origin?: Origin;
  /** "next" (default) is a new generation (depth + 1); "same" splits without generating (e.g. chunking). */
  readonly generation?: "next" | "same";
}

export function drop(reason: string, details: Omit<DropVerdict, "keep" | "reason"> = {}): DropVerdict {
  return { keep: false, reason, ...details };
}

export function isDrop(value: unknown): value is DropVerdict {
  return typeof value === "object" && value !== null && (value as { keep?: unknown }).keep === false;
}

function resolveMeta(meta: OperatorMeta): ResolvedMeta {
  return { ...meta, version: meta.version ?? "1", paramsHash: stableHash(meta.params ?? null) };
}

function attachMeta(fn: OperatorFunction<Sample, Sample>, meta: ResolvedMeta): Operator {
  return Object.assign(fn, { meta });
}

function stamp(meta: ResolvedMeta, extras?: StepExtras): StepRecord {
  const step: StepRecord = { op: meta.name, version: meta.version, at: Date.now(), params: meta.paramsHash };
  return extras ? { ...step, ...extras } : step;
}

/** The sample after `patch`: a new object, the input left as it was. */
export function applyPatch(sample: Sample, patch: Patch, meta: ResolvedMeta): Sample {
  const before = sample.provenance;
  let provenance = before;
  if (patch.data !== undefined || patch.provenance !== undefined || patch.step !== undefined) {
    // Built as one literal of fixed shape: this runs per sample per stage, and spreads cost allocations.
    provenance = {
      origin: patch.provenance?.origin ?? before.origin,
      source: patch.provenance?.source ?? before.source,
      parents: before.parents,
      depth: before.depth,
      steps: appendStep(before.steps, stamp(meta, patch.step)),
    };
  }
  return {
    id: sample.id,
    data: patch.data ?? sample.data,
    provenance,
    scores: patch.scores ? { ...sample.scores, ...patch.scores } : sample.scores,
    [TICKET]: ticketOf(sample),
  } as Sample;
}

function appendStep(steps: readonly StepRecord[], step: StepRecord): StepRecord[] {
  const next = new Array<StepRecord>(steps.length + 1);
  for (let i = 0; i < steps.length; i++) next[i] = steps[i]!;
  next[steps.length] = step;
  return next;
}

function childOf(parent: Sample, child: Child, index: number, meta: ResolvedMeta): Sample {
  const sameGeneration = child.generation === "same";
  return {
    id: childSampleId(parent.id, meta.name, index),
    data: child.data,
    provenance: {
      origin: sameGeneration ? parent.provenance.origin : (child.origin ?? "synthetic"),
      source: parent.provenance.source,
      parents: [parent.id],
      depth: sameGeneration ? parent.provenance.depth : parent.provenance.depth + 1,
      steps: appendStep(parent.provenance.steps, stamp(meta, child.step)),
    },
    scores: child.scores ? { ...parent.scores, ...child.scores } : parent.scores,
    [TICKET]: ticketOf(parent),
  } as Sample;
}

/** An operator made by the stage helper (src/stage.ts); `sync` bodies never go async, so the runner may fuse them. */
function defineStage(meta: ResolvedMeta, concurrency: number, setup: StageSetup, sync = false): Operator {
  return attachMeta(stageOperator(meta, concurrency, setup, sync), meta);
}

/** Per-subscription state: created fresh each time the graph runs. */
export interface Stateful<S> {
  readonly state?: () => S;
}

export interface FilterSpec<S = undefined> extends OperatorMeta, Stateful<S> {
  test(sample: Sample, state: S, context: RunContext): Verdict;
  /** Runs at the end of the input (e.g. to write a summary). */
  complete?(state: S, context: RunContext): void | Promise<void>;
  /** Saves state with each run checkpoint. */
  checkpoint?(state: S, context: RunContext): void | Promise<void>;
}

export interface AsyncFilterSpec<S = undefined> extends OperatorMeta, Stateful<S> {
  readonly concurrency?: number;
  test(sample: Sample, state: S, context: RunContext, signal: AbortSignal): Promise<Verdict>;
}

export interface MapSpec<S = undefined> extends OperatorMeta, Stateful<S> {
  map(sample: Sample, state: S, context: RunContext): Patch | DropVerdict;
  complete?(state: S, context: RunContext): void | Promise<void>;
  checkpoint?(state: S, context: RunContext): void | Promise<void>;
}

export interface AsyncMapSpec<S = undefined> extends OperatorMeta, Stateful<S> {
  readonly concurrency?: number;
  map(sample: Sample, state: S, context: RunContext, signal: AbortSignal): Promise<Patch | DropVerdict>;
}

export interface FanOutSpec<S = undefined> extends OperatorMeta, Stateful<S> {
  readonly concurrency?: number;
  expand(
    sample: Sample,
    state: S,
    context: RunContext,
    signal: AbortSignal,
  ): Iterable<Child | DropVerdict> | Promise<Iterable<Child | DropVerdict>>;
}

export interface TapSpec<S = undefined> extends OperatorMeta, Stateful<S> {
  observe(sample: Sample, state: S, context: RunContext): void;
  complete?(state: S, context: RunContext): void | Promise<void>;
  checkpoint?(state: S, context: RunContext): void | Promise<void>;
}

function initState<S>(spec: Stateful<S>): S {
  return (spec.state ? spec.state() : undefined) as S;
}

function lifecycle<S>(
  spec: { complete?(state: S, context: RunContext): void | Promise<void>; checkpoint?(state: S, context: RunContext): void | Promise<void> },
  state: S,
  context: RunContext,
): Pick<StageBody, "complete"> {
  if (spec.checkpoint) context.onCheckpoint(() => spec.checkpoint!(state, context));
  return { complete: spec.complete ? () => spec.complete!(state, context) : undefined };
}

function applyVerdict(tools: StageTools, sample: Sample, verdict: Verdict | boolean): void {
  if (verdict === true) {
    tools.emit(sample);
  } else if (verdict === false) {
    tools.reject(sample, { reason: "rejected" });
  } else if (verdict.keep) {
    tools.emit(verdict.scores ? withTicket({ ...sample, scores: { ...sample.scores, ...verdict.scores } }, ticketOf(sample)) : sample);
  } else {
    tools.reject(sample, verdict);
  }
}

/** One awaited answer at a time: the sample it is for, and the handlers `then` calls, made once per slot. */
interface AnswerSlot<T> {
  sample: Sample | undefined;
  done: () => void;
  readonly value: (answer: T) => void;
  readonly error: (error: unknown) => void;
}

/**
 * Hands each sample's awaited answer to `use` (unless the stage closed meanwhile) and an error to `fail`,
 * then calls `done`. The handlers given to `then` belong to reusable slots, one per answer awaited at
 * once (so at most the stage's concurrency), not two new closures per sample: this runs millions of times.
 */
function answerHandler<T>(tools: StageTools, use: (sample: Sample, answer: T) => void) {
  const free: AnswerSlot<T>[] = [];
  const newSlot = (): AnswerSlot<T> => {
    const slot: AnswerSlot<T> = {
      sample: undefined,
      done: () => {},
      value(answer) {
        const sample = slot.sample!;
        const done = slot.done;
        slot.sample = undefined;
        free.push(slot);
        if (!tools.closed()) use(sample, answer);
        done();
      },
      error(error) {
        const sample = slot.sample!;
        const done = slot.done;
        slot.sample = undefined;
        free.push(slot);
        if (!tools.closed()) tools.fail(sample, error);
        done();
      },
    };
    return slot;
  };
  return (sample: Sample, answer: Promise<T>, done: () => void): void => {
    const slot = free.pop() ?? newSlot();
    slot.sample = sample;
    slot.done = done;
    answer.then(slot.value, slot.error);
  };
}

/** A filter: keeps a sample or rejects it with a reason. Never drops silently. */
export function defineFilter<S = undefined>(spec: FilterSpec<S>): Operator {
  return defineStage(
    resolveMeta(spec),
    Infinity,
    (tools) => {
      const state = initState(spec);
      return {
        next: (sample) => applyVerdict(tools, sample, spec.test(sample, state, tools.context)),
        ...lifecycle(spec, state, tools.context),
      };
    },
    true,
  );
}

/** A filter whose decision is awaited (a judge, an executed test), at most `concurrency` at a time. */
export function defineAsyncFilter<S = undefined>(spec: AsyncFilterSpec<S>): Operator {
  return defineStage(resolveMeta(spec), spec.concurrency ?? 8, (tools) => {
    const state = initState(spec);
    const settle = answerHandler<Verdict>(tools, (sample, verdict) => applyVerdict(tools, sample, verdict));
    return {
      async: true,
      next(sample, signal, done) {
        settle(sample, spec.test(sample, state, tools.context, signal), done);
      },
    };
  });
}

/** A one-to-one change of a sample; stamps a step when it changes data or provenance. */
export function defineMap<S = undefined>(spec: MapSpec<S>): Operator {
  const meta = resolveMeta(spec);
  return defineStage(meta, Infinity, (tools) => {
    const state = initState(spec);
    return {
      next(sample) {
        const result = spec.map(sample, state, tools.context);
        if (isDrop(result)) applyVerdict(tools, sample, result);
        else tools.emit(applyPatch(sample, result, meta));
      },
      ...lifecycle(spec, state, tools.context),
    };
  }, true);
}

/** A one-to-one change that is awaited, at most `concurrency` at a time. */
export function defineAsyncMap<S = undefined>(spec: AsyncMapSpec<S>): Operator {
  const meta = resolveMeta(spec);
  return defineStage(meta, spec.concurrency ?? 8, (tools) => {
    const state = initState(spec);
    const settle = answerHandler<Patch | DropVerdict>(tools, (sample, result) => {
      if (isDrop(result)) applyVerdict(tools, sample, result);
      else tools.emit(applyPatch(sample, result, meta));
    });
    return {
      async: true,
      next(sample, signal, done) {
        settle(sample, spec.map(sample, state, tools.context, signal), done);
      },
    };
  });
}

/**
 * One sample in, several out (n completions, chunks, evolutions). Each child gets an id derived from the
 * parent id, the operator and its index, the parent in `parents`, and a step. A dropped child goes to
 * rejects under the id it would have had; a sample that yields nothing is rejected as `no_output`.
 */
export function defineFanOut<S = undefined>(spec: FanOutSpec<S>): Operator {
  const meta = resolveMeta(spec);
  return defineStage(meta, spec.concurrency ?? 8, (tools) => {
    const state = initState(spec);
    const placeOne = (sample: Sample, output: Child | DropVerdict, index: number) => {
      if (isDrop(output)) tools.reject(childOf(sample, { data: sample.data }, index, meta), output);
      else tools.emit(childOf(sample, output, index, meta));
    };
    /**
     * The first child takes over its parent's credit; each further one is emitted only once the budget has
     * room for it (the budget is a hard bound). Synchronous while credit is free, so the hot path never awaits.
     */
    const place = (sample: Sample, outputs: Iterable<Child | DropVerdict>, done: () => void): void => {
      const list = [...outputs];
      if (list.length === 0) {
        tools.reject(sample, { reason: "no_output" });
        done();
        return;
      }
      let index = 0;
      const ticket = ticketOf(sample);
      // Held until the last child is placed: the first ones may be committed before the later ones have credit.
      if (ticket && list.length > 1) ticket.ledger.hold(ticket);
      const placed = () => {
        if (ticket && list.length > 1) ticket.ledger.releaseHold(ticket);
        done();
      };
      const resume = (): void => {
        while (index < list.length) {
          if (tools.closed()) return done();
          if (index > 0) {
            const credit = tools.addPending(sample, 1);
            if (credit) {
              credit.then(() => {
                // Credit taken for a child never emitted leaves its root unfinished: redone on resume.
                if (tools.closed()) return done();
                placeOne(sample, list[index]!, index);
                index++;
                resume();
              }, done);
              return;
            }
          }
          placeOne(sample, list[index]!, index);
          index++;
        }
        placed();
      };
      resume();
    };
    return {
      async: true,
      next(sample, signal, done) {
        const outputs = spec.expand(sample, state, tools.context, signal);
        if (Symbol.iterator in outputs) {
          place(sample, outputs, done);
          return;
        }
        outputs.then(
          (list) => {
            if (!tools.closed()) place(sample, list, done);
            else done();
          },
          (error: unknown) => {
            if (!tools.closed()) tools.fail(sample, error);
            done();
          },
        );
      },
    };
  });
}

/** Watches samples pass without changing them (trackers, progress, custom metrics). */
export function defineTap<S = undefined>(spec: TapSpec<S>): Operator {
  return defineStage(resolveMeta(spec), Infinity, (tools) => {
    const state = initState(spec);
    return {
      next(sample) {
        spec.observe(sample, state, tools.context);
        tools.emit(sample);
      },
      ...lifecycle(spec, state, tools.context),
    };
  }, true);
}

/** Several operators as one, for graphs that want to offer a named building block. */
export function compose(name: string, operators: readonly Operator[]): Operator {
  const meta = resolveMeta({ name, params: operators.map((op) => op.meta.name) });
  const composed: OperatorFunction<Sample, Sample> = (source) =>
    operators.reduce<Observable<Sample>>((stream, op) => stream.pipe(op), source);
  return attachMeta(composed, meta);
}
