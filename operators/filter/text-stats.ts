/**
 * Text statistics for quality heuristics (Gopher / MassiveText, Rae et al. 2021): pure functions, no I/O.
 *
 * Definitions (the heuristic filter's thresholds are read against these):
 * - token: a maximal run of non-whitespace characters.
 * - word: a token with at least one character that is not punctuation or a symbol, with leading and
 *   trailing punctuation trimmed ("(hello," is the word "hello"); "-", "#" and "..." are tokens, not words.
 *   Words are compared ignoring ASCII case.
 * - line: text between "\n"; a line that is only whitespace is blank and counts for nothing.
 *   Lines are compared with surrounding whitespace trimmed.
 * - paragraph: non-blank lines between blank lines, compared trimmed.
 *
 * One pass over the characters finds tokens, words (interned to integer ids by a hash table that compares
 * characters in place, so no string is made per word), lines and paragraphs (one string each, into a Set);
 * n-gram measures then work on the integer word ids.
 */

/** The eight words Gopher requires at least two of. */
export const GOPHER_STOP_WORDS: readonly string[] = ["the", "be", "to", "of", "and", "that", "have", "with"];

/** Characters that make a line a bullet line when they start it (after indentation). */
export const BULLET_CHARS: readonly string[] = ["•", "-", "*", "‣"];

export interface TextStats {
  /** Length of the text in UTF-16 code units. */
  readonly chars: number;
  readonly tokens: number;
  readonly words: number;
  /** Characters in words (trimmed). */
  readonly wordChars: number;
  /** wordChars / words; 0 when there are no words. */
  readonly meanWordLength: number;
  /** Tokens with at least one letter. */
  readonly alphaTokens: number;
  /** alphaTokens / tokens; 0 when there are no tokens. */
  readonly alphaWordRatio: number;
  /** Occurrences of stop words. */
  readonly stopWords: number;
  /** "#" characters. */
  readonly hashes: number;
  /** "..." (non-overlapping, as str.count) plus "…". */
  readonly ellipses: number;
  /** The larger of hashes / words and ellipses / words (Gopher: "for either the hash or the ellipsis"). */
  readonly symbolRatio: number;
  /** Non-blank lines. */
  readonly lines: number;
  readonly bulletLines: number;
  readonly ellipsisLines: number;
  /** bulletLines / lines; 0 without lines. */
  readonly bulletLineRatio: number;
  /** ellipsisLines / lines; 0 without lines. */
  readonly ellipsisLineRatio: number;
  /** Lines equal to an earlier line (each repeat counts, the first occurrence does not). */
  readonly dupLines: number;
  readonly dupLineChars: number;
  /** dupLines / lines. */
  readonly dupLineFrac: number;
  /** dupLineChars / chars. */
  readonly dupLineCharFrac: number;
  readonly paragraphs: number;
  readonly dupParagraphs: number;
  readonly dupParagraphChars: number;
  /** dupParagraphs / paragraphs. */
  readonly dupParaFrac: number;
  /** dupParagraphChars / chars. */
  readonly dupParaCharFrac: number;
}

/** Stats plus the word sequence as interned ids, for n-gram measures. */
export interface TextAnalysis extends TextStats {
  /** Id of each word in order; equal words (ignoring ASCII case) share an id. */
  readonly wordIds: Int32Array;
  /** Length of each word in order. */
  readonly wordLengths: Int32Array;
  /** Number of distinct words. */
  readonly vocabulary: number;
}

/** A prepared stop-word list (hashed once, so the scan never builds a string to look a word up). */
export interface StopWords {
  readonly words: ReadonlySet<string>;
  readonly hashes: ReadonlySet<number>;
}

// ---------------------------------------------------------------------------------------------------------
// Character classes, cached per UTF-16 code unit.

const WS = 1;
const PUNCT = 2;
const ALPHA = 4;
const KNOWN = 128;

const classes = new Uint8Array(65536);
const punctuationOrSymbol = /[\p{P}\p{S}]/u;
const letter = /\p{L}/u;
const space = /\s/u;

