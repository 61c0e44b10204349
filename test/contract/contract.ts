// The contract every operator keeps, written as checks that return violations instead of asserting, so the
// suite runs deliberately broken operators (broken.ts) through the very same checks and sees them rejected.
//
// What is checked, over a case's valid inputs (cases.ts says what each must become):
//   - the run completes; no valid input is rejected with `error`; each is kept or rejected as declared;
//   - the inputs are exactly as they were (compared with copies taken before the run, not frozen: a frozen
//     input would turn a mutation into an `error` reject and hide what went wrong);
//   - every input is accounted for (output, rejected, or parent of one), one-to-one operators keep ids and
//     emit each input once, the operator's counters agree with what came out;
//   - what changed carries one new step naming the operator, lineage (parents, depth, source) is right;
//   - malformed inputs become outputs or rejects with snake_case reasons, never a crash;
//   - an upstream error reaches downstream;
//   - after its subscriber leaves, the operator unsubscribes upstream and emits, rejects and counts nothing.
//     RxJS ignores next() on a closed subscriber, so the check subscribes with its own Subscriber, whose
//     next() sees every call before that closed check; rejects and counters are watched on the side.
import { isDeepStrictEqual } from "node:util";
import { Subject, Subscriber, concat, from, lastValueFrom, throwError, toArray, type Observable } from "rxjs";
import {
  ConfigError,
  collect,
  createSample,
  memoryRunContext,
  withRunContext,
  type Metrics,
  type Operator,
  type Rejection,
  type RunContext,
  type Sample,
  type StepRecord,
} from "../../src/index.ts";
import type { OperatorCase } from "./cases.ts";

export type ViolationKind =
  /** The operator could not be built, or its run failed, over valid inputs. */
  | "crashed"
  /** A run did not finish within RUN_LIMIT_MS. */
  | "never_completed"
  /** A valid input was rejected with reason `error`. */
  | "error_reject"
  /** A valid input was kept or rejected other than its case declares. */
  | "unexpected_outcome"
  | "mutated_input"
  /** The operator's in/out/rejected counters disagree with what came out. */
  | "counters_mismatch"
  /** An input that is neither output, rejected, nor parent of an output or reject. */
  | "vanished_input"
  /** The same id came out more than once. */
  | "duplicate_id"
  /** An output or reject that traces to no input (or, one-to-one, does not keep its input's id). */
  | "unknown_output"
  /** Data, origin or source changed without a step. */
  | "unstamped_change"
  /** Steps are not the input's steps plus at most one record of this operator (name, version, params). */
  | "wrong_step"
  /** Parents, depth or source are not what the input's lineage makes them. */
  | "wrong_lineage"
  /** A reject reason that is not snake_case, or a reject filed under another operator's name. */
  | "bad_reason"
  /** A malformed input crashed the run (a missing field may fail it with a ConfigError, nothing else). */
  | "malformed_crash"
  /** An upstream error did not reach downstream as that error. */
  | "upstream_error_lost"
  /** Upstream still subscribed after the subscriber left. */
  | "upstream_kept"
  | "late_emission"
  | "late_reject"
  /** The operator's counters moved after its subscriber left. */
  | "late_work";

export interface Violation {
  readonly kind: ViolationKind;
  readonly detail: string;
}

const SNAKE_CASE = /^[a-z][a-z0-9_]*$/;
/** Longest a contract run may take; the slowest real case (a sandbox) takes well under a second per input. */
export const RUN_LIMIT_MS = 15_000;
/** How long the teardown check watches for late work; async work in the cases settles within a few ms. */
export const SETTLE_MS = 100;

const violation = (kind: ViolationKind, detail: string): Violation => ({ kind, detail });
const message = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

