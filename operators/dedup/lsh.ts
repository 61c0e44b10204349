/**
 * Locality-sensitive hashing over MinHash signatures: band parameters and a compact, serialisable index.
 *
 * Memory per indexed document: one 16-bit fingerprint per permutation (the low half of each minhash
 * value, enough to confirm a candidate: two unequal values agree on 16 bits with p = 2^-16, which the
 * estimate corrects for; optional), a share of the open-addressed band tables (32-bit key + 32-bit value
 * per slot, at most 70% full), a mark byte and the id string.
 */
import { ConfigError } from "../../src/index.ts";
import { bands as bandKeys } from "./minhash.ts";

export interface BandWeights {
  /** Weight of the integrated false-positive probability. Default 0.5. */
  readonly falsePositiveWeight?: number;
  /** Weight of the integrated false-negative probability. Default 0.5. */
  readonly falseNegativeWeight?: number;
}

export interface BandChoice {
  readonly bands: number;
  readonly rows: number;
}

// 20-point Gauss-Legendre nodes and weights on [-1, 1] (symmetric halves).
const GL_X = [
  0.0765265211334973, 0.2277858511416451, 0.3737060887154195, 0.5108670019508271, 0.636053680726515,
  0.7463319064601508, 0.8391169718222188, 0.9122344282513259, 0.9639719272779138, 0.9931285991850949,
];
const GL_W = [
  0.1527533871307258, 0.1491729864726037, 0.1420961093183820, 0.1316886384491766, 0.1181945319615184,
  0.1019301198172404, 0.0832767415767048, 0.0626720483341091, 0.0406014298003869, 0.0176140071391521,
];

/** Integral of f over [a, b]: composite 20-point Gauss-Legendre (error far below what decides a choice). */
function integrate(f: (s: number) => number, a: number, b: number, pieces = 16): number {
  if (b <= a) return 0;
  const width = (b - a) / pieces;
  let total = 0;
  for (let p = 0; p < pieces; p++) {
    const mid = a + (p + 0.5) * width;
    const half = width / 2;
    for (let k = 0; k < GL_X.length; k++) {
      const dx = half * GL_X[k]!;
      total += GL_W[k]! * (f(mid - dx) + f(mid + dx)) * half;
    }
  }
  return total;
}

const optimalCache = new Map<string, BandChoice>();

/**
 * Bands x rows that minimise the weighted integrated false-positive and false-negative probability of
 * the LSH S-curve `1 - (1 - s^r)^b` around `threshold`, searching b in 1..numPerm and r in 1..numPerm/b,
 * exactly as datasketch's `_optimal_param` does (its integrals are scipy's `quad`; ours are accurate to
 * far better than the gaps between choices, and the tests pin datasketch's answers).
 */
export function optimalBands(threshold: number, numPerm: number, weights: BandWeights = {}): BandChoice {
  const fpWeight = weights.falsePositiveWeight ?? 0.5;
  const fnWeight = weights.falseNegativeWeight ?? 0.5;
  if (!(threshold > 0 && threshold < 1)) throw new ConfigError(`threshold must be in (0, 1), got ${threshold}`);
  if (!Number.isInteger(numPerm) || numPerm < 1) throw new ConfigError(`numPerm must be a positive integer, got ${numPerm}`);
  if (!(fpWeight >= 0 && fnWeight >= 0 && fpWeight + fnWeight > 0)) {
    throw new ConfigError("falsePositiveWeight and falseNegativeWeight must be >= 0 and not both 0");
  }
  const key = `${threshold}:${numPerm}:${fpWeight}:${fnWeight}`;
  const cached = optimalCache.get(key);
  if (cached) return cached;
  let best: BandChoice = { bands: 1, rows: 1 };
  let bestError = Infinity;
  for (let b = 1; b <= numPerm; b++) {
    const maxRows = Math.floor(numPerm / b);
    for (let r = 1; r <= maxRows; r++) {
      const fp = integrate((s) => 1 - Math.pow(1 - Math.pow(s, r), b), 0, threshold);
      const fn = integrate((s) => Math.pow(1 - Math.pow(s, r), b), threshold, 1);
      const error = fp * fpWeight + fn * fnWeight;
      if (error < bestError) {
        bestError = error;
        best = { bands: b, rows: r };
      }
    }
  }
  optimalCache.set(key, best);
  return best;
}

