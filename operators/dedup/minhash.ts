/**
 * MinHash maths: normalisation, shingling, signatures, Jaccard estimates and LSH band keys.
 * Pure functions over strings and typed arrays; the stateful index lives in `lsh.ts`.
 *
 * Hashing is 32-bit throughout and built on `Math.imul`, so it stays in small integers and never goes
 * through doubles. Each permutation is the murmur3 finaliser without its last xor-shift applied to
 * `x ^ seed_i`: a bijection on 32 bits whose high bits (which decide the minimum) depend on every input
 * bit. Unlike multiply-shift with a 32-bit multiplier, whose low output bits depend only on low input
 * bits, and unlike `(a*x + b) % p` evaluated in doubles, which rounds once `a*x` passes 2^53, it gives
 * unbiased estimates at the binomial floor (the tests and the benchmark measure the error). The dropped
 * xor-shift only changes the low 16 bits as a function of the high 16, so it almost never changes which
 * shingle is the minimum; leaving it out keeps the estimates and saves a sixth of the work.
 */
import { ConfigError, fmix32 } from "../../src/index.ts";

/** How text is cut into the set that MinHash summarises. */
export interface ShingleOptions {
  /** "word": n consecutive words of the normalised text; "char": n consecutive characters of it. */
  readonly kind: "word" | "char";
  readonly n: number;
}

export interface MinHashOptions {
  /** Number of permutations (signature length). Default 128. */
  readonly numPerm?: number;
  /** Seed of the permutation family; signatures are comparable only under the same seed. Default 1. */
  readonly seed?: number;
  /** Default word 5-grams. */
  readonly shingle?: ShingleOptions;
}

export interface NormalizeOptions {
  /** Default true. */
  readonly lowercase?: boolean;
  /** Runs of whitespace become one space and the ends are trimmed. Default true. */
  readonly collapseWhitespace?: boolean;
  /** Punctuation and symbols (Unicode P and S) are deleted. Default true. */
  readonly stripPunctuation?: boolean;
}

export const MINHASH_DEFAULTS = {
  numPerm: 128,
  seed: 1,
  shingle: { kind: "word", n: 5 },
} as const satisfies Required<MinHashOptions>;

// ---------------------------------------------------------------------------------------------------
// 32-bit hashing

export { fmix32 };

/** murmur3's block step: folds one 32-bit word into a running hash. */
function mixInto(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** 32-bit hash of a sequence of 32-bit words (murmur3 over words). */
export function hashWords(words: ArrayLike<number>, seed = 0, start = 0, end = words.length): number {
  let h = seed | 0;
  for (let i = start; i < end; i++) h = mixInto(h, words[i]!);
  return fmix32(h ^ (end - start));
}

/** 32-bit hash of a string's UTF-16 code units. */
export function hashString(text: string, seed = 0): number {
  let h = seed | 0;
  for (let i = 0; i < text.length; i++) h = mixInto(h, text.charCodeAt(i));
  return fmix32(h ^ text.length);
}

/** 64-bit hash of a string as a 4-code-unit key (cheap to store and to use as a Map key). */
export function hashKey64(text: string): string {
  const a = hashString(text, 0x2545f491);
  const b = hashString(text, 0x6c8e9cf5);
  return String.fromCharCode(a >>> 16, a & 0xffff, b >>> 16, b & 0xffff);
}

/** Deterministic 32-bit generator (splitmix32) for permutation seeds. */
function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  };
}

// ---------------------------------------------------------------------------------------------------
// Normalisation

/** Per UTF-16 code unit: 0 separates words, 1 is punctuation (deleted), 2 is part of a word. */
const SEPARATOR = 0;
const PUNCTUATION = 1;
const WORD = 2;
let classes: Uint8Array | undefined;