function classify(code: number): number {
  let cls = KNOWN;
  if (code <= 32 || code === 0x7f) cls |= WS;
  else if (code >= 0xd800 && code <= 0xdfff) return cls; // surrogate halves: part of a word, never a letter
  else {
    const ch = String.fromCharCode(code);
    if (space.test(ch) || code === 0xfeff) cls |= WS;
    else if (letter.test(ch)) cls |= ALPHA;
    else if (punctuationOrSymbol.test(ch)) cls |= PUNCT;
  }
  classes[code] = cls;
  return cls;
}
for (let code = 0; code < 128; code++) classify(code);

// ---------------------------------------------------------------------------------------------------------
// Hashing and a word table: interns [start, start+length) of the text, comparing characters in place.

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

function mix(hash: number): number {
  let h = hash ^ (hash >>> 16);
  h = Math.imul(h, 0x7feb352d);
  return h ^ (h >>> 15);
}

function foldAscii(code: number): number {
  return code >= 65 && code <= 90 ? code + 32 : code;
}

function hashWord(word: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ foldAscii(word.charCodeAt(i)), FNV_PRIME);
  return h;
}

export function prepareStopWords(words: readonly string[]): StopWords {
  const lower = words.map((word) => word.toLowerCase());
  return { words: new Set(lower), hashes: new Set(lower.map(hashWord)) };
}

const defaultStopWords = prepareStopWords(GOPHER_STOP_WORDS);

class SpanTable {
  slots = new Int32Array(1024);
  mask = 1023;
  starts = new Int32Array(512);
  lengths = new Int32Array(512);
  hashes = new Int32Array(512);
  size = 0;
  /** Set by intern(): whether the last span was new. */
  inserted = false;

  reset(): void {
    if (this.size > 0) this.slots.fill(0);
    this.size = 0;
  }

  /** Id of the span, compared ignoring ASCII case; `hash` must fold case the same way. */
  intern(text: string, start: number, length: number, hash: number): number {
    const { slots, mask } = this;
    let slot = mix(hash) & mask;
    for (;;) {
      const entry = slots[slot]!;
      if (entry === 0) break;
      const id = entry - 1;
      if (this.hashes[id] === hash && this.lengths[id] === length && this.equal(text, this.starts[id]!, start, length)) {
        this.inserted = false;
        return id;
      }
      slot = (slot + 1) & mask;
    }
    const id = this.size++;
    if (id === this.starts.length) this.growEntries();
    this.starts[id] = start;
    this.lengths[id] = length;
    this.hashes[id] = hash;
    slots[slot] = id + 1;
    if (this.size * 2 > mask) this.growSlots();
    this.inserted = true;
    return id;
  }

  private equal(text: string, a: number, b: number, length: number): boolean {
    for (let i = 0; i < length; i++) {
      const x = text.charCodeAt(a + i);
      const y = text.charCodeAt(b + i);
      if (x !== y && foldAscii(x) !== foldAscii(y)) return false;
    }
    return true;
  }

  private growEntries(): void {
    const grow = (old: Int32Array) => {
      const next = new Int32Array(old.length * 2);
      next.set(old);
      return next;
    };
    this.starts = grow(this.starts);
    this.lengths = grow(this.lengths);
    this.hashes = grow(this.hashes);
  }

  private growSlots(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let id = 0; id < this.size; id++) {
      let slot = mix(this.hashes[id]!) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = id + 1;
    }
    this.slots = slots;
    this.mask = mask;
  }
}

// Scratch table: only used inside one synchronous call, so sharing it across calls is safe. A table
// that once grew for a huge text is dropped again so one outlier does not tax every later reset.
let wordTable = new SpanTable();
const SCRATCH_LIMIT = 1 << 16;

function freshTable(table: SpanTable): SpanTable {
  if (table.slots.length > SCRATCH_LIMIT) return new SpanTable();
  table.reset();
  return table;
}

function ratio(part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole;
}

const BULLET_CODES = new Set(BULLET_CHARS.map((ch) => ch.charCodeAt(0)));
const HASH = 35;
const DOT = 46;
const ELLIPSIS = 0x2026;
const NEWLINE = 10;