/** Probability that a pair with Jaccard similarity `s` shares at least one of `bands` bands of `rows` rows. */
export function candidateProbability(s: number, bands: number, rows: number): number {
  return 1 - Math.pow(1 - Math.pow(s, rows), bands);
}

/**
 * The bands x rows with the fewest false candidates among those that make a pair exactly at `threshold`
 * a candidate with probability >= `recall`: the most rows per band for which some band count reaches it.
 * Suits an index whose candidates are confirmed afterwards (false positives cost a comparison, false
 * negatives are lost duplicates); datasketch's equal-weight choice for 0.8 / 128 (9 x 13) finds only 40%
 * of the pairs at exactly 0.8, this one (21 x 6) finds 99.8%.
 */
export function bandsForRecall(threshold: number, numPerm: number, recall = 0.99): BandChoice {
  if (!(threshold > 0 && threshold < 1)) throw new ConfigError(`threshold must be in (0, 1), got ${threshold}`);
  if (!Number.isInteger(numPerm) || numPerm < 1) throw new ConfigError(`numPerm must be a positive integer, got ${numPerm}`);
  if (!(recall > 0 && recall < 1)) throw new ConfigError(`recall must be in (0, 1), got ${recall}`);
  for (let rows = numPerm; rows >= 1; rows--) {
    const bands = Math.floor(numPerm / rows);
    if (candidateProbability(threshold, bands, rows) >= recall) return { bands, rows };
  }
  return { bands: numPerm, rows: 1 };
}

export interface LshIndexOptions extends BandWeights {
  /** Signature length the index accepts. */
  readonly numPerm: number;
  /** Similarity the bands are tuned for (used when `bands`/`rows` are not given). Default 0.8. */
  readonly threshold?: number;
  /**
   * When set, bands come from `bandsForRecall(threshold, numPerm, recall)` instead of `optimalBands`
   * (whose weights are then ignored).
   */
  readonly recall?: number;
  /**
   * Keep 16-bit fingerprints of each signature so `estimate` and `best` can confirm candidates. An index
   * whose candidates are checked some other way (ROUGE-L) turns them off and saves 2 bytes per permutation.
   * Default true.
   */
  readonly fingerprints?: boolean;
  /** Explicit bands x rows (one may be left out: it is derived from the other and numPerm). */
  readonly bands?: number;
  readonly rows?: number;
}

export interface Match {
  readonly id: string;
  /** Position in insertion order. */
  readonly index: number;
  /** Estimated Jaccard similarity to the query. */
  readonly jaccard: number;
}

/** The bands x rows an index with these options uses: the ones given, else by `recall`, else `optimalBands`. */
export function resolveBands(options: LshIndexOptions): BandChoice {
  const numPerm = options.numPerm;
  if (!Number.isInteger(numPerm) || numPerm < 1) throw new ConfigError(`numPerm must be a positive integer, got ${numPerm}`);
  let choice: BandChoice;
  if (options.bands !== undefined || options.rows !== undefined) {
    const bands = options.bands ?? Math.floor(numPerm / (options.rows ?? 1));
    const rows = options.rows ?? Math.floor(numPerm / bands);
    choice = { bands, rows };
  } else if (options.recall !== undefined) {
    choice = bandsForRecall(options.threshold ?? 0.8, numPerm, options.recall);
  } else {
    choice = optimalBands(options.threshold ?? 0.8, numPerm, options);
  }
  if (!Number.isInteger(choice.bands) || !Number.isInteger(choice.rows) || choice.bands < 1 || choice.rows < 1) {
    throw new ConfigError(`bands and rows must be positive integers, got ${choice.bands} x ${choice.rows}`);
  }
  if (choice.bands * choice.rows > numPerm) {
    throw new ConfigError(`${choice.bands} bands x ${choice.rows} rows exceed numPerm ${numPerm}`);
  }
  return choice;
}

