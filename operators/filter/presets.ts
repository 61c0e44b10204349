import type { HeuristicFilterOptions } from "./heuristics.ts";

/**
 * Gopher quality and repetition rules with the published thresholds (Rae et al. 2021, table A1; the values
 * datatrove's GopherQualityFilter and GopherRepetitionFilter use). These are heuristicFilter's defaults.
 */
export const gopherPreset = {
  minWords: 50,
  maxWords: 100_000,
  minMeanWordLength: 3,
  maxMeanWordLength: 10,
  maxSymbolRatio: 0.1,
  maxBulletLines: 0.9,
  maxEllipsisLines: 0.3,
  minAlphaWords: 0.8,
  minStopWords: 2,
  maxDupLineFrac: 0.3,
  maxDupParaFrac: 0.3,
  maxDupLineCharFrac: 0.2,
  maxDupParaCharFrac: 0.2,
  maxTopNgram: { 2: 0.2, 3: 0.18, 4: 0.16 },
  maxDupNgram: { 5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.1 },
  bannedWords: null,
  rejectPunctuationStart: false,
  rejectNonAsciiStart: false,
} as const satisfies HeuristicFilterOptions;

/** Words whose presence means the task needs a modality a text model lacks (Self-Instruct's list, extended). */
export const UNSUPPORTED_MODALITY_WORDS: readonly string[] = [
  "image",
  "images",
  "graph",
  "graphs",
  "picture",
  "pictures",
  "file",
  "files",
  "map",
  "maps",
  "draw",
  "plot",
  "go to",
  "video",
  "audio",
  "music",
  "flowchart",
  "diagram",
];

/** Every Gopher rule off: the base for presets that turn on only the rules their data suits. */
export const noRules = {
  minWords: null,
  maxWords: null,
  minMeanWordLength: null,
  maxMeanWordLength: null,
  maxSymbolRatio: null,
  maxBulletLines: null,
  maxEllipsisLines: null,
  minAlphaWords: null,
  minStopWords: null,
  maxDupLineFrac: null,
  maxDupParaFrac: null,
  maxDupLineCharFrac: null,
  maxDupParaCharFrac: null,
  maxTopNgram: null,
  maxDupNgram: null,
} as const satisfies HeuristicFilterOptions;

/**
 * Short-form instructions, as Self-Instruct (Wang et al. 2022) filtered generated tasks: 3 to 150 words;
 * no image/plot/file/audio requests; not starting with punctuation or a non-ASCII character. The Gopher
 * long-form rules (word length, symbols, lines, stop words, repetition) are off: a one-line instruction
 * has no lines or paragraphs to repeat, and "List three primes." has no stop word yet is fine.
 * (Self-Instruct's own code kept more than 3 words; set `minWords: 4` for that.)
 */
export const instructionPreset = {
  name: "instruction_heuristics",
  fields: "instruction",
  ...noRules,
  minWords: 3,
  maxWords: 150,
  bannedWords: UNSUPPORTED_MODALITY_WORDS,
  rejectPunctuationStart: true,
  rejectNonAsciiStart: true,
} as const satisfies HeuristicFilterOptions;