class Timeout extends Error {}
async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout(`no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** A deep copy of a sample's string-keyed content (the runner's symbol-keyed ticket is not content). */
const snapshot = (sample: Sample): Sample => structuredClone(sample);

type Counts = { in: number; out: number; rejected: number };
function countsOf(metrics: Metrics, name: string): Counts | undefined {
  const counters = metrics.snapshot().operators.find((op) => op.name === name);
  return counters && { in: counters.in, out: counters.out, rejected: counters.rejected };
}

/** What one run over a case's valid inputs produced, for the run checks below. */
export interface Observation {
  readonly operator?: Operator;
  /** The objects the operator was given, as they are after the run. */
  readonly inputs: readonly Sample[];
  /** Copies of the inputs taken before the run: the truth outputs are compared with. */
  readonly before: readonly Sample[];
  readonly out: readonly Sample[];
  readonly rejects: readonly Rejection[];
  readonly counts?: Counts;
  /** Set when there was no run to check: the operator could not be built, or its run failed or hung. */
  readonly failure?: Violation;
}

export async function observe(c: OperatorCase): Promise<Observation> {
  const inputs = c.samples();
  const before = inputs.map(snapshot);
  const empty = { inputs, before, out: [], rejects: [] };
  let operator: Operator;
  try {
    operator = c.make();
  } catch (error) {
    return { ...empty, failure: violation("crashed", `could not be built: ${message(error)}`) };
  }
  try {
    const { out, rejects, metrics } = await within(RUN_LIMIT_MS, collect(operator, inputs));
    return { operator, inputs, before, out, rejects, counts: countsOf(metrics, operator.meta.name) };
  } catch (error) {
    const kind = error instanceof Timeout ? "never_completed" : "crashed";
    return { ...empty, operator, failure: violation(kind, `run over valid inputs: ${message(error)}`) };
  }
}

/** The ids among `ids` a sample derives from: its own id, else its parents. */
function tracedTo(sample: Sample, ids: ReadonlySet<string>): string[] {
  if (ids.has(sample.id)) return [sample.id];
  return sample.provenance.parents.filter((parent) => ids.has(parent));
}

const PARTS = ["data", "scores", "provenance.origin", "provenance.source", "provenance.parents", "provenance.depth", "provenance.steps"] as const;
function part(sample: Sample, path: (typeof PARTS)[number]): unknown {
  return path.split(".").reduce<unknown>((value, key) => (value as Record<string, unknown>)[key], sample);
}

export function checkNotMutated(obs: Observation): Violation[] {
  return obs.inputs.flatMap((input, i) => {
    const before = obs.before[i]!;
    if (isDeepStrictEqual(snapshot(input), before)) return [];
    const changed = PARTS.filter((path) => !isDeepStrictEqual(structuredClone(part(input, path)), part(before, path)));
    return [violation("mutated_input", `${before.id}: ${changed.join(", ") || "the sample"} changed in place`)];
  });
}

export function checkAccounting(c: OperatorCase, obs: Observation): Violation[] {
  const found: Violation[] = [];
  const name = obs.operator!.meta.name;
  if (!obs.counts) {
    found.push(violation("counters_mismatch", `no counters under "${name}"`));
  } else {
    const seen = { in: obs.inputs.length, out: obs.out.length, rejected: obs.rejects.length };
    if (!isDeepStrictEqual(obs.counts, seen)) found.push(violation("counters_mismatch", `counters ${JSON.stringify(obs.counts)}, observed ${JSON.stringify(seen)}`));
  }
  const ids = new Set(obs.before.map((s) => s.id));
  const results = [...obs.out, ...obs.rejects.map((r) => r.sample)];
  const times = new Map<string, number>();
  const accounted = new Set<string>();
  for (const sample of results) {
    times.set(sample.id, (times.get(sample.id) ?? 0) + 1);
    const origins = c.fanOut ? tracedTo(sample, ids) : ids.has(sample.id) ? [sample.id] : [];
    if (origins.length === 0) found.push(violation("unknown_output", `${sample.id} (parents ${JSON.stringify(sample.provenance.parents)}) traces to no input`));
    for (const id of origins) accounted.add(id);
  }
  for (const [id, n] of times) if (n > 1) found.push(violation("duplicate_id", `${id} came out ${n} times`));
  for (const id of ids) if (!accounted.has(id)) found.push(violation("vanished_input", `${id} is neither output, rejected, nor parent of one`));
  return found;
}

/** What became of one input: "out", its reject reasons, both joined by "+", or "nothing". */
function outcomeOf(id: string, obs: Observation): string {
  const ids = new Set([id]);
  const kept = obs.out.some((s) => tracedTo(s, ids).length > 0);
  const reasons = [...new Set(obs.rejects.filter((r) => tracedTo(r.sample, ids).length > 0).map((r) => r.reason))].sort();
  return [...(kept ? ["out"] : []), ...reasons].join("+") || "nothing";
}

export function checkOutcomes(c: OperatorCase, obs: Observation): Violation[] {
  const found: Violation[] = [];
  for (const { id } of obs.before) {
    const outcome = outcomeOf(id, obs);
    if (outcome !== c.expect[id]) found.push(violation("unexpected_outcome", `${id}: expected ${c.expect[id] ?? "(undeclared)"}, got ${outcome}`));
  }
  const ids = new Set(obs.before.map((s) => s.id));
  for (const reject of obs.rejects) {
    if (reject.reason === "error") found.push(violation("error_reject", `${tracedTo(reject.sample, ids).join(",") || reject.sample.id}: ${reject.message ?? "(no message)"}`));
  }
  return found;
}

export function checkReasons(rejects: readonly Rejection[], operatorName: string): Violation[] {
  return rejects.flatMap((r) => [
    ...(SNAKE_CASE.test(r.reason) ? [] : [violation("bad_reason", `${r.sample.id}: reason "${r.reason}" is not snake_case`)]),
    ...(r.operator === operatorName ? [] : [violation("bad_reason", `${r.sample.id}: rejected under "${r.operator}", not "${operatorName}"`)]),
  ]);
}

export function checkProvenance(c: OperatorCase, obs: Observation): Violation[] {
  const meta = obs.operator!.meta;
  const ownStep = (step: StepRecord | undefined) =>
    step !== undefined && step.op === meta.name && step.version === meta.version && step.params === meta.paramsHash && Number.isFinite(step.at);
  const ops = (steps: readonly StepRecord[]) => `[${steps.map((s) => s.op).join(",")}]`;
  /** "same" (no step added), "stamped" (one own step added), or a description of what is wrong. */
  const stepsAfter = (input: Sample, sample: Sample): "same" | "stamped" | string => {
    const was = input.provenance.steps;
    const now = sample.provenance.steps;
    if (isDeepStrictEqual(structuredClone(now), was)) return "same";
    if (now.length === was.length + 1 && isDeepStrictEqual(structuredClone(now.slice(0, -1)), was) && ownStep(now.at(-1))) return "stamped";
    return `steps ${ops(now)} (last ${JSON.stringify(now.at(-1))}) after ${ops(was)}; expected one "${meta.name}" v${meta.version} step`;
  };
  const byId = new Map(obs.before.map((s) => [s.id, s]));
  const found: Violation[] = [];
  for (const sample of obs.out) {
    const p = sample.provenance;
    const input = byId.get(sample.id);
    if (input) {
      const q = input.provenance;
      if (!isDeepStrictEqual([...p.parents], q.parents) || p.depth !== q.depth) {
        found.push(violation("wrong_lineage", `${sample.id}: parents ${JSON.stringify(p.parents)} depth ${p.depth}, was ${JSON.stringify(q.parents)} depth ${q.depth}`));
      }
      const steps = stepsAfter(input, sample);
      if (steps === "same") {
        const changed = [
          ...(isDeepStrictEqual(structuredClone(sample.data), input.data) ? [] : ["data"]),
          ...(p.origin === q.origin ? [] : ["origin"]),
          ...(p.source === q.source ? [] : ["source"]),
        ];
        if (changed.length > 0) found.push(violation("unstamped_change", `${sample.id}: ${changed.join(", ")} changed without a step`));
      } else if (steps !== "stamped") {
        found.push(violation("wrong_step", `${sample.id}: ${steps}`));
      }
    } else if (c.fanOut) {
      const parent = p.parents.length === 1 ? byId.get(p.parents[0]!) : undefined;
      if (!parent) {
        found.push(violation("wrong_lineage", `${sample.id}: parents ${JSON.stringify(p.parents)}, expected exactly one input`));
        continue;
      }
      const depth = c.generation === "same" ? parent.provenance.depth : parent.provenance.depth + 1;
      if (p.depth !== depth || p.source !== parent.provenance.source) {
        found.push(violation("wrong_lineage", `${sample.id}: depth ${p.depth} source ${p.source}, expected depth ${depth} source ${parent.provenance.source}`));
      }
      const steps = stepsAfter(parent, sample);
      if (steps !== "stamped") found.push(violation("wrong_step", `${sample.id}: ${steps === "same" ? "no step of its own" : steps}`));
    }
    // An output that is neither an input nor (for a fan-out) a child of one is reported by checkAccounting.
  }
  return found;
}

/** The checks on one run over valid inputs; a failed run is the only violation it has. */
export function checkRun(c: OperatorCase, obs: Observation): Violation[] {
  if (obs.failure) return [obs.failure];
  return [
    ...checkNotMutated(obs),
    ...checkAccounting(c, obs),
    ...checkOutcomes(c, obs),
    ...checkReasons(obs.rejects, obs.operator!.meta.name),
    ...checkProvenance(c, obs),
  ];
}

/** Values of the wrong type for fields an operator reads as text. */
const WRONG_TYPES: readonly unknown[] = [42, null, ["x"], {}, true, 7.5];

/**
 * Malformed inputs, after one valid one: the valid inputs' fields holding values of the wrong type must
 * become outputs or rejects with snake_case reasons; a sample with no fields may do the same, or fail the
 * run with a ConfigError (a field the operator declares it reads is missing: the graph's mistake).
 */
export async function checkMalformed(c: OperatorCase): Promise<Violation[]> {
  const [valid] = c.samples();
  const fields = Object.keys(valid!.data);
  const wrongTypes = createSample({
    id: "malformed-types",
    source: "contract",
    data: Object.fromEntries(fields.map((field, i) => [field, WRONG_TYPES[i % WRONG_TYPES.length]])),
  });
  const noFields = createSample({ id: "malformed-empty", source: "contract", data: {} });
  const found: Violation[] = [];
  for (const malformed of [wrongTypes, noFields]) {
    let operator: Operator;
    try {
      operator = c.make();
    } catch (error) {
      return [violation("crashed", `could not be built: ${message(error)}`)];
    }
    try {
      const { out, rejects } = await within(RUN_LIMIT_MS, collect(operator, [valid!, malformed]));
      const ids = new Set([malformed.id]);
      if (![...out, ...rejects.map((r) => r.sample)].some((s) => tracedTo(s, ids).length > 0)) {
        found.push(violation("vanished_input", `${malformed.id} is neither output, rejected, nor parent of one`));
      }
      found.push(...checkReasons(rejects, operator.meta.name));
    } catch (error) {
      if (malformed === noFields && error instanceof ConfigError) continue;
      found.push(violation(error instanceof Timeout ? "never_completed" : "malformed_crash", `${malformed.id}: ${message(error)}`));
    }
  }
  return found;
}

/** An error from upstream, after one valid input, must reach downstream as that very error. */
export async function checkUpstreamError(c: OperatorCase): Promise<Violation[]> {
  const [valid] = c.samples();
  const upstream = new Error("upstream failed");
  let operator: Operator;
  try {
    operator = c.make();
  } catch (error) {
    return [violation("crashed", `could not be built: ${message(error)}`)];
  }
  const input: Observable<Sample> = concat(from([valid!]), throwError(() => upstream));
  try {
    const done = withRunContext(memoryRunContext(), () => lastValueFrom(input.pipe(operator, toArray())));
    await within(RUN_LIMIT_MS, done);
    return [violation("upstream_error_lost", "completed normally after an upstream error")];
  } catch (error) {
    if (error === upstream) return [];
    return [violation("upstream_error_lost", `failed with ${message(error)} instead of the upstream error`)];
  }
}

/** A Subscriber that sees next() before RxJS's own closed check drops it. */
class WatchingSubscriber extends Subscriber<Sample> {
  lateNexts = 0;
  constructor() {
    super({ next: () => {}, error: () => {}, complete: () => {} });
  }
  override next(sample: Sample): void {
    if (this.closed) this.lateNexts++;
    super.next(sample);
  }
}

/** All valid inputs in, then the subscriber leaves while async work is in flight; nothing may follow. */
export async function checkTeardown(c: OperatorCase): Promise<Violation[]> {
  let operator: Operator;
  try {
    operator = c.make();
  } catch (error) {
    return [violation("crashed", `could not be built: ${message(error)}`)];
  }
  const memory = memoryRunContext();
  let tornDown = false;
  let lateRejects = 0;
  const context: RunContext = {
    ...memory,
    reject(sample, info) {
      if (tornDown) lateRejects++;
      memory.reject(sample, info);
    },
  };
  const input = new Subject<Sample>();
  const watcher = new WatchingSubscriber();
  try {
    withRunContext(context, () => input.pipe(operator).subscribe(watcher));
    for (const sample of c.samples()) input.next(sample);
  } catch (error) {
    return [violation("crashed", `subscribing or feeding: ${message(error)}`)];
  }
  const countsAtTeardown = countsOf(context.metrics, operator.meta.name);
  watcher.unsubscribe();
  tornDown = true;
  const found: Violation[] = [];
  if (input.observed) found.push(violation("upstream_kept", "upstream is still subscribed after the subscriber left"));
  await sleep(SETTLE_MS);
  if (watcher.lateNexts > 0) found.push(violation("late_emission", `${watcher.lateNexts} next() after the subscriber left`));
  if (lateRejects > 0) found.push(violation("late_reject", `${lateRejects} reject(s) after the subscriber left`));
  const countsAfter = countsOf(context.metrics, operator.meta.name);
  if (!isDeepStrictEqual(countsAfter, countsAtTeardown)) {
    found.push(violation("late_work", `counters ${JSON.stringify(countsAtTeardown)} at teardown, ${JSON.stringify(countsAfter)} after`));
  }
  return found;
}

/** The whole contract for one case: every violation found, none for an operator that keeps it. */
export async function checkContract(c: OperatorCase): Promise<Violation[]> {
  const obs = await observe(c);
  return [...checkRun(c, obs), ...(await checkMalformed(c)), ...(await checkUpstreamError(c)), ...(await checkTeardown(c))];
}

/** Problems with a case itself: inputs without a declared outcome, nothing kept, `error` declared. */
export function checkCase(c: OperatorCase): string[] {
  const ids = c.samples().map((s) => s.id);
  const declared = Object.keys(c.expect);
  return [
    ...ids.filter((id) => !(id in c.expect)).map((id) => `${id} has no declared outcome`),
    ...declared.filter((id) => !ids.includes(id)).map((id) => `${id} is declared but not an input`),
    ...(Object.values(c.expect).includes("out") ? [] : ["no input is expected to be kept"]),
    ...declared.filter((id) => c.expect[id] === "error").map((id) => `${id} is expected to be rejected with "error"`),
    ...(new Set(ids).size === ids.length ? [] : ["input ids repeat"]),
  ];
}