/** Documents per fingerprint chunk: the arena grows a chunk at a time, never by copying everything. */
const CHUNK_BITS = 12;
const CHUNK = 1 << CHUNK_BITS;
const IN_CHUNK = CHUNK - 1;
/** Marks an empty table slot (documents are >= 0, list references are other negatives). */
const EMPTY = -0x80000000;
const MAX_LOAD = 0.7;
const MAGIC = 0x48534c52; // "RLSH"
const FORMAT = 2;
const FLAG_JSON_IDS = 1;
const FLAG_NO_FINGERPRINTS = 2;
/** Probability that two unequal minhash values agree on their low 16 bits. */
const FINGERPRINT_COLLISION = 1 / 65536;

/**
 * One band's open-addressed table from band key to its documents. Key and value share one array (slot i
 * at 2i and 2i + 1) so a lookup touches one cache line: at 100k documents the tables of all bands far
 * exceed the CPU caches and each lookup is a memory access. Most keys hold one document, stored in the
 * slot itself; a key shared by several holds `-(list + 1)`, a list of them in insertion order, so reading
 * a busy bucket is a sequential scan rather than a hop per document.
 */
class BandTable {
  /** [key as int32, value] per slot; value EMPTY, a document, or a list reference. */
  slots: Int32Array;
  lists: number[][] = [];
  size = 0;

  constructor(capacity = 1024) {
    this.slots = BandTable.emptySlots(capacity);
  }

  private static emptySlots(capacity: number): Int32Array {
    const slots = new Int32Array(capacity * 2);
    for (let i = 1; i < slots.length; i += 2) slots[i] = EMPTY;
    return slots;
  }

  get capacity(): number {
    return this.slots.length >> 1;
  }

  /** Index (into `slots`) of the slot holding `key`, or of the empty slot where it would go. Keys are uniform hashes. */
  private find(key: number): number {
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    let i = key & mask;
    for (;;) {
      const at = i << 1;
      if (slots[at + 1] === EMPTY || slots[at] === key) return at;
      i = (i + 1) & mask;
    }
  }

  /** EMPTY, a document, or a list reference. */
  value(key: number): number {
    return this.slots[this.find(key | 0) + 1]!;
  }

  push(key: number, doc: number): void {
    if (this.size + 1 > this.capacity * MAX_LOAD) this.grow();
    key |= 0;
    const at = this.find(key);
    const value = this.slots[at + 1]!;
    if (value === EMPTY) {
      this.slots[at] = key;
      this.slots[at + 1] = doc;
      this.size++;
    } else if (value >= 0) {
      this.lists.push([value, doc]);
      this.slots[at + 1] = -this.lists.length;
    } else {
      this.lists[-value - 1]!.push(doc);
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = BandTable.emptySlots(old.length);
    for (let at = 0; at < old.length; at += 2) {
      if (old[at + 1] === EMPTY) continue;
      const to = this.find(old[at]!);
      this.slots[to] = old[at]!;
      this.slots[to + 1] = old[at + 1]!;
    }
  }

  /** The typed array exactly; lists as V8 keeps small-integer arrays (header + 4 bytes per slot, with growth slack). */
  get bytes(): number {
    let bytes = this.slots.byteLength;
    for (const list of this.lists) bytes += 32 + 4 * Math.ceil(list.length * 1.5);
    return bytes;
  }
}

/**
 * A banded MinHash index. `insert` files a signature under each band key; `query` returns the ids that
 * share at least one band (never throws, also for documents it has not seen); `best` confirms candidates
 * by their estimated Jaccard similarity.
 */
export class LshIndex {
  readonly numPerm: number;
  readonly bands: number;
  readonly rows: number;
  readonly fingerprints: boolean;
  private readonly tables: BandTable[];
  private readonly ids: string[] = [];
  /** Per document: low 16 bits of each minhash value, CHUNK documents per array. */
  private readonly prints: Uint16Array[] = [];
  private readonly keyBuffer: Uint32Array;
  private found = new Int32Array(64);
  /** Scratch for `candidates`: 1 while a document is already in the current answer, else 0. */
  private marks = new Uint8Array(CHUNK);
  private idChars = 0;