/** Every statistic of `text` in one pass, plus its word ids for n-gram measures. */
export function analyzeText(text: string, stopWords: StopWords = defaultStopWords): TextAnalysis {
  const words = (wordTable = freshTable(wordTable));
  // Lines and paragraphs are few: a native Set of their text is cheaper than hashing every character in JS.
  const lineSeen = new Set<string>();
  const paragraphSeen = new Set<string>();

  let wordIds = new Int32Array(Math.max(16, text.length >>> 3));
  let wordLengths = new Int32Array(wordIds.length);
  let isStop = new Uint8Array(256);

  let tokens = 0;
  let wordCount = 0;
  let wordChars = 0;
  let alphaTokens = 0;
  let stopCount = 0;
  let hashes = 0;
  let ellipses = 0;
  let dotRun = 0;
  let lines = 0;
  let bulletLines = 0;
  let ellipsisLines = 0;
  let dupLines = 0;
  let dupLineChars = 0;
  let paragraphs = 0;
  let dupParagraphs = 0;
  let dupParagraphChars = 0;

  let tokenStart = -1;
  let tokenAlpha = false;
  let coreFirst = -1;
  let coreLast = -1;
  let coreHash = 0;
  let coreHashAtLast = 0;

  let lineFirst = -1;
  let lineLast = -1;
  let paraFirst = -1;
  let paraLast = -1;

  const n = text.length;
  // One step past the end reads as a newline, closing the last token and line without a second loop.
  for (let i = 0; i <= n; i++) {
    const code = i < n ? text.charCodeAt(i) : NEWLINE;
    let cls = classes[code]!;
    if (cls === 0) cls = classify(code);

    if ((cls & WS) !== 0) {
      if (dotRun !== 0) {
        ellipses += (dotRun / 3) | 0;
        dotRun = 0;
      }
      if (tokenStart >= 0) {
        tokens++;
        if (tokenAlpha) alphaTokens++;
        if (coreFirst >= 0) {
          const length = coreLast - coreFirst + 1;
          const id = words.intern(text, coreFirst, length, coreHashAtLast);
          if (words.inserted) {
            if (id === isStop.length) {
              const grown = new Uint8Array(isStop.length * 2);
              grown.set(isStop);
              isStop = grown;
            }
            isStop[id] =
              stopWords.hashes.has(coreHashAtLast) && stopWords.words.has(text.slice(coreFirst, coreLast + 1).toLowerCase())
                ? 1
                : 0;
          }
          stopCount += isStop[id]!;
          if (wordCount === wordIds.length) {
            const ids = new Int32Array(wordIds.length * 2);
            ids.set(wordIds);
            wordIds = ids;
            const lengths = new Int32Array(wordLengths.length * 2);
            lengths.set(wordLengths);
            wordLengths = lengths;
          }
          wordIds[wordCount] = id;
          wordLengths[wordCount] = length;
          wordCount++;
          wordChars += length;
        }
        tokenStart = -1;
      }
      if (code === NEWLINE) {
        if (lineFirst >= 0) {
          lines++;
          if (BULLET_CODES.has(text.charCodeAt(lineFirst))) bulletLines++;
          const last = text.charCodeAt(lineLast);
          if (
            last === ELLIPSIS ||
            (last === DOT &&
              lineLast - lineFirst >= 2 &&
              text.charCodeAt(lineLast - 1) === DOT &&
              text.charCodeAt(lineLast - 2) === DOT)
          ) {
            ellipsisLines++;
          }
          const line = text.slice(lineFirst, lineLast + 1);
          if (lineSeen.has(line)) {
            dupLines++;
            dupLineChars += line.length;
          } else lineSeen.add(line);
          lineFirst = -1;
        } else if (paraFirst >= 0) {
          // A blank line ends the paragraph.
          paragraphs++;
          const paragraph = text.slice(paraFirst, paraLast + 1);
          if (paragraphSeen.has(paragraph)) {
            dupParagraphs++;
            dupParagraphChars += paragraph.length;
          } else paragraphSeen.add(paragraph);
          paraFirst = -1;
        }
      }
      continue;
    }

    if (tokenStart < 0) {
      tokenStart = i;
      tokenAlpha = false;
      coreFirst = -1;
    }
    if ((cls & PUNCT) === 0) {
      if (coreFirst < 0) {
        coreFirst = i;
        coreHash = FNV_OFFSET;
      }
      coreHash = Math.imul(coreHash ^ foldAscii(code), FNV_PRIME);
      coreHashAtLast = coreHash;
      coreLast = i;
      if ((cls & ALPHA) !== 0) tokenAlpha = true;
    } else if (coreFirst >= 0) {
      coreHash = Math.imul(coreHash ^ code, FNV_PRIME);
    }

    if (code === DOT) dotRun++;
    else {
      if (dotRun !== 0) {
        ellipses += (dotRun / 3) | 0;
        dotRun = 0;
      }
      if (code === HASH) hashes++;
      else if (code === ELLIPSIS) ellipses++;
    }

    if (lineFirst < 0) lineFirst = i;
    lineLast = i;
    if (paraFirst < 0) paraFirst = i;
    paraLast = i;
  }
  if (paraFirst >= 0) {
    paragraphs++;
    const paragraph = text.slice(paraFirst, paraLast + 1);
    if (paragraphSeen.has(paragraph)) {
      dupParagraphs++;
      dupParagraphChars += paragraph.length;
    }
  }

  return {
    chars: n,
    tokens,
    words: wordCount,
    wordChars,
    meanWordLength: ratio(wordChars, wordCount),
    alphaTokens,
    alphaWordRatio: ratio(alphaTokens, tokens),
    stopWords: stopCount,
    hashes,
    ellipses,
    symbolRatio: ratio(Math.max(hashes, ellipses), wordCount),
    lines,
    bulletLines,
    ellipsisLines,
    bulletLineRatio: ratio(bulletLines, lines),
    ellipsisLineRatio: ratio(ellipsisLines, lines),
    dupLines,
    dupLineChars,
    dupLineFrac: ratio(dupLines, lines),
    dupLineCharFrac: ratio(dupLineChars, n),
    paragraphs,
    dupParagraphs,
    dupParagraphChars,
    dupParaFrac: ratio(dupParagraphs, paragraphs),
    dupParaCharFrac: ratio(dupParagraphChars, n),
    wordIds: wordIds.subarray(0, wordCount),
    wordLengths: wordLengths.subarray(0, wordCount),
    vocabulary: words.size,
  };
}

