import { ConfigError, defineFilter, drop, type Operator, type Verdict } from "../../src/index.ts";
import { gopherPreset } from "./presets.ts";
import { fieldNames, fieldsParam, textReader, type TextFields } from "./text-fields.ts";
import { analyzeText, GOPHER_STOP_WORDS, NgramLadder, prepareStopWords } from "./text-stats.ts";

export type TopNgramSize = 2 | 3 | 4;
export type DupNgramSize = 5 | 6 | 7 | 8 | 9 | 10;

/**
 * Every reason heuristicFilter drops with, in the order the rules are checked (the first failing rule
 * names the drop). Thresholds are inclusive: a value exactly at a limit is kept, `min*` drops below it,
 * `max*` drops above it.
 */
export const HEURISTIC_REASONS = [
  "too_few_words", // words < minWords
  "too_many_words", // words > maxWords
  "unsupported_modality", // a bannedWords entry occurs as a whole word (case-insensitive)
  "starts_with_punctuation", // first non-space character is ASCII punctuation
  "non_ascii_start", // first non-space character is not ASCII
  "mean_word_length", // mean word length < minMeanWordLength or > maxMeanWordLength
  "symbol_ratio", // max("#" count, ellipsis count) / words > maxSymbolRatio
  "bullet_lines", // lines starting with a bullet / lines > maxBulletLines
  "ellipsis_lines", // lines ending in "..." or "…" / lines > maxEllipsisLines
  "alpha_words", // tokens with a letter / tokens < minAlphaWords
  "stop_words", // stop-word occurrences < minStopWords
  "dup_para_frac", // repeated paragraphs / paragraphs > maxDupParaFrac
  "dup_para_char_frac", // characters in repeated paragraphs / characters > maxDupParaCharFrac
  "dup_line_frac", // repeated lines / lines > maxDupLineFrac
  "dup_line_char_frac", // characters in repeated lines / characters > maxDupLineCharFrac
  "top_2gram", // see NgramLadder.topFraction, > maxTopNgram[n]
  "top_3gram",
  "top_4gram",
  "dup_5gram", // see NgramLadder.dupFraction, > maxDupNgram[n]
  "dup_6gram",
  "dup_7gram",
  "dup_8gram",
  "dup_9gram",
  "dup_10gram",
] as const;

export type HeuristicReason = (typeof HEURISTIC_REASONS)[number];

/** A threshold; null turns its rule off. */
type Limit = number | null;

export interface HeuristicFilterOptions {
  /** Operator name in metrics and rejects. Default "heuristic_filter". */
  readonly name?: string;
  /** Text to judge. Default "text". See TextFields. */
  readonly fields?: TextFields;
  /** Write each measured value to `scores` (under `scorePrefix` + the rule's reason) for kept samples. Default false. */
  readonly scores?: boolean;
  /** Default "heuristics.". */
  readonly scorePrefix?: string;
  /** Default 50. */
  readonly minWords?: Limit;
  /** Default 100,000. */
  readonly maxWords?: Limit;
  /** Default 3. */
  readonly minMeanWordLength?: Limit;
  /** Default 10. */
  readonly maxMeanWordLength?: Limit;
  /** Default 0.1. */
  readonly maxSymbolRatio?: Limit;
  /** Default 0.9. */
  readonly maxBulletLines?: Limit;
  /** Default 0.3. */
  readonly maxEllipsisLines?: Limit;
  /** Default 0.8. */
  readonly minAlphaWords?: Limit;
  /** Default 2. */
  readonly minStopWords?: Limit;
  /** Default GOPHER_STOP_WORDS (the, be, to, of, and, that, have, with); matched ignoring case. */
  readonly stopWords?: readonly string[];
  /** Default 0.3. */
  readonly maxDupLineFrac?: Limit;
  /** Default 0.3. */
  readonly maxDupParaFrac?: Limit;
  /** Default 0.2. */
  readonly maxDupLineCharFrac?: Limit;
  /** Default 0.2. */
  readonly maxDupParaCharFrac?: Limit;
  /** The n-gram sizes listed are checked (others are off). Default {2: 0.2, 3: 0.18, 4: 0.16}. */
  readonly maxTopNgram?: Readonly<Partial<Record<TopNgramSize, Limit>>> | null;
  /** The n-gram sizes listed are checked (others are off). Default {5: 0.15, 6: 0.14, ..., 10: 0.1}. */
  readonly maxDupNgram?: Readonly<Partial<Record<DupNgramSize, Limit>>> | null;
  /** Whole words or phrases that drop a sample as `unsupported_modality`. Default null (off). */
  readonly bannedWords?: readonly string[] | null;
  /** Drop text whose first character is ASCII punctuation. Default false. */
  readonly rejectPunctuationStart?: boolean;
  /** Drop text whose first character is not ASCII. Default false. */
  readonly rejectNonAsciiStart?: boolean;
}