  constructor(options: LshIndexOptions) {
    const choice = resolveBands(options);
    this.numPerm = options.numPerm;
    this.fingerprints = options.fingerprints ?? true;
    this.bands = choice.bands;
    this.rows = choice.rows;
    this.tables = Array.from({ length: this.bands }, () => new BandTable());
    this.keyBuffer = new Uint32Array(this.bands);
  }

  get size(): number {
    return this.ids.length;
  }

  private check(sig: ArrayLike<number>): void {
    if (sig.length !== this.numPerm) {
      throw new ConfigError(`signature has ${sig.length} values, the index expects numPerm ${this.numPerm}`);
    }
  }

  /** Adds a document; returns its position. */
  insert(id: string, sig: ArrayLike<number>): number {
    this.check(sig);
    const doc = this.ids.length;
    const offset = doc & IN_CHUNK;
    if (doc >= this.marks.length) {
      const marks = new Uint8Array(this.marks.length * 2);
      marks.set(this.marks);
      this.marks = marks;
    }
    const keys = bandKeys(sig, this.bands, this.rows, this.keyBuffer);
    this.touch(keys);
    for (let b = 0; b < this.bands; b++) this.tables[b]!.push(keys[b]!, doc);
    if (this.fingerprints) {
      if (offset === 0) this.prints.push(new Uint16Array(CHUNK * this.numPerm));
      const prints = this.prints[doc >> CHUNK_BITS]!;
      const base = offset * this.numPerm;
      for (let p = 0; p < this.numPerm; p++) prints[base + p] = sig[p]! & 0xffff;
    }
    this.ids.push(id);
    this.idChars += id.length;
    return doc;
  }

  /**
   * Reads each band's home slot for `keys` before any is used. The tables outgrow the CPU caches, so every
   * lookup is a memory access; issued back to back without dependencies the CPU overlaps them, where the
   * insert or query loop would otherwise wait for each in turn.
   */
  private touch(keys: Uint32Array): number {
    let sum = 0;
    for (let b = 0; b < this.bands; b++) {
      const slots = this.tables[b]!.slots;
      sum += slots[((keys[b]! & ((slots.length >> 1) - 1)) << 1) + 1]!;
    }
    return sum;
  }

  /** Positions of the documents sharing at least one band with `sig`, oldest first. */
  candidates(sig: ArrayLike<number>): number[] {
    this.check(sig);
    const keys = bandKeys(sig, this.bands, this.rows, this.keyBuffer);
    this.touch(keys);
    // One mark byte per document drops repeats as they are met (a close pair shares most bands), so the
    // cost stays linear in what the buckets hold; only the distinct candidates are sorted.
    const marks = this.marks;
    let found = this.found;
    let count = 0;
    const add = (doc: number) => {
      if (marks[doc] !== 0) return;
      marks[doc] = 1;
      if (count === found.length) {
        const grown = new Int32Array(found.length * 2);
        grown.set(found);
        found = grown;
        this.found = grown;
      }
      found[count++] = doc;
    };
    for (let b = 0; b < this.bands; b++) {
      const table = this.tables[b]!;
      const value = table.value(keys[b]!);
      if (value >= 0) add(value);
      else if (value !== EMPTY) {
        const list = table.lists[-value - 1]!;
        for (let i = 0; i < list.length; i++) add(list[i]!);
      }
    }
    const result = new Array<number>(count);
    const sorted = found.subarray(0, count).sort();
    for (let i = 0; i < count; i++) {
      result[i] = sorted[i]!;
      marks[sorted[i]!] = 0;
    }
    return result;
  }