/** The statistics alone (no word ids kept), e.g. to write as scores. */
export function textStats(text: string, stopWords: StopWords = defaultStopWords): TextStats {
  const { wordIds: _ids, wordLengths: _lengths, vocabulary: _vocabulary, ...stats } = analyzeText(text, stopWords);
  return stats;
}

// ---------------------------------------------------------------------------------------------------------
// N-grams over word ids.

let pairSlots = new Int32Array(1024);

/**
 * Word n-gram measures of one analysed text, for increasing n. Each level's n-gram ids are built from the
 * previous level's (the n-gram at i is the (n-1)-gram at i plus word i+n-1), so every n-gram is one
 * exact integer-pair lookup; no n-gram string is ever joined. An n-gram can only repeat where its
 * (n-1)-gram prefix repeats, so each level looks only at the positions still repeating; in natural text
 * that set shrinks fast and the long n-grams cost almost nothing.
 *
 * - topFraction(n): characters in the most frequent n-gram times its count, over the characters in all
 *   words. An n-gram that occurs once is not repetition: 0. Ties go to the n-gram with more characters.
 * - dupFraction(n): characters of the words covered by any occurrence of an n-gram that occurs more than
 *   once, each word counted once however many such n-grams overlap it, over the characters in all words.
 */
export class NgramLadder {
  private readonly wordIds: Int32Array;
  private readonly prefix: Float64Array;
  private readonly totalChars: number;
  /** Id of the current level's n-gram at each position; meaningful at active positions only. */
  private readonly ids: Int32Array;
  /** Positions, ascending, whose current-level n-gram occurs more than once. */
  private readonly active: Int32Array;
  private activeCount = 0;
  private readonly counts: Int32Array;
  private readonly keysA: Int32Array;
  private readonly keysB: Int32Array;
  private level = 0;

  constructor(analysis: Pick<TextAnalysis, "wordIds" | "wordLengths">) {
    const words = analysis.wordIds.length;
    this.wordIds = analysis.wordIds;
    this.prefix = new Float64Array(words + 1);
    for (let i = 0; i < words; i++) this.prefix[i + 1] = this.prefix[i]! + analysis.wordLengths[i]!;
    this.totalChars = this.prefix[words]!;
    this.ids = new Int32Array(words);
    this.active = new Int32Array(words);
    this.counts = new Int32Array(words);
    this.keysA = new Int32Array(words);
    this.keysB = new Int32Array(words);
  }