/** heuristicFilter's defaults: the Gopher rules on a `text` field. */
export const HEURISTIC_DEFAULTS = {
  name: "heuristic_filter",
  fields: "text",
  scores: false,
  scorePrefix: "heuristics.",
  stopWords: GOPHER_STOP_WORDS,
  ...gopherPreset,
} as const satisfies HeuristicFilterOptions;

type Resolved = Required<Omit<HeuristicFilterOptions, "fields">>;

const ASCII_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

function resolve(options: HeuristicFilterOptions): Resolved {
  const merged = { ...HEURISTIC_DEFAULTS, ...options } as Resolved;
  const limits: (keyof Resolved)[] = [
    "minWords",
    "maxWords",
    "minMeanWordLength",
    "maxMeanWordLength",
    "maxSymbolRatio",
    "maxBulletLines",
    "maxEllipsisLines",
    "minAlphaWords",
    "minStopWords",
    "maxDupLineFrac",
    "maxDupParaFrac",
    "maxDupLineCharFrac",
    "maxDupParaCharFrac",
  ];
  for (const key of limits) checkLimit(key, merged[key]);
  for (const [table, sizes] of [
    ["maxTopNgram", [2, 3, 4]],
    ["maxDupNgram", [5, 6, 7, 8, 9, 10]],
  ] as const) {
    const entries = merged[table];
    if (entries === null) continue;
    if (typeof entries !== "object") throw new ConfigError(`heuristicFilter: ${table} must be an object of n -> limit, or null`);
    for (const [n, limit] of Object.entries(entries)) {
      if (!(sizes as readonly number[]).includes(Number(n))) {
        throw new ConfigError(`heuristicFilter: ${table} takes n-gram sizes ${sizes.join(", ")}; got ${n}`);
      }
      checkLimit(`${table}[${n}]`, limit);
    }
  }
  for (const [min, max] of [
    ["minWords", "maxWords"],
    ["minMeanWordLength", "maxMeanWordLength"],
  ] as const) {
    const low = merged[min];
    const high = merged[max];
    if (low !== null && high !== null && low > high) {
      throw new ConfigError(`heuristicFilter: ${min} (${low}) is above ${max} (${high})`);
    }
  }
  if (!Array.isArray(merged.stopWords)) throw new ConfigError("heuristicFilter: stopWords must be an array of words");
  if (merged.bannedWords !== null && !Array.isArray(merged.bannedWords)) {
    throw new ConfigError("heuristicFilter: bannedWords must be an array of words, or null");
  }
  return merged;
}

function checkLimit(key: string, value: unknown): void {
  if (value === null) return;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(`heuristicFilter: ${key} must be a non-negative number, or null to turn the rule off; got ${String(value)}`);
  }
}

function bannedPattern(words: readonly string[]): RegExp | null {
  if (words.length === 0) return null;
  const alternatives = words.map((word) =>
    word
      .trim()
      .split(/\s+/)
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join("\\s+"),
  );
  return new RegExp(`\\b(?:${alternatives.join("|")})\\b`, "i");
}

/** Index of the first non-whitespace character, or -1. */
function firstVisible(text: string): number {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 32 && !/\s/.test(text[i]!)) return i;
  }
  return -1;
}

/** The options as params: everything serialisable, the fields by name (or a function by its source). */
function paramsOf(resolved: Resolved, fields: TextFields): Record<string, unknown> {
  return { ...resolved, fields: fieldsParam(fields) };
}

/**
 * The heuristic decision on a text, without a run: `compileHeuristics(options)(text)` returns what
 * heuristicFilter would for a sample with that text. Options are resolved once, here.
 */