  /** Ids of the documents sharing at least one band with `sig`. */
  query(sig: ArrayLike<number>): string[] {
    return this.candidates(sig).map((doc) => this.ids[doc]!);
  }

  idOf(doc: number): string {
    const id = this.ids[doc];
    if (id === undefined) throw new ConfigError(`no document at position ${doc} (index holds ${this.ids.length})`);
    return id;
  }

  /** Estimated Jaccard similarity between `sig` and the stored document at `doc`. */
  estimate(sig: ArrayLike<number>, doc: number): number {
    if (!this.fingerprints) throw new ConfigError("this LSH index keeps no fingerprints: create it with fingerprints: true to estimate");
    const prints = this.prints[doc >> CHUNK_BITS]!;
    const base = (doc & IN_CHUNK) * this.numPerm;
    let equal = 0;
    for (let p = 0; p < this.numPerm; p++) if ((sig[p]! & 0xffff) === prints[base + p]) equal++;
    const raw = equal / this.numPerm;
    // Unequal values still agree on 16 bits with p = 2^-16: undo that (tiny) upward bias.
    return Math.max(0, (raw - FINGERPRINT_COLLISION) / (1 - FINGERPRINT_COLLISION));
  }

  /** Whether `sig` has the stored document's fingerprint at every permutation (what the same text always gives). */
  sameSignature(sig: ArrayLike<number>, doc: number): boolean {
    if (!this.fingerprints) throw new ConfigError("this LSH index keeps no fingerprints: create it with fingerprints: true to compare");
    this.check(sig);
    const prints = this.prints[doc >> CHUNK_BITS]!;
    const base = (doc & IN_CHUNK) * this.numPerm;
    for (let p = 0; p < this.numPerm; p++) if ((sig[p]! & 0xffff) !== prints[base + p]) return false;
    return true;
  }

  /** The candidate with the highest estimated similarity at or above `threshold` (the oldest on ties). */
  best(sig: ArrayLike<number>, threshold: number): Match | undefined {
    let match: Match | undefined;
    for (const doc of this.candidates(sig)) {
      const jaccard = this.estimate(sig, doc);
      if (jaccard >= threshold && (!match || jaccard > match.jaccard)) match = { id: this.ids[doc]!, index: doc, jaccard };
    }
    return match;
  }

  /**
   * Bytes held: typed arrays exactly, bucket lists and id strings as V8 stores them (one-byte strings:
   * 12-byte header plus characters, 4-byte aligned, plus a 4-byte array slot). The benchmark checks this
   * against heap deltas.
   */
  memoryBytes(): number {
    let bytes = this.marks.byteLength;
    for (const table of this.tables) bytes += table.bytes;
    for (const chunk of this.prints) bytes += chunk.byteLength;
    bytes += this.ids.length * 20 + this.idChars;
    return bytes;
  }