  topFraction(n: number): number {
    if (!this.reach(n)) return 0;
    const { ids, counts, active, prefix } = this;
    let bestCount = 1;
    let bestChars = 0;
    for (let k = 0; k < this.activeCount; k++) {
      const at = active[k]!;
      const count = counts[ids[at]!]!;
      if (count < bestCount) continue;
      const chars = prefix[at + n]! - prefix[at]!;
      if (count > bestCount || chars > bestChars) {
        bestCount = count;
        bestChars = chars;
      }
    }
    return (bestCount * bestChars) / this.totalChars;
  }

  dupFraction(n: number): number {
    if (!this.reach(n)) return 0;
    const { active, prefix } = this;
    let covered = 0;
    let coveredEnd = 0;
    for (let k = 0; k < this.activeCount; k++) {
      const i = active[k]!;
      const from = i > coveredEnd ? i : coveredEnd;
      covered += prefix[i + n]! - prefix[from]!;
      coveredEnd = i + n;
    }
    return covered / this.totalChars;
  }

  /** Builds levels up to n; false when level n has no repeated n-gram. */
  private reach(n: number): boolean {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`n-gram size must be a positive integer, got ${n}`);
    if (n > this.wordIds.length) return false;
    if (n < this.level) this.level = 0;
    if (this.level === 0) this.start();
    while (this.level < n && this.activeCount > 0) this.climb();
    return this.level === n && this.activeCount > 0;
  }

  private start(): void {
    const { wordIds, ids, counts, active } = this;
    const words = wordIds.length;
    counts.fill(0);
    for (let i = 0; i < words; i++) {
      const id = wordIds[i]!;
      ids[i] = id;
      counts[id]!++;
    }
    let kept = 0;
    for (let i = 0; i < words; i++) if (counts[ids[i]!]! > 1) active[kept++] = i;
    this.activeCount = kept;
    this.level = 1;
  }

  private climb(): void {
    const level = this.level;
    const last = this.wordIds.length - level - 1; // last position with a (level + 1)-gram
    const { ids, counts, active, keysA, keysB, wordIds } = this;
    let capacity = 64;
    while (capacity < this.activeCount * 2) capacity *= 2;
    if (pairSlots.length < capacity) pairSlots = new Int32Array(capacity);
    const slots = pairSlots;
    slots.fill(0, 0, capacity);
    const mask = capacity - 1;
    let distinct = 0;
    let candidates = 0;
    for (let k = 0; k < this.activeCount; k++) {
      const i = active[k]!;
      if (i > last) break;
      const a = ids[i]!;
      const b = wordIds[i + level]!;
      let slot = mix(Math.imul(a, 0x9e3779b1) ^ b) & mask;
      let id: number;
      for (;;) {
        const entry = slots[slot]!;
        if (entry === 0) {
          id = distinct++;
          keysA[id] = a;
          keysB[id] = b;
          counts[id] = 0;
          slots[slot] = id + 1;
          break;
        }
        if (keysA[entry - 1] === a && keysB[entry - 1] === b) {
          id = entry - 1;
          break;
        }
        slot = (slot + 1) & mask;
      }
      ids[i] = id;
      counts[id]!++;
      candidates++;
    }
    let kept = 0;
    for (let k = 0; k < candidates; k++) {
      const i = active[k]!;
      if (counts[ids[i]!]! > 1) active[kept++] = i;
    }
    this.activeCount = kept;
    this.level = level + 1;
  }
}

/** Top and duplicate n-gram fractions of a text at once, keyed by n. */
export function ngramFractions(
  analysis: Pick<TextAnalysis, "wordIds" | "wordLengths">,
  top: readonly number[],
  dup: readonly number[],
): { top: Record<number, number>; dup: Record<number, number> } {
  const ladder = new NgramLadder(analysis);
  const wanted = [...top.map((n) => ({ n, kind: "top" as const })), ...dup.map((n) => ({ n, kind: "dup" as const }))];
  wanted.sort((a, b) => a.n - b.n);
  const result = { top: {} as Record<number, number>, dup: {} as Record<number, number> };
  for (const { n, kind } of wanted) {
    if (kind === "top") result.top[n] = ladder.topFraction(n);
    else result.dup[n] = ladder.dupFraction(n);
  }
  return result;
}
