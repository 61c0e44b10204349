import { InputError } from "../errors.ts";
import { fmix32Signed } from "../hash.ts";
import { ownId } from "../sample.ts";

const CANONICAL_POSITION = /^(0|[1-9][0-9]*)$/;

/** What the check reads of a source record: its position, and its own id when it has one. */
export interface CheckedRecord {
  readonly position: number;
  readonly id?: unknown;
}
/** Bytes per slot: a 64-bit hash of the id (two u32 words, the second 0 when empty), then the position as a float64. */
const SLOT_BYTES = 16;
const MIN_SLOTS = 1024;
/** Marks the saved format with interleaved slots (the first format kept hashes and positions in two blocks). */
const FORMAT_MAGIC = 0x52584932;
const HEADER_BYTES = 24;

/**
 * Catches a record id repeated within one source, which would give two samples one id (and let a stateful
 * operator mistake one for the other after a resume). A repeat is an `InputError` naming the source, the
 * id and both positions: a repeated id usually means repeated or concatenated data (two files numbered
 * from 1 read as one source), which the user should see and settle (unique ids, or each file its own
 * source), not ids quietly rewritten for some rows.
 *
 * Bounded memory: nothing is held until the source yields its first record with an id (a source without
 * ids costs nothing); from then on 16 bytes per table slot (a 64-bit hash of the id and the position, side
 * by side so a probe touches one cache line), the table a power of two at most 3/4 full, never the id
 * strings. Two different ids share a 64-bit hash with probability 2^-64 per pair (about 1 in 370,000 for a
 * whole source of 10M ids), which would be reported as a repeat. Ids of records without one (`<position>`)
 * are checked too once the source has ids, so a record id "7" cannot take the position-based id of a
 * record at position 7 without one (positions before the first record with an id are assumed to have
 * held records: a numeric id naming a blank line's position is reported too, a rare false alarm that saves
 * tracking every earlier position).
 *
 * Feed every record in position order, also those a resume skips as finished; `check` at the position the
 * table already holds for that id is the same record read again and passes, so a restored table (see
 * `serialize`) can be checked against the replayed tail of a resumed run.
 */
