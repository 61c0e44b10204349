// The five stages of the engine benchmark, written once as plain functions so that rxsynth and both
// baselines do exactly the same per-sample work: new data objects, a provenance step per change.
import { TICKET, sourceSampleId, ticketOf, type Sample, type SourceItem, type StepRecord, type Ticket } from "../../src/index.ts";
import { PositionTracker } from "../../src/run/position-tracker.ts";
import { SourceIdRegistry } from "../../src/run/source-ids.ts";

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

/** A source record as the engine's benchmark source yields it. */
export function sourceItem(position: number): SourceItem {
  return { position, id: `bench:${position}`, data: makeRecord(position) };
}

/** What a baseline's samples carry to the sink, as the engine's carry their ticket: the record's position. */
interface BenchTicket extends Ticket {
  readonly position: number;
}

/** A source record's sample, as the engine makes it: a namespaced id, human origin, and a ticket. */
export function rootSample(item: SourceItem): Sample {
  const id = sourceSampleId("bench", item.position, item.id);
  const ticket: BenchTicket = { pending: 1, root: id, ledger: undefined as unknown as Ticket["ledger"], position: item.position };
  return {
    id,
    data: item.data!,
    provenance: { origin: "human", source: "bench", parents: [], depth: 0, steps: [] },
    scores: {},
    [TICKET]: ticket,
  } as Sample;
}

/**
 * The per-record work the engine does for its promises, done by every baseline with the engine's own
 * classes, so that a ratio compares the same work: each source record's id is checked for a repeat (unique
 * ids; checked a batch at a time where the baseline reads batches), and each sample that leaves, accepted
 * or rejected, marks its record's position finished (what a resume skips).
 */
export class RecordBookkeeping {
  private readonly ids: SourceIdRegistry;
  private readonly finished = new PositionTracker();
  private readonly one: SourceItem[] = [];

  constructor(records: number) {
    this.ids = new SourceIdRegistry(undefined, ["bench"], false, () => {});
    this.ids.reserve("bench", records);
  }

  read(batch: readonly SourceItem[]): void {
    this.ids.check("bench", batch);
  }

  readOne(item: SourceItem): void {
    this.one[0] = item;
    this.ids.check("bench", this.one);
  }

  finish(sample: Sample): void {
    this.finished.finish((ticketOf(sample) as BenchTicket).position);
  }

  /** Records finished: the watermark once everything has left. */
  get watermark(): number {
    return this.finished.watermark;
  }
}
