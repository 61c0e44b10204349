import { stableHash } from "./hash.ts";

export type Origin = "human" | "synthetic" | "template";

/** One operator's mark on a sample: what changed it, with which settings and model. */
export interface StepRecord {
  readonly op: string;
  readonly version: string;
  /** Epoch milliseconds; sinks write it as a timestamp. */
  readonly at: number;
  /** Hash of the operator's options; the options themselves are stored once in the run manifest. */
  readonly params?: string;
  readonly model?: string;
  readonly promptHash?: string;
  readonly promptTokens?: number;
  readonly completionTokens?: number;
  readonly latencyMs?: number;
  /** Free text for what does not fit a column (an evolution kind, an attempt count, a judge's rationale). */
  readonly note?: string;
}

export interface Provenance {
  readonly origin: Origin;
  /** Dataset or file the lineage starts from. */
  readonly source: string;
  /** Sample ids this one was made from. */
  readonly parents: readonly string[];
  /** Generations away from human data (0 = human or template). */
  readonly depth: number;
  readonly steps: readonly StepRecord[];
}

export type SampleData = Record<string, unknown>;

export interface Sample<T extends SampleData = SampleData> {
  /** Deterministic: a resumed run produces the same ids. */
  readonly id: string;
  readonly data: T;
  readonly provenance: Provenance;
  /** What filters and judges measured, kept for the output. */
  readonly scores: Readonly<Record<string, number>>;
}

/**
 * The runner's accounting slip, carried from a source record to everything derived from it.
 * Enumerable under a symbol so `{...sample}` in user code keeps it, yet it never reaches JSON or Parquet.
 */
export const TICKET: unique symbol = Symbol.for("rxsynth.ticket");

export interface Ticket {
  /** Samples derived from the root that are still in flight. */
  pending: number;
  readonly root: string;
  /** Called by the runner's accounting when a sample of this root settles (committed or rejected). */
  readonly settle: (ticket: Ticket) => void;
}

type Ticketed = { [TICKET]?: Ticket };

export function ticketOf(sample: Sample): Ticket | undefined {
  return (sample as Ticketed)[TICKET];
}

export function withTicket<S extends Sample>(sample: S, ticket: Ticket | undefined): S {
  if (ticket) (sample as Ticketed)[TICKET] = ticket;
  return sample;
}

/** Id of a source record: its own id when it has one, else the source name and position. */
export function sourceSampleId(source: string, position: number, recordId?: unknown): string {
  if (typeof recordId === "string" && recordId.length > 0) return recordId;
  if (typeof recordId === "number") return String(recordId);
  return `${source}:${position}`;
}

/** Id of a sample made from a parent: stable across runs, distinct per operator and output index. */
export function childSampleId(parentId: string, operator: string, index: number): string {
  return stableHash(`${parentId}\u0000${operator}\u0000${index}`);
}

export interface NewSampleOptions<T extends SampleData> {
  readonly id: string;
  readonly data: T;
  readonly origin?: Origin;
  readonly source: string;
  readonly scores?: Record<string, number>;
}

/** A root sample as a source emits it. */
export function createSample<T extends SampleData>(options: NewSampleOptions<T>): Sample<T> {
  return {
    id: options.id,
    data: options.data,
    provenance: {
      origin: options.origin ?? "human",
      source: options.source,
      parents: [],
      depth: 0,
      steps: [],
    },
    scores: options.scores ?? {},
  };
}