export function compileHeuristics(options: HeuristicFilterOptions = {}): (text: string) => Verdict {
  const o = resolve(options);
  const stopWords = prepareStopWords(o.stopWords);
  const banned = o.bannedWords === null ? null : bannedPattern(o.bannedWords);
  const top = o.maxTopNgram === null ? [] : sizesOf(o.maxTopNgram);
  const dup = o.maxDupNgram === null ? [] : sizesOf(o.maxDupNgram);
  const wantScores = o.scores;
  const prefix = o.scorePrefix;

  return (text) => {
    const scores: Record<string, number> | undefined = wantScores ? {} : undefined;
    // A rule's verdict; records the value as a score while the sample may still be kept.
    const check = (reason: HeuristicReason, value: number, min: Limit, max: Limit) => {
      if (min !== null && value < min) return drop(reason, { value, threshold: min });
      if (max !== null && value > max) return drop(reason, { value, threshold: max });
      if (scores) scores[prefix + reason] = value;
      return undefined;
    };

    const s = analyzeText(text, stopWords);
    if (o.minWords !== null && s.words < o.minWords) return drop("too_few_words", { value: s.words, threshold: o.minWords });
    if (o.maxWords !== null && s.words > o.maxWords) return drop("too_many_words", { value: s.words, threshold: o.maxWords });
    if (scores && (o.minWords !== null || o.maxWords !== null)) scores[`${prefix}words`] = s.words;

    if (banned) {
      const match = banned.exec(text);
      if (match) return drop("unsupported_modality", { message: match[0].toLowerCase().replace(/\s+/g, " ") });
    }
    if (o.rejectPunctuationStart || o.rejectNonAsciiStart) {
      const at = firstVisible(text);
      const first = at < 0 ? "" : String.fromCodePoint(text.codePointAt(at)!);
      if (o.rejectPunctuationStart && first.length === 1 && ASCII_PUNCTUATION.includes(first)) {
        return drop("starts_with_punctuation", { message: first });
      }
      if (o.rejectNonAsciiStart && first.length > 0 && first.charCodeAt(0) >= 128) {
        return drop("non_ascii_start", { message: first });
      }
    }

    let verdict =
      (o.minMeanWordLength !== null || o.maxMeanWordLength !== null
        ? check("mean_word_length", s.meanWordLength, o.minMeanWordLength, o.maxMeanWordLength)
        : undefined) ??
      (o.maxSymbolRatio !== null ? check("symbol_ratio", s.symbolRatio, null, o.maxSymbolRatio) : undefined) ??
      (o.maxBulletLines !== null ? check("bullet_lines", s.bulletLineRatio, null, o.maxBulletLines) : undefined) ??
      (o.maxEllipsisLines !== null ? check("ellipsis_lines", s.ellipsisLineRatio, null, o.maxEllipsisLines) : undefined) ??
      (o.minAlphaWords !== null ? check("alpha_words", s.alphaWordRatio, o.minAlphaWords, null) : undefined) ??
      (o.minStopWords !== null ? check("stop_words", s.stopWords, o.minStopWords, null) : undefined) ??
      (o.maxDupParaFrac !== null ? check("dup_para_frac", s.dupParaFrac, null, o.maxDupParaFrac) : undefined) ??
      (o.maxDupParaCharFrac !== null ? check("dup_para_char_frac", s.dupParaCharFrac, null, o.maxDupParaCharFrac) : undefined) ??
      (o.maxDupLineFrac !== null ? check("dup_line_frac", s.dupLineFrac, null, o.maxDupLineFrac) : undefined) ??
      (o.maxDupLineCharFrac !== null ? check("dup_line_char_frac", s.dupLineCharFrac, null, o.maxDupLineCharFrac) : undefined);
    if (verdict) return verdict;

    if (top.length > 0 || dup.length > 0) {
      const ladder = new NgramLadder(s);
      for (const [n, limit] of top) {
        verdict = check(`top_${n}gram` as HeuristicReason, ladder.topFraction(n), null, limit);
        if (verdict) return verdict;
      }
      for (const [n, limit] of dup) {
        verdict = check(`dup_${n}gram` as HeuristicReason, ladder.dupFraction(n), null, limit);
        if (verdict) return verdict;
      }
    }
    return scores ? { keep: true, scores } : true;
  };
}

function sizesOf(table: Readonly<Record<number, Limit | undefined>>): [number, number][] {
  return Object.entries(table)
    .filter((entry): entry is [string, number] => typeof entry[1] === "number")
    .map(([n, limit]) => [Number(n), limit] as [number, number])
    .sort((a, b) => a[0] - b[0]);
}

/**
 * Drops text that fails Gopher-style quality and repetition heuristics (defaults: `gopherPreset`), or, with
 * `instructionPreset`, Self-Instruct's rules for short instructions. Every threshold is an option; null
 * turns a rule off.
 *
 * Reads: `fields` (default `text`). Writes: `scores[scorePrefix + reason]` when `scores: true`.
 * Drop reasons: HEURISTIC_REASONS, each with `value` and `threshold` (the instruction rules carry the
 * offending word or character in `message` instead).
 *
 * @example
 * graph.pipe(heuristicFilter({ fields: "output" }), heuristicFilter({ ...instructionPreset }))
 */
export function heuristicFilter(options: HeuristicFilterOptions = {}): Operator {
  const fields = options.fields ?? HEURISTIC_DEFAULTS.fields;
  const judge = compileHeuristics(options);
  const resolved = resolve(options);
  const read = textReader(fields);
  return defineFilter({
    name: resolved.name,
    version: "1",
    params: paramsOf(resolved, fields),
    reads: fieldNames(fields),
    test: (sample) => judge(read(sample)),
  });
}
