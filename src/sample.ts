import { InputError } from "./errors.ts";
import { fmix32, stableHash } from "./hash.ts";

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

function ownId(recordId: unknown): string | undefined {
  if (typeof recordId === "string" && recordId.length > 0) return recordId;
  if (typeof recordId === "number" && Number.isFinite(recordId)) return String(recordId);
  return undefined;
}

const EMPTY_SLOT = 0;
const CANONICAL_POSITION = /^(0|[1-9][0-9]*)$/;

/**
 * Catches a record id repeated within one source, which would give two samples one id (and let a stateful
 * operator mistake one for the other after a resume). A repeat is an `InputError` naming the source, the
 * id and both positions: a repeated id usually means repeated or concatenated data (two files numbered
 * from 1 read as one source), which the user should see and settle (unique ids, or each file its own
 * source), not ids quietly rewritten for some rows.
 *
 * Bounded memory: nothing is held until the source yields its first record with an id (a source without
 * ids costs nothing); from then on 16 bytes per table slot (a 64-bit hash of the id and the position), the
 * table a power of two at most 3/4 full: 268 MB for 10M ids, never the id strings. Two different ids share
 * a 64-bit hash with probability 2^-64 per pair (about 1 in 370,000 for a whole source of 10M ids), which
 * would be reported as a repeat. Ids of records without one (`<position>`) are checked too once the source
 * has ids, so a record id "7" cannot take the position-based id of a record at position 7 without one
 * (positions before the first record with an id are assumed to have held records: a numeric id naming
 * a blank line's position is reported too, a rare false alarm that saves tracking every earlier position).
 *
 * Feed every record in position order, also those a resume skips as finished; `check` at the position the
 * table already holds for that id is the same record read again and passes, so a restored table (see
 * `serialize`) can be checked against the replayed tail of a resumed run.
 */
export class SourceIds {
  readonly source: string;
  private readonly locate: ((position: number) => string | undefined) | undefined;
  /** [hash hi, hash lo] per slot; hash lo 0 marks an empty slot. */
  private hashes = new Uint32Array(0);
  private positions = new Float64Array(0);
  private count = 0;
  /** Position of the first record with its own id; positions before it all took position-based ids. */
  private firstOwn: number | undefined;

  /** `locate` turns a position into a place for the message (a file and line), when the source can tell. */
  constructor(source: string, options: { readonly locate?: (position: number) => string | undefined } = {}) {
    this.source = source;
    this.locate = options.locate;
  }

  /** Ids held. */
  get size(): number {
    return this.count;
  }

  /** Bytes held by the table. */
  memoryBytes(): number {
    return this.hashes.byteLength + this.positions.byteLength;
  }

  /** Records the record at `position` (its own id, if any); throws InputError when another position has the same id. */
  check(position: number, recordId?: unknown): void {
    const own = ownId(recordId);
    if (own === undefined && this.firstOwn === undefined) return;
    if (own !== undefined && this.firstOwn === undefined) {
      this.firstOwn = position;
      // Every record before this one took its position as its id: a record id naming one of those positions repeats it.
      if (CANONICAL_POSITION.test(own) && Number(own) < position) this.repeated(own, Number(own), position);
    }
    this.insert(own ?? String(position), position);
  }

  private insert(id: string, position: number): void {
    if (this.count + 1 > (this.positions.length * 3) / 4) this.grow();
    const [hi, lo] = idHash(id);
    const mask = this.positions.length - 1;
    for (let slot = hi & mask; ; slot = (slot + 1) & mask) {
      const held = this.hashes[slot * 2 + 1]!;
      if (held === EMPTY_SLOT) {
        this.hashes[slot * 2] = hi;
        this.hashes[slot * 2 + 1] = lo;
        this.positions[slot] = position;
        this.count++;
        return;
      }
      if (held === lo && this.hashes[slot * 2] === hi) {
        const earlier = this.positions[slot]!;
        if (earlier === position) return;
        this.repeated(id, Math.min(earlier, position), Math.max(earlier, position));
      }
    }
  }

  private repeated(id: string, first: number, second: number): never {
    const place = (position: number) => {
      const where = this.locate?.(position);
      return where ? `position ${position} (${where})` : `position ${position}`;
    };
    throw new InputError(
      `record id ${JSON.stringify(id)} appears twice in source ${JSON.stringify(this.source)}, at ${place(first)} and ${place(second)}; ` +
        "sample ids are <source>:<record id>, so ids must be unique within a source: give the records unique ids, or read each file as its own source",
      { file: this.source, field: "id" },
    );
  }

  private grow(): void {
    const oldHashes = this.hashes;
    const oldPositions = this.positions;
    const capacity = Math.max(1024, oldPositions.length * 2);
    this.hashes = new Uint32Array(capacity * 2);
    this.positions = new Float64Array(capacity);
    const mask = capacity - 1;
    for (let old = 0; old < oldPositions.length; old++) {
      const lo = oldHashes[old * 2 + 1]!;
      if (lo === EMPTY_SLOT) continue;
      const hi = oldHashes[old * 2]!;
      let slot = hi & mask;
      while (this.hashes[slot * 2 + 1] !== EMPTY_SLOT) slot = (slot + 1) & mask;
      this.hashes[slot * 2] = hi;
      this.hashes[slot * 2 + 1] = lo;
      this.positions[slot] = oldPositions[old]!;
    }
  }

  /** The table as bytes, to save beside a checkpoint; `SourceIds.deserialize` restores it. */
  serialize(): Uint8Array {
    const bytes = new Uint8Array(16 + this.hashes.byteLength + this.positions.byteLength);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, this.positions.length, true);
    view.setUint32(4, this.count, true);
    view.setFloat64(8, this.firstOwn ?? -1, true);
    bytes.set(new Uint8Array(this.positions.buffer), 16);
    bytes.set(new Uint8Array(this.hashes.buffer), 16 + this.positions.byteLength);
    return bytes;
  }

  static deserialize(source: string, bytes: Uint8Array, options: { readonly locate?: (position: number) => string | undefined } = {}): SourceIds {
    // A copy with its own, aligned buffer: a Node Buffer's slice is a view into a shared pool.
    const own = new Uint8Array(bytes);
    const view = new DataView(own.buffer);
    const capacity = view.getUint32(0, true);
    if (own.byteLength !== 16 + capacity * 16) throw new InputError(`saved id table of source ${JSON.stringify(source)} is truncated`);
    const ids = new SourceIds(source, options);
    ids.count = view.getUint32(4, true);
    const firstOwn = view.getFloat64(8, true);
    ids.firstOwn = firstOwn < 0 ? undefined : firstOwn;
    ids.positions = new Float64Array(own.buffer.slice(16, 16 + capacity * 8));
    ids.hashes = new Uint32Array(own.buffer.slice(16 + capacity * 8));
    return ids;
  }
}

/** Two independent 32-bit hashes of the UTF-16 code units (FNV-1a, then a murmur3 finaliser); lo never 0. */
function idHash(id: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < id.length; i++) {
    const unit = id.charCodeAt(i);
    a = Math.imul(a ^ unit, 0x01000193);
    b = Math.imul(b ^ unit, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return [fmix32(a ^ id.length), fmix32(b) || 1];
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
