import { from, lastValueFrom, toArray, type Observable } from "rxjs";
import { memoryRunContext, withRunContext, type MemoryContextOptions, type Rejection } from "./context.ts";
import type { Metrics } from "./metrics.ts";
import type { Operator } from "./operator.ts";
import type { Sample } from "./sample.ts";

export interface Collected {
  readonly out: Sample[];
  readonly rejects: Rejection[];
  readonly metrics: Metrics;
}

/**
 * Runs operators over samples in memory and returns what came out and what was rejected.
 * For tests, notebooks and small jobs; `run()` is the streaming, resumable path.
 */
export async function collect(
  operators: Operator | readonly Operator[],
  samples: Iterable<Sample> | AsyncIterable<Sample>,
  options: MemoryContextOptions = {},
): Promise<Collected> {
  const context = memoryRunContext(options);
  const chain = Array.isArray(operators) ? operators : [operators as Operator];
  const output = withRunContext(context, () => {
    const stream = chain.reduce<Observable<Sample>>((s, op) => s.pipe(op), from(samples as Iterable<Sample>));
    // lastValueFrom subscribes synchronously, inside the context, so every operator finds it.
    return lastValueFrom(stream.pipe(toArray()));
  });
  const out = await output;
  return { out, rejects: context.rejects, metrics: context.metrics };
}
