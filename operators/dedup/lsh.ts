/**
 * Locality-sensitive hashing over MinHash signatures: band parameters and a compact, serialisable index.
 *
 * Memory per indexed document: one 16-bit fingerprint per permutation (the low half of each minhash
 * value, enough to confirm a candidate: two unequal values agree on 16 bits with p = 2^-16, which the
 * estimate corrects for), one 32-bit chain link per band, a share of the open-addressed band tables
 * (32-bit key + 32-bit head per slot, at most 70% full) and the id string.
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

export interface LshIndexOptions extends BandWeights {
  /** Signature length the index accepts. */
  readonly numPerm: number;
  /** Similarity the bands are tuned for (used when `bands`/`rows` are not given). Default 0.8. */
  readonly threshold?: number;
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

/** The bands x rows an index with these options uses: the ones given, else `optimalBands`. */
export function resolveBands(options: LshIndexOptions): BandChoice {
  const numPerm = options.numPerm;
  if (!Number.isInteger(numPerm) || numPerm < 1) throw new ConfigError(`numPerm must be a positive integer, got ${numPerm}`);
  let choice: BandChoice;
  if (options.bands !== undefined || options.rows !== undefined) {
    const bands = options.bands ?? Math.floor(numPerm / (options.rows ?? 1));
    const rows = options.rows ?? Math.floor(numPerm / bands);
    choice = { bands, rows };
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

/** Documents per storage chunk: arenas grow a chunk at a time, never by copying everything. */
const CHUNK = 4096;
const NONE = -1;
const MAX_LOAD = 0.7;
const MAGIC = 0x48534c52; // "RLSH"
const FORMAT = 1;
/** Probability that two unequal minhash values agree on their low 16 bits. */
const FINGERPRINT_COLLISION = 1 / 65536;

/** One band's open-addressed table from band key to the newest document with that key. */
class BandTable {
  keys: Uint32Array;
  heads: Int32Array;
  size = 0;

  constructor(capacity = 1024) {
    this.keys = new Uint32Array(capacity);
    this.heads = new Int32Array(capacity).fill(NONE);
  }

  /** Slot holding `key`, or the empty slot where it would go. Keys are already uniform hashes. */
  slot(key: number): number {
    const mask = this.keys.length - 1;
    let i = key & mask;
    while (this.heads[i] !== NONE && this.keys[i] !== key) i = (i + 1) & mask;
    return i;
  }

  head(key: number): number {
    return this.heads[this.slot(key)]!;
  }

  /** Makes `doc` the head for `key`; returns the previous head (NONE if the key is new). */
  push(key: number, doc: number): number {
    if ((this.size + 1) > this.keys.length * MAX_LOAD) this.grow();
    const i = this.slot(key);
    const previous = this.heads[i]!;
    if (previous === NONE) {
      this.keys[i] = key;
      this.size++;
    }
    this.heads[i] = doc;
    return previous;
  }

  private grow(): void {
    const keys = this.keys;
    const heads = this.heads;
    this.keys = new Uint32Array(keys.length * 2);
    this.heads = new Int32Array(keys.length * 2).fill(NONE);
    for (let i = 0; i < keys.length; i++) {
      if (heads[i] === NONE) continue;
      const j = this.slot(keys[i]!);
      this.keys[j] = keys[i]!;
      this.heads[j] = heads[i]!;
    }
  }

  get bytes(): number {
    return this.keys.byteLength + this.heads.byteLength;
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
  private readonly tables: BandTable[];
  private readonly ids: string[] = [];
  /** Per document: `bands` chain links (previous document with the same key in that band). */
  private readonly links: Int32Array[] = [];
  /** Per document: low 16 bits of each minhash value. */
  private readonly prints: Uint16Array[] = [];
  private readonly keyBuffer: Uint32Array;
  private idChars = 0;

  constructor(options: LshIndexOptions) {
    const choice = resolveBands(options);
    this.numPerm = options.numPerm;
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
    const chunk = Math.floor(doc / CHUNK);
    const offset = doc % CHUNK;
    if (offset === 0) {
      this.links.push(new Int32Array(CHUNK * this.bands));
      this.prints.push(new Uint16Array(CHUNK * this.numPerm));
    }
    const keys = bandKeys(sig, this.bands, this.rows, this.keyBuffer);
    const links = this.links[chunk]!;
    for (let b = 0; b < this.bands; b++) links[offset * this.bands + b] = this.tables[b]!.push(keys[b]!, doc);
    const prints = this.prints[chunk]!;
    const base = offset * this.numPerm;
    for (let p = 0; p < this.numPerm; p++) prints[base + p] = sig[p]! & 0xffff;
    this.ids.push(id);
    this.idChars += id.length;
    return doc;
  }

  /** Positions of the documents sharing at least one band with `sig`, oldest first. */
  candidates(sig: ArrayLike<number>): number[] {
    this.check(sig);
    const keys = bandKeys(sig, this.bands, this.rows, this.keyBuffer);
    const found: number[] = [];
    for (let b = 0; b < this.bands; b++) {
      let doc = this.tables[b]!.head(keys[b]!);
      while (doc !== NONE) {
        if (!found.includes(doc)) found.push(doc);
        doc = this.links[Math.floor(doc / CHUNK)]![(doc % CHUNK) * this.bands + b]!;
      }
    }
    return found.sort((x, y) => x - y);
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
    const prints = this.prints[Math.floor(doc / CHUNK)]!;
    const base = (doc % CHUNK) * this.numPerm;
    let equal = 0;
    for (let p = 0; p < this.numPerm; p++) if ((sig[p]! & 0xffff) === prints[base + p]) equal++;
    const raw = equal / this.numPerm;
    // Unequal values still agree on 16 bits with p = 2^-16: undo that (tiny) upward bias.
    return Math.max(0, (raw - FINGERPRINT_COLLISION) / (1 - FINGERPRINT_COLLISION));
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
   * Bytes held: typed arrays exactly, id strings as V8 stores one-byte strings (12-byte header plus
   * characters, 4-byte aligned) plus a 4-byte array slot. The benchmark checks this against heap deltas.
   */
  memoryBytes(): number {
    let bytes = 0;
    for (const table of this.tables) bytes += table.bytes;
    for (const chunk of this.links) bytes += chunk.byteLength;
    for (const chunk of this.prints) bytes += chunk.byteLength;
    bytes += this.ids.length * 16 + this.idChars;
    return bytes;
  }

  /** A self-contained binary image of the index (little-endian), loadable with `LshIndex.deserialize`. */
  serialize(): Uint8Array {
    const count = this.ids.length;
    // Ids are newline-joined unless one contains a newline, then JSON.
    const escaped = this.ids.some((id) => id.includes("\n"));
    const idBlob = new TextEncoder().encode(escaped ? JSON.stringify(this.ids) : this.ids.join("\n"));
    let size = 4 * 8 + idBlob.byteLength;
    size = align(size);
    for (const table of this.tables) size += 8 + table.bytes;
    size += count * this.bands * 4 + align(count * this.numPerm * 2);
    const bytes = new Uint8Array(size);
    const view = new DataView(bytes.buffer);
    let at = 0;
    const u32 = (value: number) => {
      view.setUint32(at, value, true);
      at += 4;
    };
    u32(MAGIC);
    u32(FORMAT);
    u32(this.numPerm);
    u32(this.bands);
    u32(this.rows);
    u32(count);
    u32(escaped ? 1 : 0);
    u32(idBlob.byteLength);
    bytes.set(idBlob, at);
    at = align(at + idBlob.byteLength);
    for (const table of this.tables) {
      u32(table.keys.length);
      u32(table.size);
      bytes.set(new Uint8Array(table.keys.buffer, table.keys.byteOffset, table.keys.byteLength), at);
      at += table.keys.byteLength;
      bytes.set(new Uint8Array(table.heads.buffer, table.heads.byteOffset, table.heads.byteLength), at);
      at += table.heads.byteLength;
    }
    for (let chunk = 0; chunk * CHUNK < count; chunk++) {
      const used = Math.min(CHUNK, count - chunk * CHUNK) * this.bands;
      const links = this.links[chunk]!;
      bytes.set(new Uint8Array(links.buffer, 0, used * 4), at);
      at += used * 4;
    }
    for (let chunk = 0; chunk * CHUNK < count; chunk++) {
      const used = Math.min(CHUNK, count - chunk * CHUNK) * this.numPerm;
      const prints = this.prints[chunk]!;
      bytes.set(new Uint8Array(prints.buffer, 0, used * 2), at);
      at += used * 2;
    }
    return bytes;
  }

  static deserialize(bytes: Uint8Array): LshIndex {
    // Copy into an aligned buffer so typed-array views over it are legal.
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
    if (u32() !== MAGIC) throw new ConfigError("not an LSH index image (bad magic)");
    const format = u32();
    if (format !== FORMAT) throw new ConfigError(`LSH index image format ${format} is not supported (expected ${FORMAT})`);
    const numPerm = u32();
    const bandCount = u32();
    const rows = u32();
    const count = u32();
    const escaped = u32() === 1;
    const idLength = u32();
    const idText = new TextDecoder().decode(own.subarray(at, at + idLength));
    at = align(at + idLength);
    const ids: string[] = count === 0 ? [] : escaped ? (JSON.parse(idText) as string[]) : idText.split("\n");
    if (ids.length !== count) throw new ConfigError(`LSH index image holds ${ids.length} ids, header says ${count}`);
    const index = new LshIndex({ numPerm, bands: bandCount, rows });
    for (let b = 0; b < bandCount; b++) {
      const capacity = u32();
      const size = u32();
      const table = index.tables[b]!;
      table.keys = new Uint32Array(own.buffer.slice(at, at + capacity * 4));
      at += capacity * 4;
      table.heads = new Int32Array(own.buffer.slice(at, at + capacity * 4));
      at += capacity * 4;
      table.size = size;
    }
    for (let chunk = 0; chunk * CHUNK < count; chunk++) {
      const used = Math.min(CHUNK, count - chunk * CHUNK) * bandCount;
      const links = new Int32Array(CHUNK * bandCount);
      links.set(new Int32Array(own.buffer.slice(at, at + used * 4)));
      at += used * 4;
      index.links.push(links);
    }
    for (let chunk = 0; chunk * CHUNK < count; chunk++) {
      const used = Math.min(CHUNK, count - chunk * CHUNK) * numPerm;
      const prints = new Uint16Array(CHUNK * numPerm);
      prints.set(new Uint16Array(own.buffer.slice(at, at + used * 2)));
      at += used * 2;
      index.prints.push(prints);
    }
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
