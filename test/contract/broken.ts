// Operators that break the contract on purpose, each with the violations the contract must find in it. The
// meta-test runs them through checkContract, the same checks the real operators pass, and expects exactly
// these violations: a check that cannot fail shows up here as a fixture it lets through.
//
// Some are made with the engine's helpers (what a user's buggy body can do through them); the rest are
// written by hand, as an operator that bypasses the helpers would be, with counters kept honestly so that
// only the one defect is there to find.
import { EMPTY, Observable, catchError, filter, map, type Subscriber, type TeardownLogic } from "rxjs";
import {
  countReason,
  currentRunContext,
  defineFanOut,
  defineFilter,
  defineMap,
  drop,
  errorMessage,
  stableHash,
  type Operator,
  type OperatorCounters,
  type RunContext,
  type Sample,
  type StepRecord,
} from "../../src/index.ts";
import { ALL_OUT, SHORT_ONLY, textSamples, type OperatorCase } from "./cases.ts";
import type { ViolationKind } from "./contract.ts";

export interface BrokenCase extends OperatorCase {
  /** What is wrong with it, as the meta-test's title says it. */
  readonly defect: string;
  /** Exactly the kinds of violation the contract finds in it. */
  readonly violations: readonly ViolationKind[];
}

const texts = () => textSamples();
const upper = (s: Sample) => ({ ...s.data, text: String(s.data.text).toUpperCase() });

interface HandTools {
  readonly context: RunContext;
  readonly counters: OperatorCounters;
  /** Counts and files a reject, as the helpers do. */
  reject(sample: Sample, reason: string, message?: string): void;
}

/** An operator written without the helpers; `subscribe` gets the source, the subscriber and the run's tools. */
function handWritten(name: string, subscribe: (source: Observable<Sample>, subscriber: Subscriber<Sample>, tools: HandTools) => TeardownLogic): Operator {
  const meta = { name, version: "1", paramsHash: stableHash(null) };
  const operator = (source: Observable<Sample>) =>
    new Observable<Sample>((subscriber) => {
      const context = currentRunContext(name);
      const counters = context.metrics.counters(name);
      const reject = (sample: Sample, reason: string, message?: string) => {
        countReason(counters, reason);
        context.reject(sample, { operator: name, reason, message });
      };
      return subscribe(source, subscriber, { context, counters, reject });
    });
  return Object.assign(operator, { meta });
}

/** A hand-written one-to-one operator: `each` returns the output, or a reason to reject; a throw is an `error` reject. */
function handMap(name: string, each: (sample: Sample, step: () => StepRecord) => Sample | string): Operator {
  const step = (): StepRecord => ({ op: name, version: "1", at: Date.now(), params: stableHash(null) });
  return handWritten(name, (source, subscriber, { counters, reject }) =>
    source.subscribe({
      next(sample) {
        counters.in++;
        let result: Sample | string;
        try {
          result = each(sample, step);
        } catch (error) {
          reject(sample, "error", errorMessage(error));
          return;
        }
        if (typeof result === "string") return reject(sample, result);
        counters.out++;
        subscriber.next(result);
      },
      error: (error) => subscriber.error(error),
      complete: () => subscriber.complete(),
    }),
  );
}

/** A real operator with something done to what it emits, under its own name (so its counters stand). */
function after(inner: Operator, project: (sample: Sample) => Sample): Operator {
  return Object.assign((source: Observable<Sample>) => source.pipe(inner, map(project)), { meta: inner.meta });
}

const halves = () =>
  defineFanOut({ name: "halves", expand: (s) => [{ data: { text: String(s.data.text).slice(0, 10) } }, { data: { text: String(s.data.text).slice(10) } }] });
const keepAll = () => defineFilter({ name: "keep_all", test: () => true });

/**
 * A stage that answers each sample 5 ms later, on a timer. Unless `clearTimers`, its teardown unsubscribes
 * upstream and forgets the timers, which then emit (or reject) for a subscriber that has left.
 */
function delayedVerdicts(name: string, verdict: (sample: Sample) => true | string, clearTimers = false): Operator {
  return handWritten(name, (source, subscriber, { counters, reject }) => {
    const timers = new Set<NodeJS.Timeout>();
    let pending = 0;
    let inputDone = false;
    const finish = () => {
      if (inputDone && pending === 0) subscriber.complete();
    };
    const subscription = source.subscribe({
      next(sample) {
        counters.in++;
        pending++;
        const timer = setTimeout(() => {
          timers.delete(timer);
          const result = verdict(sample);
          if (result === true) {
            counters.out++;
            subscriber.next(sample);
          } else {
            reject(sample, result);
          }
          pending--;
          finish();
        }, 5);
        timers.add(timer);
      },
      error: (error) => subscriber.error(error),
      complete() {
        inputDone = true;
        finish();
      },
    });
    return () => {
      subscription.unsubscribe();
      if (clearTimers) for (const timer of timers) clearTimeout(timer);
    };
  });
}

