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
  /** A reasoning model's chain of thought for this step: lineage, never training data. */
  readonly reasoning?: string;
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
  /** Id of the source record everything under this ticket derives from. */
  readonly root: string;
  readonly ledger: Ledger;
}

/** The runner's in-flight accounting, reached through tickets so fan-outs can report extra outputs. */
export interface Ledger {
  /**
   * A fan-out turns one sample into `1 + extra`. Undefined when the budget had room; otherwise a promise
   * that resolves once it has, and only then may the extra outputs be emitted (the budget is a hard bound).
   */
  grow(ticket: Ticket, extra: number): Promise<void> | undefined;
  /** While a fan-out places children one by one, its root is not finished (see CreditLedger.hold). */
  hold(ticket: Ticket): void;
  releaseHold(ticket: Ticket): void;
}

type Ticketed = { [TICKET]?: Ticket };

export function ticketOf(sample: Sample): Ticket | undefined {
  return (sample as Ticketed)[TICKET];
}

export function withTicket<S extends Sample>(sample: S, ticket: Ticket | undefined): S {
  if (ticket) (sample as Ticketed)[TICKET] = ticket;
  return sample;
}

/**
 * Id of a source record, namespaced by its source: `<source>:<record id>` when the record has its own id
 * (a non-empty string, or a number), else `<source>:<position>`. Two sources both numbered from 1 thus
 * never share an id, and a resumed run, reading the same records at the same positions, makes the same
 * ids. The record's own id is not lost: the sample's `data` is the record as read, so `data.id` keeps it
 * verbatim and exports show it (a row our sinks wrote, read back, keeps its old sample id behind the new
 * prefix). Within one source the ids must be unique; `SourceIds` is the check the runner applies.
 */
export function sourceSampleId(source: string, position: number, recordId?: unknown): string {
  const own = ownId(recordId);
  return `${source}:${own ?? position}`;
}

/** A record's own id as a string, when it has a usable one (a non-empty string or a finite number). */
export function ownId(recordId: unknown): string | undefined {
  if (typeof recordId === "string" && recordId.length > 0) return recordId;
  if (typeof recordId === "number" && Number.isFinite(recordId)) return String(recordId);
  return undefined;
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

// Shared by every root sample: they are readonly, and a run creates millions of roots.
const NO_PARENTS: readonly string[] = Object.freeze([]);
const NO_STEPS: readonly StepRecord[] = Object.freeze([]);
const NO_SCORES: Readonly<Record<string, number>> = Object.freeze({});

/** A root sample as a source emits it; `ticket` is the runner's accounting slip. */
export function createSample<T extends SampleData>(options: NewSampleOptions<T>, ticket?: Ticket): Sample<T> {
  return {
    id: options.id,
    data: options.data,
    provenance: {
      origin: options.origin ?? "human",
      source: options.source,
      parents: NO_PARENTS,
      depth: 0,
      steps: NO_STEPS,
    },
    scores: options.scores ?? NO_SCORES,
    [TICKET]: ticket,
  } as Sample<T>;
}
