// Curate: the cleaning pass run over an existing text corpus before training, as in datatrove's FineWeb
// pipeline (Penedo et al. 2024, "The FineWeb Datasets"): document-quality rules, then exact and
// near-duplicate removal. No LLM is used; every document is kept unchanged or rejected with its reason.
//
// Technique: the Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models: Methods,
// Analysis & Insights from Training Gopher", table A1; datatrove's GopherQualityFilter and
// GopherRepetitionFilter) drop documents too short or too long, symbol-, bullet- or ellipsis-heavy, with
// too few stop words, or with repeated lines, paragraphs and n-grams. Exact duplicates are found on the
// normalised text (lowercase, whitespace collapsed). Near-duplicates are found with MinHash over word
// 5-gram shingles and LSH banding (Broder 1997; Leskovec et al., "Mining of Massive Datasets", ch. 3), as
// datatrove's MinhashDedup does for FineWeb: a document whose estimated Jaccard similarity to a kept one
// reaches `threshold` is rejected, the first of a group kept.
//
// Default input: data/curate.jsonl (builtin:curate.jsonl), 62 short web-like paragraphs written for this
// repository, with planted exact duplicates, near-duplicates and low-quality pages. Any
// JSONL/JSON/Parquet/Arrow file, plain-text files (.txt/.md, one document each), folder or glob works;
// `textField` names the document field.
//
// Output columns (data): the document's fields, unchanged. Provenance: depth 0, no steps.
// Diversity of what was kept: diversity-summary.json and diversity.jsonl (distinct-1/2/3, vocabulary,
// lengths, leading words); in a scaled-out run `rxsynth status` shows the run's distinct n-gram counts.
// Rejects: document rules (too_few_words, too_many_words, mean_word_length, symbol_ratio, bullet_lines,
// ellipsis_lines, alpha_words, stop_words, dup_para_frac, dup_line_frac, ..., top_2gram, dup_5gram, ...:
// see HEURISTIC_REASONS, each with value and threshold), exact_duplicate (duplicate_of = the kept
// document), near_duplicate (duplicate_of = the kept document, value = estimated Jaccard, threshold).
//
// Scaled out (`rxsynth submit curate` + `rxsynth worker`), both dedup indexes are one in Redis shared by
// every worker. Exact dedup keeps the same number of documents as `rxsynth run`, though which copy of a
// text is kept depends on timing. Near-dedup keeps the first-arriving copy of a near-duplicate cluster, so
// which copies are kept may differ from `rxsynth run` (and, for a chain a ~ b ~ c with a !~ c, how many),
// while no kept pair's estimated similarity reaches the threshold either way (MinHash estimates: a pair
// whose exact Jaccard is a little above it can be kept, by one process as by many).
//
//   rxsynth run curate --set input=crawl/*.jsonl --set textField=content --set threshold=0.7 --out out/curated
//   rxsynth submit curate --set input=/shared/crawl --run crawl-1 --out /shared/curated --redis redis://queue:6379
import { defineGraph, openSource } from "../src/index.ts";
import { exactDedup } from "../operators/dedup/exact-dedup.ts";
import { nearDedup } from "../operators/dedup/near-dedup.ts";
import { diversityTracker } from "../operators/diversity/diversity-tracker.ts";
import { heuristicFilter } from "../operators/filter/heuristics.ts";
import { gopherPreset } from "../operators/filter/presets.ts";
import { firstRecords } from "./lib/llm-steps.ts";

export const defaults = {
  /** The corpus: JSONL/JSON/Parquet/Arrow/.txt/.md file, folder or glob. */
  input: "builtin:curate.jsonl",
  /** Field holding the document (plain-text files give `text`). */
  textField: "text",
  /** Documents read from the input, the first ones; 0 reads them all. */
  count: 0,
  /** Documents shorter or longer than this (in words) are rejected (Gopher: 50 and 100,000). */
  minWords: gopherPreset.minWords as number,
  maxWords: gopherPreset.maxWords as number,
  /** Estimated Jaccard similarity of word 5-gram sets at or above which a document is a near-duplicate (nearDedup's default). */
  threshold: 0.8,
};

export default defineGraph({
  name: "curate",
  description: "Corpus curation (datatrove / FineWeb style): Gopher quality rules, exact dedup, MinHash LSH near-dedup; no LLM",
  defaults,
  async build(options, env) {
    const source = await openSource(options.input);
    return {
      sources: [options.count === 0 ? source : firstRecords(source, options.count)],
      operators: [
        heuristicFilter({ name: "document_heuristics", fields: options.textField, minWords: options.minWords, maxWords: options.maxWords }),
        exactDedup({ name: "exact_dedup", fields: options.textField, shared: env.shared }),
        nearDedup({ name: "near_dedup", fields: options.textField, threshold: options.threshold, shared: env.shared }),
        // What was kept: distinct 1/2/3-grams, lengths, leading words (diversity-summary.json); scaled out,
        // the distinct counts of the whole run are HyperLogLogs in Redis that `rxsynth status` shows.
        diversityTracker({ name: "diversity", fields: options.textField, shared: env.shared }),
      ],
      // Each document is judged alone; both dedup indexes are shared by the workers of a scaled-out run.
      chunkable: true,
    };
  },
});