export class SourceIds {
  readonly source: string;
  private readonly locate: ((position: number) => string | undefined) | undefined;
  /** Signed views of the hash words: int32 values stay small integers in V8, where uint32 ones past 2^31 become heap numbers. */
  private words = new Int32Array(0);
  private positions = new Float64Array(0);
  private slots = 0;
  private count = 0;
  private reserved = 0;
  /** The hashes of a batch before it is probed: hi, lo and the record's index, per record. */
  private scratch = new Int32Array(0);
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
    return this.words.byteLength;
  }

  /**
   * Sizes the table for `ids` ids when the first one arrives, so a source that can tell its size is never
   * rehashed on the way (a rehash moves every slot, and a large table's growth is the bulk of the check's cost).
   */
  reserve(ids: number): void {
    this.reserved = Math.max(this.reserved, ids);
  }

  /** Records the record at `position` (its own id, if any); throws InputError when another position has the same id. */
  check(position: number, recordId?: unknown): void {
    this.checkRecords([{ position, id: recordId }]);
  }

  /**
   * `check` for the first `end` records of a batch, in order, holding at most `maxIds` ids: a new id past
   * them is not checked, nor is anything after it in the batch (false is returned then). Every hash is
   * computed before the first probe: a probe is a cache miss into a table of up to 32 MB, and misses of
   * independent probes in one tight loop overlap, where each interleaved with the hashing of the next id
   * waits alone (0.17 against 0.27 us per id for 1.57M ids on the benchmark machine).
   */
  checkRecords(records: readonly CheckedRecord[], end = records.length, maxIds = Infinity): boolean {
    if (this.scratch.length < end * 3) this.scratch = new Int32Array(2 ** Math.ceil(Math.log2(end)) * 3);
    const scratch = this.scratch;
    let hashed = 0;
    for (let index = 0; index < end; index++) {
      const record = records[index]!;
      const own = ownId(record.id);
      if (own === undefined && this.firstOwn === undefined) continue;
      if (own !== undefined) {
        this.firstOwn ??= record.position;
        // Every record before the first with its own id took its position as its id: a record id naming one
        // of those positions repeats it (a source with ids from its first record has no such positions).
        if (this.firstOwn > 0 && Number(own) < this.firstOwn && CANONICAL_POSITION.test(own)) this.repeated(own, Number(own), record.position);
      }
      hashInto(own ?? String(record.position), scratch, hashed * 3);
      scratch[hashed * 3 + 2] = index;
      hashed++;
    }
    if (hashed === 0) return true;
    const needed = Math.min(this.count + hashed, maxIds);
    if (4 * needed > 3 * this.slots) this.resize(needed);
    for (let k = 0; k < hashed; k++) {
      const hi = scratch[k * 3]!;
      const lo = scratch[k * 3 + 1]!;
      const slot = this.probe(hi, lo);
      const record = records[scratch[k * 3 + 2]!]!;
      if (this.words[slot * 4 + 1] === 0) {
        if (this.count >= maxIds) return false;
        this.place(slot, hi, lo, record.position);
        this.count++;
        continue;
      }
      const earlier = this.positions[slot * 2 + 1]!;
      if (earlier !== record.position) this.repeated(ownId(record.id) ?? String(record.position), Math.min(earlier, record.position), Math.max(earlier, record.position));
    }
    return true;
  }

  /** The slot holding this hash, or the empty slot where it belongs (linear probing). */
  private probe(hi: number, lo: number): number {
    const words = this.words;
    const mask = this.slots - 1;
    for (let slot = hi & mask; ; slot = (slot + 1) & mask) {
      const held = words[slot * 4 + 1]!;
      if (held === 0 || (held === lo && words[slot * 4] === hi)) return slot;
    }
  }

  private place(slot: number, hi: number, lo: number, position: number): void {
    this.words[slot * 4] = hi;
    this.words[slot * 4 + 1] = lo;
    this.positions[slot * 2 + 1] = position;
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

  /** A table with room for `needed` ids (at least what `reserve` asked), every held slot moved into it. */
  private resize(needed: number): void {
    let slots = Math.max(MIN_SLOTS, this.slots * 2);
    while (4 * Math.max(needed, this.reserved) > 3 * slots) slots *= 2;
    const oldWords = this.words;
    const oldPositions = this.positions;
    const oldSlots = this.slots;
    this.allocate(slots);
    for (let old = 0; old < oldSlots; old++) {
      const lo = oldWords[old * 4 + 1]!;
      if (lo === 0) continue;
      const hi = oldWords[old * 4]!;
      this.place(this.probe(hi, lo), hi, lo, oldPositions[old * 2 + 1]!);
    }
  }

  private allocate(slots: number, buffer = new ArrayBuffer(slots * SLOT_BYTES)): void {
    this.slots = slots;
    this.words = new Int32Array(buffer);
    this.positions = new Float64Array(buffer);
  }

  /** The table as bytes, to save beside a checkpoint; `SourceIds.deserialize` restores it. */
  serialize(): Uint8Array {
    const bytes = new Uint8Array(HEADER_BYTES + this.words.byteLength);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, FORMAT_MAGIC, true);
    view.setUint32(4, this.slots, true);
    view.setUint32(8, this.count, true);
    view.setFloat64(16, this.firstOwn ?? -1, true);
    bytes.set(new Uint8Array(this.words.buffer), HEADER_BYTES);
    return bytes;
  }

  static deserialize(source: string, bytes: Uint8Array, options: { readonly locate?: (position: number) => string | undefined } = {}): SourceIds {
    // A copy with its own, aligned buffer: a Node Buffer's slice is a view into a shared pool.
    const own = new Uint8Array(bytes);
    const view = new DataView(own.buffer);
    const ids = new SourceIds(source, options);
    const truncated = () => new InputError(`saved id table of source ${JSON.stringify(source)} is truncated`);
    if (own.byteLength >= HEADER_BYTES && view.getUint32(0, true) === FORMAT_MAGIC) {
      const slots = view.getUint32(4, true);
      if (own.byteLength !== HEADER_BYTES + slots * SLOT_BYTES) throw truncated();
      ids.count = view.getUint32(8, true);
      const firstOwn = view.getFloat64(16, true);
      ids.firstOwn = firstOwn < 0 ? undefined : firstOwn;
      ids.allocate(slots, own.buffer.slice(HEADER_BYTES));
      return ids;
    }
    return SourceIds.fromFirstFormat(ids, own, truncated);
  }

  /** The first saved format (folders checkpointed before slots were interleaved): positions, then hash pairs. */
  private static fromFirstFormat(ids: SourceIds, own: Uint8Array, truncated: () => InputError): SourceIds {
    const view = new DataView(own.buffer);
    const slots = own.byteLength >= 16 ? view.getUint32(0, true) : -1;
    if (slots < 0 || own.byteLength !== 16 + slots * 16) throw truncated();
    ids.count = view.getUint32(4, true);
    const firstOwn = view.getFloat64(8, true);
    ids.firstOwn = firstOwn < 0 ? undefined : firstOwn;
    const positions = new Float64Array(own.buffer.slice(16, 16 + slots * 8));
    const hashes = new Int32Array(own.buffer.slice(16 + slots * 8));
    ids.allocate(slots);
    for (let slot = 0; slot < slots; slot++) ids.place(slot, hashes[slot * 2]!, hashes[slot * 2 + 1]!, positions[slot]!);
    return ids;
  }
}

/**
 * Two independent 32-bit hashes of the UTF-16 code units (FNV-1a, then a murmur3 finaliser), written as
 * int32 into `into` at `at` (hi) and `at + 1` (lo, never 0): returned as a pair, or as uint32 values past
 * 2^31 (heap numbers in V8), they would allocate once per source record.
 */
function hashInto(id: string, into: Int32Array, at: number): void {
  let a = 0x811c9dc5 | 0;
  let b = 0x9747b28c | 0;
  for (let i = 0; i < id.length; i++) {
    const unit = id.charCodeAt(i);
    a = Math.imul(a ^ unit, 0x01000193);
    b = Math.imul(b ^ unit, 0x5bd1e995);
    b ^= b >>> 15;
  }
  into[at] = fmix32Signed(a ^ id.length);
  into[at + 1] = fmix32Signed(b) || 1;
}