const lengthVerdict = (s: Sample): true | string => (String(s.data.text).length < 100 ? true : "too_long");

export const brokenCases: BrokenCase[] = [
  {
    name: "always_throws",
    defect: "throws on every sample",
    make: () =>
      defineMap({
        name: "always_throws",
        map: () => {
          throw new Error("boom");
        },
      }),
    samples: texts,
    expect: ALL_OUT,
    violations: ["error_reject", "unexpected_outcome"],
  },
  {
    name: "fails_the_run",
    defect: "fails the run as soon as it is subscribed",
    make: () => handWritten("fails_the_run", (_source, subscriber) => subscriber.error(new Error("boom"))),
    samples: texts,
    expect: ALL_OUT,
    violations: ["crashed", "malformed_crash", "upstream_error_lost"],
  },
  {
    name: "rejects_all",
    defect: "rejects every sample with a tidy reason",
    make: () => defineFilter({ name: "rejects_all", test: () => drop("not_today") }),
    samples: texts,
    expect: ALL_OUT,
    violations: ["unexpected_outcome"],
  },
  {
    name: "mutates_data",
    defect: "writes into the input's data",
    make: () =>
      defineFilter({
        name: "mutates_data",
        test: (s) => {
          (s.data as Record<string, unknown>).seen = true;
          return true;
        },
      }),
    samples: texts,
    expect: ALL_OUT,
    // The kept sample is the input object, so its data changed and no step says so.
    violations: ["mutated_input", "unstamped_change"],
  },
  {
    name: "mutates_scores",
    defect: "writes a score into the input's scores",
    make: () =>
      defineFilter({
        name: "mutates_scores",
        test: (s) => {
          (s.scores as Record<string, number>).seen = 1;
          return true;
        },
      }),
    samples: texts,
    expect: ALL_OUT,
    violations: ["mutated_input"],
  },
  {
    name: "mutates_provenance",
    defect: "bumps the input's depth in place",
    make: () =>
      defineFilter({
        name: "mutates_provenance",
        test: (s) => {
          (s.provenance as { depth: number }).depth += 1;
          return true;
        },
      }),
    samples: texts,
    expect: ALL_OUT,
    violations: ["mutated_input", "wrong_lineage"],
  },
  {
    name: "pushes_step",
    defect: "stamps its step by pushing onto the input's steps array",
    make: () =>
      handMap("pushes_step", (s, step) => {
        (s.provenance.steps as StepRecord[]).push(step());
        return { ...s, data: upper(s), provenance: { ...s.provenance } };
      }),
    samples: texts,
    expect: ALL_OUT,
    // The output's steps look right; only the input shows the damage.
    violations: ["mutated_input"],
  },
  {
    name: "late_emitter",
    defect: "emits on timers it does not clear at teardown",
    make: () => delayedVerdicts("late_emitter", () => true),
    samples: texts,
    expect: ALL_OUT,
    violations: ["late_emission", "late_work"],
  },
  {
    name: "late_rejecter",
    defect: "emits and rejects on timers it does not clear at teardown",
    make: () => delayedVerdicts("late_rejecter", lengthVerdict),
    samples: texts,
    expect: SHORT_ONLY,
    violations: ["late_emission", "late_reject", "late_work"],
  },
  {
    name: "keeps_upstream",
    defect: "does not unsubscribe upstream at teardown",
    make: () =>
      handWritten("keeps_upstream", (source, subscriber, { counters }) => {
        source.subscribe({
          next(sample) {
            counters.in++;
            counters.out++;
            subscriber.next(sample);
          },
          error: (error) => subscriber.error(error),
          complete: () => subscriber.complete(),
        });
      }),
    samples: texts,
    expect: ALL_OUT,
    violations: ["upstream_kept"],
  },
  {
    name: "drops_silently",
    defect: "drops a sample without rejecting it, counters honest",
    make: () =>
      handWritten("drops_silently", (source, subscriber, { counters }) =>
        source.subscribe({
          next(sample) {
            counters.in++;
            if (sample.id === "c1") return;
            counters.out++;
            subscriber.next(sample);
          },
          error: (error) => subscriber.error(error),
          complete: () => subscriber.complete(),
        }),
      ),
    samples: texts,
    expect: ALL_OUT,
    violations: ["vanished_input", "unexpected_outcome"],
  },
  {
    name: "drops_behind_helper",
    defect: "drops a sample after a real filter kept it",
    make: () => {
      const inner = keepAll();
      return Object.assign((source: Observable<Sample>) => source.pipe(inner, filter((s) => s.id !== "c1")), { meta: inner.meta });
    },
    samples: texts,
    expect: ALL_OUT,
    violations: ["counters_mismatch", "vanished_input", "unexpected_outcome"],
  },
  {
    name: "emits_twice",
    defect: "emits every sample twice",
    make: () =>
      handWritten("emits_twice", (source, subscriber, { counters }) =>
        source.subscribe({
          next(sample) {
            counters.in++;
            counters.out += 2;
            subscriber.next(sample);
            subscriber.next(sample);
          },
          error: (error) => subscriber.error(error),
          complete: () => subscriber.complete(),
        }),
      ),
    samples: texts,
    expect: ALL_OUT,
    violations: ["duplicate_id"],
  },
  {
    name: "unstamped_map",
    defect: "changes data without a step",
    make: () => handMap("unstamped_map", (s) => ({ ...s, data: upper(s) })),
    samples: texts,
    expect: ALL_OUT,
    violations: ["unstamped_change"],
  },
  {
    name: "misnamed_step",
    defect: "stamps its change under another operator's name",
    make: () =>
      handMap("misnamed_step", (s, step) => ({
        ...s,
        data: upper(s),
        provenance: { ...s.provenance, steps: [...s.provenance.steps, { ...step(), op: "someone_else" }] },
      })),
    samples: texts,
    expect: ALL_OUT,
    violations: ["wrong_step"],
  },
  {
    name: "child_with_stranger",
    defect: "gives children a parent that is not their input",
    make: () => after(halves(), (s) => ({ ...s, provenance: { ...s.provenance, parents: [...s.provenance.parents, "stranger"] } })),
    samples: texts,
    expect: ALL_OUT,
    fanOut: true,
    violations: ["wrong_lineage"],
  },
  {
    name: "orphan_children",
    defect: "emits children without parents",
    make: () => after(halves(), (s) => ({ ...s, provenance: { ...s.provenance, parents: [] } })),
    samples: texts,
    expect: ALL_OUT,
    fanOut: true,
    violations: ["unknown_output", "vanished_input", "unexpected_outcome", "wrong_lineage"],
  },
  {
    name: "children_at_parent_depth",
    defect: "emits new-generation children at their parent's depth",
    make: () => after(halves(), (s) => ({ ...s, provenance: { ...s.provenance, depth: s.provenance.depth - 1 } })),
    samples: texts,
    expect: ALL_OUT,
    fanOut: true,
    violations: ["wrong_lineage"],
  },
  {
    name: "children_without_step",
    defect: "emits children without the step that made them",
    make: () => after(halves(), (s) => ({ ...s, provenance: { ...s.provenance, steps: s.provenance.steps.slice(0, -1) } })),
    samples: texts,
    expect: ALL_OUT,
    fanOut: true,
    violations: ["wrong_step"],
  },
  {
    name: "swallows_errors",
    defect: "turns an upstream error into a normal completion",
    make: () => {
      const inner = keepAll();
      return Object.assign((source: Observable<Sample>) => source.pipe(inner, catchError(() => EMPTY)), { meta: inner.meta });
    },
    samples: texts,
    expect: ALL_OUT,
    violations: ["upstream_error_lost"],
  },
];

/** Hand-written operators that keep the contract: the broken ones' defects are theirs, not their scaffolding's. */
export const soundCases: BrokenCase[] = [
  {
    name: "stamped_map",
    defect: "a hand-written map that stamps its step on a copy",
    make: () =>
      handMap("stamped_map", (s, step) => ({ ...s, data: upper(s), provenance: { ...s.provenance, steps: [...s.provenance.steps, step()] } })),
    samples: texts,
    expect: ALL_OUT,
    violations: [],
  },
  {
    name: "delayed_filter",
    defect: "a hand-written filter on timers it clears at teardown",
    make: () => delayedVerdicts("delayed_filter", lengthVerdict, true),
    samples: texts,
    expect: SHORT_ONLY,
    violations: [],
  },
  {
    name: "keep_all",
    defect: "the real filter the errors-swallowing and dropping ones wrap",
    make: keepAll,
    samples: texts,
    expect: ALL_OUT,
    violations: [],
  },
  {
    name: "halves",
    defect: "the real fan-out the lineage-breaking ones wrap",
    make: halves,
    samples: texts,
    expect: ALL_OUT,
    fanOut: true,
    violations: [],
  },
];
