import { config, Observable, type OperatorFunction } from "rxjs";
import type { Sample } from "../sample.ts";
import { openStage, syncStageOf, type OpenStage, type StageOutput, type SyncStage } from "../stage.ts";

/**
 * The graph's operators with each run of consecutive synchronous stages (defineMap, defineFilter,
 * defineTap) replaced by one operator that passes a sample through the run by direct calls: one RxJS
 * subscriber hop per run instead of one per stage, a hop being most of what such a stage costs. Every
 * other operator (async stages, fan-outs, compose(), raw RxJS) is kept as it is, in its place.
 */
export function fuseOperators(operators: readonly OperatorFunction<Sample, Sample>[]): OperatorFunction<Sample, Sample>[] {
  const fused: OperatorFunction<Sample, Sample>[] = [];
  let run: SyncStage[] = [];
  let runOperators: OperatorFunction<Sample, Sample>[] = [];
  const closeRun = () => {
    if (run.length === 1) fused.push(runOperators[0]!);
    else if (run.length > 1) fused.push(fusedStages(run));
    run = [];
    runOperators = [];
  };
  for (const operator of operators) {
    const stage = syncStageOf(operator);
    if (stage) {
      run.push(stage);
      runOperators.push(operator);
    } else {
      closeRun();
      fused.push(operator);
    }
  }
  closeRun();
  return fused;
}

/**
 * Synchronous stages as one operator, behaving as the same stages piped one by one: they are set up last
 * first (as RxJS subscribes a chain), an error from any of them goes straight to the subscriber (the stages
 * after it would only have passed it on), each completes after the one before it, and their cleanups run
 * first stage first, after the input is unsubscribed.
 */
function fusedStages(stages: readonly SyncStage[]): OperatorFunction<Sample, Sample> {
  return (source) =>
    new Observable<Sample>((subscriber) => {
      const open = new Array<OpenStage>(stages.length);
      let output: StageOutput = subscriber;
      for (let index = stages.length - 1; index >= 0; index--) {
        const stage = stages[index]!;
        open[index] = openStage(stage.meta, Infinity, stage.setup, output);
        if (index > 0) output = handOver(open[index]!, subscriber);
      }
      const first = open[0]!;
      const subscription = source.subscribe({
        next: (sample) => first.next(sample),
        error: (error: unknown) => subscriber.error(error),
        complete: () => first.complete(),
      });
      return () => {
        subscription.unsubscribe();
        for (const stage of open) stage.teardown();
      };
    });
}

/**
 * What one stage of a fused run emits into: the next stage, as a subscriber between them would pass it.
 * A closed subscriber drops what it is given, and an exception thrown by the stage it feeds is reported
 * as RxJS reports one from an observer, instead of reaching the emitting stage as that stage's own error.
 */
function handOver(next: OpenStage, subscriber: StageOutput): StageOutput {
  return {
    next(sample) {
      if (subscriber.closed) return;
      try {
        next.next(sample);
      } catch (error) {
        reportUnhandled(error);
      }
    },
    error: (error) => subscriber.error(error),
    complete() {
      if (subscriber.closed) return;
      try {
        next.complete();
      } catch (error) {
        reportUnhandled(error);
      }
    },
    get closed() {
      return subscriber.closed;
    },
  };
}

/** RxJS's own handling of an exception thrown by an observer: out of band, never into the stream. */
function reportUnhandled(error: unknown): void {
  setTimeout(() => {
    if (config.onUnhandledError) config.onUnhandledError(error);
    else throw error;
  });
}