  /** A self-contained binary image of the index (little-endian), loadable with `LshIndex.deserialize`. */
  serialize(): Uint8Array {
    const count = this.ids.length;
    // Ids are newline-joined unless one contains a newline, then JSON.
    const escaped = this.ids.some((id) => id.includes("\n"));
    const idBlob = new TextEncoder().encode(escaped ? JSON.stringify(this.ids) : this.ids.join("\n"));
    let size = align(4 * 8 + idBlob.byteLength);
    for (const table of this.tables) {
      size += 12 + table.slots.byteLength;
      for (const list of table.lists) size += 4 + list.length * 4;
    }
    if (this.fingerprints) size += count * this.numPerm * 2;
    const bytes = new Uint8Array(size);
    const view = new DataView(bytes.buffer);
    let at = 0;
    const u32 = (value: number) => {
      view.setUint32(at, value, true);
      at += 4;
    };
    const raw = (array: Uint32Array | Int32Array | Uint16Array, length = array.length) => {
      bytes.set(new Uint8Array(array.buffer, array.byteOffset, length * array.BYTES_PER_ELEMENT), at);
      at += length * array.BYTES_PER_ELEMENT;
    };
    u32(MAGIC);
    u32(FORMAT);
    u32(this.numPerm);
    u32(this.bands);
    u32(this.rows);
    u32(count);
    u32((escaped ? FLAG_JSON_IDS : 0) | (this.fingerprints ? 0 : FLAG_NO_FINGERPRINTS));
    u32(idBlob.byteLength);
    bytes.set(idBlob, at);
    at = align(at + idBlob.byteLength);
    for (const table of this.tables) {
      u32(table.capacity);
      u32(table.size);
      u32(table.lists.length);
      raw(table.slots);
      for (const list of table.lists) {
        u32(list.length);
        for (const doc of list) u32(doc);
      }
    }
    for (let chunk = 0; this.fingerprints && chunk * CHUNK < count; chunk++) {
      raw(this.prints[chunk]!, Math.min(CHUNK, count - chunk * CHUNK) * this.numPerm);
    }
    return bytes;
  }

  static deserialize(bytes: Uint8Array): LshIndex {
    // Copy into an own, aligned buffer: typed-array views need alignment, and a Node Buffer is a view
    // into a shared pool.
    const own = new Uint8Array(bytes.byteLength);
    own.set(bytes);
    const view = new DataView(own.buffer);
    let at = 0;
    const u32 = () => {
      if (at + 4 > own.byteLength) throw new ConfigError("LSH index image is truncated");
      const value = view.getUint32(at, true);
      at += 4;
      return value;
    };
    const slice = (length: number) => {
      if (at + length > own.byteLength) throw new ConfigError("LSH index image is truncated");
      const part = own.buffer.slice(at, at + length);
      at += length;
      return part;
    };
    if (u32() !== MAGIC) throw new ConfigError("not an LSH index image (bad magic)");
    const format = u32();
    if (format !== FORMAT) throw new ConfigError(`LSH index image format ${format} is not supported (expected ${FORMAT})`);
    const numPerm = u32();
    const bandCount = u32();
    const rows = u32();
    const count = u32();
    const flags = u32();
    const idLength = u32();
    const idText = new TextDecoder().decode(slice(idLength));
    at = align(at);
    const ids: string[] = count === 0 ? [] : flags & FLAG_JSON_IDS ? (JSON.parse(idText) as string[]) : idText.split("\n");
    if (ids.length !== count) throw new ConfigError(`LSH index image holds ${ids.length} ids, header says ${count}`);
    const fingerprints = (flags & FLAG_NO_FINGERPRINTS) === 0;
    const index = new LshIndex({ numPerm, bands: bandCount, rows, fingerprints });
    for (const table of index.tables) {
      const capacity = u32();
      table.size = u32();
      const lists = u32();
      table.slots = new Int32Array(slice(capacity * 8));
      for (let l = 0; l < lists; l++) {
        const length = u32();
        table.lists.push(Array.from(new Int32Array(slice(length * 4))));
      }
    }
    for (let chunk = 0; fingerprints && chunk * CHUNK < count; chunk++) {
      const prints = new Uint16Array(CHUNK * numPerm);
      prints.set(new Uint16Array(slice(Math.min(CHUNK, count - chunk * CHUNK) * numPerm * 2)));
      index.prints.push(prints);
    }
    index.marks = new Uint8Array(Math.max(CHUNK, count + CHUNK));
    for (const id of ids) {
      index.ids.push(id);
      index.idChars += id.length;
    }
    return index;
  }
}

function align(n: number): number {
  return (n + 3) & ~3;
}
