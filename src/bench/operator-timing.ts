import { Observable } from "rxjs";
import { currentRunContext } from "../context.ts";
import type { BuiltGraph } from "../graph.ts";
import type { OperatorCounters } from "../metrics.ts";
import type { Operator } from "../operator.ts";
import type { Sample } from "../sample.ts";
import { stageOperator, syncStageOf, type StageSetup, type StageTools } from "../stage.ts";

/**
 * Where one operator's time went. `sync` operators (map, filter, tap) run inside the event loop's turn:
 * their time is the CPU of their own body, downstream excluded. `async` ones hold samples while they wait
 * (an LLM answer, a sandbox): their time is how long they held them. `other` (compose(), raw RxJS) is
 * counted by the engine only.
 */
export interface OperatorTiming {
  readonly name: string;
  readonly kind: "sync" | "async" | "other";
  /** sync: seconds in its body; async: wall seconds with at least one sample in flight. */
  readonly busyS: number;
  /** async: sample-seconds in flight, i.e. the mean number in flight times the run's length. */
  readonly inFlightS: number;
  /** async: sample-seconds queued in front of it because its slots were full. */
  readonly queuedS: number;
}

/** One operator's running figures; async ones integrate their counts over time at each change. */
class Slot {
  busy = 0;
  inFlightArea = 0;
  queuedArea = 0;
  private inFlight = 0;
  private arrived = 0;
  private started = 0;
  private last = performance.now();
  constructor(
    readonly name: string,
    readonly kind: OperatorTiming["kind"],
  ) {}

  private advance(now: number): void {
    const dt = now - this.last;
    if (this.inFlight > 0) this.busy += dt;
    this.inFlightArea += this.inFlight * dt;
    this.queuedArea += Math.max(0, this.arrived - this.started) * dt;
    this.last = now;
  }

  arrive(): void {
    this.advance(performance.now());
    this.arrived++;
  }

  /** The stage set its in-flight count: up when a sample starts, down when one settles. */
  setInFlight(value: number): void {
    this.advance(performance.now());
    if (value > this.inFlight) this.started += value - this.inFlight;
    this.inFlight = value;
  }

  timing(now: number): OperatorTiming {
    if (this.kind === "async") this.advance(now);
    // A wrapped operator whose count in flight never moved is not a stage under its own name (compose(), raw RxJS):
    // Its arrivals never start anything under its name, so they would read as an endless queue.
    if (this.kind === "async" && this.started === 0) return { name: this.name, kind: "other", busyS: 0, inFlightS: 0, queuedS: 0 };
    const s = (ms: number) => ms / 1_000;
    return { name: this.name, kind: this.kind, busyS: s(this.busy), inFlightS: s(this.inFlightArea), queuedS: s(this.queuedArea) };
  }
}

/**
 * Charges elapsed time to the synchronous stage whose body is running. A sync stage's `emit` runs the
 * stages after it (and the sink) inside its own call, so the clock leaves the stage for the length of it.
 */
class Clock {
  private current: Slot | undefined;
  private mark = 0;

  switchTo(slot: Slot | undefined): Slot | undefined {
    const now = performance.now();
    if (this.current) this.current.busy += now - this.mark;
    this.mark = now;
    const previous = this.current;
    this.current = slot;
    return previous;
  }
}

function timedSync(setup: StageSetup, slot: Slot, clock: Clock): StageSetup {
  return (tools) => {
    const away = <A extends unknown[]>(fn: (...args: A) => void) => (...args: A) => {
      const back = clock.switchTo(undefined);
      try {
        fn(...args);
      } finally {
        clock.switchTo(back);
      }
    };
    const timedTools: StageTools = {
      ...tools,
      emit: away((sample: Sample) => tools.emit(sample)),
      reject: away((sample: Sample, verdict: Parameters<StageTools["reject"]>[1]) => tools.reject(sample, verdict)),
      fail: away((sample: Sample, error: unknown) => tools.fail(sample, error)),
    };
    const body = setup(timedTools);
    return {
      ...body,
      next(sample, signal, done) {
        const back = clock.switchTo(slot);
        try {
          body.next(sample, signal, done);
        } finally {
          clock.switchTo(back);
        }
      },
    };
  };
}

/**
 * An async stage counts its samples in flight on its counters (src/stage.ts); an accessor there sees every
 * change as it happens, so the figures are exact, not sampled, and nothing in the engine changes for it.
 */
function watchInFlight(counters: OperatorCounters, slot: Slot, watched: WeakSet<OperatorCounters>): void {
  if (watched.has(counters)) return;
  watched.add(counters);
  let value = counters.inFlight;
  slot.setInFlight(value);
  Object.defineProperty(counters, "inFlight", {
    configurable: true,
    enumerable: true,
    get: () => value,
    set: (next: number) => {
      value = next;
      slot.setInFlight(next);
    },
  });
}

function timedAsync(operator: Operator, slot: Slot): Operator {
  const watched = new WeakSet<OperatorCounters>();
  const timed = (source: Observable<Sample>) =>
    new Observable<Sample>((subscriber) => {
      // Subscribed inside the run, before the stage itself opens: its counters are the ones the stage will bump.
      watchInFlight(currentRunContext(operator.meta.name).metrics.counters(operator.meta.name), slot, watched);
      const arrivals = new Observable<Sample>((inner) =>
        source.subscribe({
          next: (sample) => {
            slot.arrive();
            inner.next(sample);
          },
          error: (error: unknown) => inner.error(error),
          complete: () => inner.complete(),
        }),
      );
      return operator(arrivals).subscribe(subscriber);
    });
  return Object.assign(timed, { meta: operator.meta }) as Operator;
}

/**
 * The graph with each operator measured: sync stages are rebuilt from their own definition with a timed
 * body (still synchronous, so the runner fuses them as before); the rest are wrapped. The cost is a few
 * `performance.now()` calls per sample and stage: invisible beside an LLM call, a few percent of a pure
 * CPU graph's throughput.
 */
export function timeOperators(graph: BuiltGraph): { graph: BuiltGraph; timings(): OperatorTiming[] } {
  const clock = new Clock();
  const slots: Slot[] = [];
  const operators = graph.operators.map((operator): Operator => {
    const stage = syncStageOf(operator);
    const slot = new Slot(operator.meta.name, stage ? "sync" : "async");
    slots.push(slot);
    if (stage) return Object.assign(stageOperator(stage.meta, Infinity, timedSync(stage.setup, slot, clock), true), { meta: operator.meta }) as Operator;
    return timedAsync(operator, slot);
  });
  return {
    graph: { ...graph, operators },
    timings: () => {
      const now = performance.now();
      return slots.map((slot) => slot.timing(now));
    },
  };
}
