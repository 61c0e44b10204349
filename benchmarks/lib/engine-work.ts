// The five stages of the engine benchmark, written once as plain functions so that rxsynth and both
// baselines do exactly the same per-sample work: new data objects, a provenance step per change.
import { TICKET, ticketOf, type Sample, type StepRecord } from "../../src/index.ts";

export const STAGES = 5;

export function makeRecord(position: number): { text: string; n: number } {
  return { text: `sample ${position}`, n: position };
}

export function doubled(data: Sample["data"]): Sample["data"] {
  return { text: data.text, n: (data.n as number) * 2 };
}

export function keepNotTenth(data: Sample["data"]): boolean {
  return (data.n as number) % 10 !== 0;
}

export function incremented(data: Sample["data"]): Sample["data"] {
  return { text: data.text, n: (data.n as number) + 1 };
}

export function resolvedScore(sample: Sample): Promise<number> {
  return Promise.resolve((sample.data.n as number) & 7);
}

/** The baselines' hand-written equivalent of what the engine's helpers do per changed sample. */
export function stampedCopy(sample: Sample, op: string, data: Sample["data"], scores = sample.scores, source = sample.provenance.source): Sample {
  const steps = sample.provenance.steps;
  const next = new Array<StepRecord>(steps.length + 1);
  for (let i = 0; i < steps.length; i++) next[i] = steps[i]!;
  next[steps.length] = { op, version: "1", at: Date.now(), params: "0" };
  return {
    id: sample.id,
    data,
    provenance: { origin: sample.provenance.origin, source, parents: sample.provenance.parents, depth: 0, steps: next },
    scores,
    [TICKET]: ticketOf(sample),
  } as Sample;
}

export function rootSample(position: number): Sample {
  return {
    id: `bench:${position}`,
    data: makeRecord(position),
    provenance: { origin: "human", source: "bench", parents: [], depth: 0, steps: [] },
    scores: {},
  };
}