function charClasses(): Uint8Array {
  if (classes) return classes;
  const table = new Uint8Array(65536);
  const space = /[\p{White_Space}\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
  const punct = /[\p{P}\p{S}]/u;
  for (let c = 0; c < 65536; c++) {
    // Lone surrogates are halves of astral characters (emoji, rare CJK): kept as word characters.
    if (c >= 0xd800 && c <= 0xdfff) table[c] = WORD;
    else {
      const ch = String.fromCharCode(c);
      table[c] = space.test(ch) ? SEPARATOR : punct.test(ch) ? PUNCTUATION : WORD;
    }
  }
  classes = table;
  return table;
}

/**
 * Canonical form of a text for hashing: lowercased, punctuation deleted, whitespace collapsed
 * (each step can be turned off). With all three on, the words are exactly what `shingles` hashes.
 */
export function normalize(text: string, options: NormalizeOptions = {}): string {
  const lowercase = options.lowercase ?? true;
  const collapse = options.collapseWhitespace ?? true;
  const strip = options.stripPunctuation ?? true;
  const source = lowercase ? text.toLowerCase() : text;
  if (!collapse && !strip) return source;
  const table = charClasses();
  let out = "";
  let runStart = 0;
  let pendingSpace = false;
  for (let i = 0; i < source.length; i++) {
    const cls = table[source.charCodeAt(i)]!;
    if (cls === WORD || (cls === PUNCTUATION && !strip) || (cls === SEPARATOR && !collapse)) continue;
    // Flush the kept run before this code unit.
    if (i > runStart) {
      if (pendingSpace && out.length > 0) out += " ";
      out += source.slice(runStart, i);
      pendingSpace = false;
    }
    if (cls === SEPARATOR) pendingSpace = true;
    runStart = i + 1;
  }
  if (source.length > runStart) {
    if (pendingSpace && out.length > 0) out += " ";
    out += source.slice(runStart);
  }
  return out;
}

/**
 * The lowercased words of a text: runs of letters, digits and marks. Punctuation and symbols are deleted
 * inside a word ("don't" -> "dont", the words of `normalize`) or, with `punctuation: "split"`, end it
 * ("don't" -> "don", "t", as rouge_score tokenises).
 */
export function words(text: string, punctuation: "delete" | "split" = "delete"): string[] {
  const table = charClasses();
  const source = text.toLowerCase();
  const out: string[] = [];
  let current = "";
  let runStart = 0;
  for (let i = 0; i <= source.length; i++) {
    const cls = i < source.length ? table[source.charCodeAt(i)]! : SEPARATOR;
    if (cls === WORD) continue;
    if (cls === PUNCTUATION && punctuation === "delete") {
      current += source.slice(runStart, i);
    } else {
      const word = current + source.slice(runStart, i);
      if (word.length > 0) out.push(word);
      current = "";
    }
    runStart = i + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Shingles

const TOKEN_SEED = 0x811c9dc5;
const SHINGLE_SEED = 0x3c6ef372;

function checkShingle(shingle: ShingleOptions): void {
  if (shingle.kind !== "word" && shingle.kind !== "char") {
    throw new ConfigError(`shingle.kind must be "word" or "char", got ${JSON.stringify(shingle.kind)}`);
  }
  if (!Number.isInteger(shingle.n) || shingle.n < 1) {
    throw new ConfigError(`shingle.n must be a positive integer, got ${shingle.n}`);
  }
}

/** Reusable scratch buffer so hashing a document allocates nothing but its result. */
let scratch: Uint32Array = new Uint32Array(4096);

/** Grows the scratch buffer to at least `size`, keeping its first `keep` values. */
function growScratch(size: number, keep = 0): Uint32Array {
  if (scratch.length < size) {
    const grown = new Uint32Array(Math.max(size, scratch.length * 2));
    if (keep > 0) grown.set(scratch.subarray(0, keep));
    scratch = grown;
  }
  return scratch;
}

/**
 * Hashes of the words of `normalize(text)`, written into the scratch buffer from 0; returns their count.
 * Words are hashed while scanning (FNV-1a over code units, then fmix32), without building substrings.
 */
function wordHashes(text: string): number {
  const table = charClasses();
  const source = text.toLowerCase();
  let buffer = scratch;
  let count = 0;
  let h = TOKEN_SEED;
  let length = 0;
  for (let i = 0; i <= source.length; i++) {
    const c = i < source.length ? source.charCodeAt(i) : 32;
    const cls = table[c]!;
    if (cls === WORD) {
      h = Math.imul(h ^ c, 0x01000193);
      length++;
    } else if (cls === SEPARATOR && length > 0) {
      if (count === buffer.length) buffer = growScratch(count * 2, count);
      buffer[count++] = fmix32(h ^ length);
      h = TOKEN_SEED;
      length = 0;
    }
  }
  return count;
}

/**
 * The shingle hashes of a text (32-bit, one per position, duplicates included).
 * Word n-grams hash the n word hashes; a text with fewer than n words is one shingle of all of them.
 * Char n-grams run over `normalize(text)`; a shorter text is one shingle.
 */
export function shingles(text: string, shingle: ShingleOptions = MINHASH_DEFAULTS.shingle): Uint32Array {
  checkShingle(shingle);
  const count = shingleInto(text, shingle);
  return scratch.slice(0, count);
}

/** Odd base of the polynomial that combines word hashes into a shingle hash. */
const BASE = 0x9e3779b1;

/** Shingle hashes into the shared scratch buffer (valid until the next call); returns the count. */
function shingleInto(text: string, shingle: ShingleOptions): number {
  const n = shingle.n;
  if (shingle.kind === "char") {
    const norm = normalize(text);
    if (norm.length === 0) return 0;
    const total = Math.max(1, norm.length - n + 1);
    const buffer = growScratch(total);
    for (let i = 0; i < total; i++) {
      let h = SHINGLE_SEED;
      const end = Math.min(norm.length, i + n);
      for (let j = i; j < end; j++) h = mixInto(h, norm.charCodeAt(j));
      buffer[i] = fmix32(h ^ (end - i));
    }
    return total;
  }
  const words = wordHashes(text);
  if (words === 0) return 0;
  const buffer = scratch;
  if (words < n) {
    buffer[0] = hashWords(buffer, SHINGLE_SEED, 0, words);
    return 1;
  }
  // Rolling polynomial hash mod 2^32 over the n word hashes (O(1) per shingle), then fmix32 so
  // every bit of the shingle hash depends on every word. Shingle i only reads words i..i+n-1,
  // so it can overwrite word i in place.
  let top = 1;
  for (let k = 1; k < n; k++) top = Math.imul(top, BASE);
  let h = 0;
  for (let k = 0; k < n; k++) h = (Math.imul(h, BASE) + buffer[k]!) | 0;
  const total = words - n + 1;
  for (let i = 0; ; i++) {
    const first = buffer[i]!;
    buffer[i] = fmix32(h ^ n);
    if (i + 1 === total) break;
    h = (Math.imul(h - Math.imul(first, top), BASE) + buffer[i + n]!) | 0;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------------
// Signatures

/** A resolved MinHash configuration: permutation seeds drawn once, reused for every document. */
export interface MinHasher {
  readonly numPerm: number;
  readonly seed: number;
  readonly shingle: ShingleOptions;
  /** The seeds of the permutations (see the module comment). */
  readonly seeds: Uint32Array;
  signature(text: string): Uint32Array;
  /** Signature of a set of precomputed 32-bit shingle hashes. */
  signatureOf(hashes: ArrayLike<number>, count?: number): Uint32Array;
}

const EMPTY = 0xffffffff;

export function createMinHasher(options: MinHashOptions = {}): MinHasher {
  const numPerm = options.numPerm ?? MINHASH_DEFAULTS.numPerm;
  const seed = options.seed ?? MINHASH_DEFAULTS.seed;
  const shingle = options.shingle ?? MINHASH_DEFAULTS.shingle;
  if (!Number.isInteger(numPerm) || numPerm < 1) throw new ConfigError(`numPerm must be a positive integer, got ${numPerm}`);
  if (!Number.isInteger(seed)) throw new ConfigError(`seed must be an integer, got ${seed}`);
  checkShingle(shingle);
  const next = splitmix32(seed);
  const seeds = new Uint32Array(numPerm);
  for (let i = 0; i < numPerm; i++) seeds[i] = next();

  // Four permutations per pass over the shingles: the shingle is loaded once and the four
  // independent hash chains keep the CPU's multipliers busy (about 1.3x over one at a time).
  const signatureOf = (hashes: ArrayLike<number>, count = hashes.length): Uint32Array => {
    const sig = new Uint32Array(numPerm).fill(EMPTY);
    if (count === 0) return sig;
    const whole = numPerm - (numPerm % 4);
    for (let p = 0; p < whole; p += 4) {
      const s0 = seeds[p]!;
      const s1 = seeds[p + 1]!;
      const s2 = seeds[p + 2]!;
      const s3 = seeds[p + 3]!;
      let m0 = EMPTY;
      let m1 = EMPTY;
      let m2 = EMPTY;
      let m3 = EMPTY;
      for (let j = 0; j < count; j++) {
        const v = hashes[j]!;
        let x = v ^ s0;
        x ^= x >>> 16;
        x = Math.imul(x, 0x85ebca6b);
        x ^= x >>> 13;
        x = Math.imul(x, 0xc2b2ae35) >>> 0;
        if (x < m0) m0 = x;
        let y = v ^ s1;
        y ^= y >>> 16;
        y = Math.imul(y, 0x85ebca6b);
        y ^= y >>> 13;
        y = Math.imul(y, 0xc2b2ae35) >>> 0;
        if (y < m1) m1 = y;
        let z = v ^ s2;
        z ^= z >>> 16;
        z = Math.imul(z, 0x85ebca6b);
        z ^= z >>> 13;
        z = Math.imul(z, 0xc2b2ae35) >>> 0;
        if (z < m2) m2 = z;
        let w = v ^ s3;
        w ^= w >>> 16;
        w = Math.imul(w, 0x85ebca6b);
        w ^= w >>> 13;
        w = Math.imul(w, 0xc2b2ae35) >>> 0;
        if (w < m3) m3 = w;
      }
      sig[p] = m0;
      sig[p + 1] = m1;
      sig[p + 2] = m2;
      sig[p + 3] = m3;
    }
    for (let p = whole; p < numPerm; p++) {
      const s = seeds[p]!;
      let min = EMPTY;
      for (let j = 0; j < count; j++) {
        let h = hashes[j]! ^ s;
        h ^= h >>> 16;
        h = Math.imul(h, 0x85ebca6b);
        h ^= h >>> 13;
        h = Math.imul(h, 0xc2b2ae35) >>> 0;
        if (h < min) min = h;
      }
      sig[p] = min;
    }
    return sig;
  };

  return {
    numPerm,
    seed,
    shingle,
    seeds,
    signatureOf,
    signature(text) {
      const count = shingleInto(text, shingle);
      return signatureOf(scratch, count);
    },
  };
}

/**
 * A signature of 2 x `seeds.length` values for candidate search over small sets (instructions of a dozen
 * words): each permutation's 32-bit value gives two 16-bit minima, over its high and its low half, so one
 * hash evaluation feeds two signature positions. Unrelated minima tie with probability about
 * (set size / 65536), harmless for LSH candidates but a bias for Jaccard estimates: use `signatureOf`
 * for those.
 */
export function halfSignature(seeds: Uint32Array, hashes: ArrayLike<number>, count = hashes.length): Uint32Array {
  const sig = new Uint32Array(seeds.length * 2).fill(0xffff);
  for (let p = 0; p < seeds.length; p++) {
    const s = seeds[p]!;
    let high = 0xffff;
    let low = 0xffff;
    for (let j = 0; j < count; j++) {
      let h = hashes[j]! ^ s;
      h ^= h >>> 16;
      h = Math.imul(h, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      // Branch-free minimum (16-bit values, so the difference's sign is exact): with a dozen elements the
      // minimum changes often and unpredictably, and mispredicted branches cost more than the hashing.
      const dh = (h >>> 16) - high;
      high += dh & (dh >> 31);
      const dl = (h & 0xffff) - low;
      low += dl & (dl >> 31);
    }
    sig[2 * p] = high;
    sig[2 * p + 1] = low;
  }
  return sig;
}

const hashers = new Map<string, MinHasher>();

/** Signature of a text under `options` (the hasher for each configuration is built once and cached). */
export function signature(text: string, options: MinHashOptions = {}): Uint32Array {
  const numPerm = options.numPerm ?? MINHASH_DEFAULTS.numPerm;
  const seed = options.seed ?? MINHASH_DEFAULTS.seed;
  const shingle = options.shingle ?? MINHASH_DEFAULTS.shingle;
  const key = `${numPerm}:${seed}:${shingle.kind}:${shingle.n}`;
  let hasher = hashers.get(key);
  if (!hasher) {
    hasher = createMinHasher({ numPerm, seed, shingle });
    hashers.set(key, hasher);
  }
  return hasher.signature(text);
}

/** True when no shingle reached the signature (an empty or punctuation-only text). */
export function isEmptySignature(sig: Uint32Array): boolean {
  for (let i = 0; i < sig.length; i++) if (sig[i] !== EMPTY) return false;
  return true;
}

/** Fraction of equal positions: an unbiased estimate of the Jaccard similarity of the shingle sets. */
export function jaccardEstimate(a: ArrayLike<number>, b: ArrayLike<number>, offsetB = 0): number {
  const n = a.length;
  if (offsetB === 0 && b.length !== n) {
    throw new ConfigError(`signatures differ in length (${a.length} vs ${b.length}): use the same numPerm`);
  }
  let equal = 0;
  for (let i = 0; i < n; i++) if (a[i] === b[offsetB + i]) equal++;
  return equal / n;
}

/** Exact Jaccard similarity of two sets (for tests and ground truth). */
export function jaccard<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): number {
  if (a.size === 0 && b.size === 0) return 1;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  let shared = 0;
  for (const x of small) if (large.has(x)) shared++;
  return shared / (a.size + b.size - shared);
}

/**
 * LSH band keys: band i hashes rows [i*rows, (i+1)*rows) of the signature, seeded by i so equal
 * values in different bands do not collide. Two signatures share band i iff those rows are equal
 * (up to a 2^-32 hash collision).
 */
export function bands(sig: ArrayLike<number>, bandCount: number, rows: number, out: Uint32Array = new Uint32Array(bandCount)): Uint32Array {
  if (bandCount * rows > sig.length) {
    throw new ConfigError(`${bandCount} bands x ${rows} rows need ${bandCount * rows} permutations, the signature has ${sig.length}`);
  }
  for (let b = 0; b < bandCount; b++) out[b] = hashWords(sig, b, b * rows, (b + 1) * rows);
  return out;
}
