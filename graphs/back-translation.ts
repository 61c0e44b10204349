// Back-translation (Sennrich, Haddow and Birch 2016, "Improving Neural Machine Translation Models with
// Monolingual Data"): real sentences in one language get synthetic translations in another; a pair
// (synthetic translation -> real sentence) trains the reverse direction, whose target side is human text.
// Here the model also translates back, and pairs whose round trip drifts from the original are rejected,
// a common quality filter for back-translated data.
//
// Round-trip score: chrF (Popović 2015, as sacrebleu computes it: character 1- to 6-grams, whitespace
// removed, precision and recall averaged over the orders, F with beta = 2) between the original sentence
// and its round trip, on 0-1. Chosen over ROUGE-L or token F1 because a faithful round trip often comes
// back with other inflections or word forms ("bought" / "purchased", "colour" / "color", "runs" /
// "running"), which word-level measures count as full misses while character n-grams give partial
// credit; chrF also needs no tokenizer, so it works the same for any language pair.
//
// Default input: data/back-translation.jsonl (builtin:back-translation.jsonl), 20 everyday English sentences written for this
// repository.
//
// Output columns (data): text (original sentence, sourceLanguage), translation (pivotLanguage, synthetic),
// round_trip (translated back), source_language, pivot_language.
// Scores: chrf (0-1). Provenance: depth 1, origin synthetic, parents = the sentence; steps: translate,
// translate_back (both with model and tokens).
// Rejects: low_round_trip (value = chrF, threshold = minChrF), exact_duplicate, and bad LLM answers.
// Offline, the simulator's translations are unrelated placeholder text, so `simulatorMinChrF` (default
// 0: keep all, scores recorded) applies instead of minChrF, and the run says so in one line.
//
//   rxsynth run graphs/back-translation.ts --set pivotLanguage=French --set minChrF=0.6 --out out/bt
import { z } from "zod";
import { ConfigError, defineFilter, defineGraph, drop, openSource } from "../src/index.ts";
import { exactDedup } from "../operators/dedup/exact-dedup.ts";
import { generate } from "../operators/generate/generate.ts";
import { llmMap } from "../operators/generate/llm-map.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords, text } from "./lib/llm-steps.ts";

export const defaults = {
  /** Sentences in sourceLanguage: JSONL/JSON/Parquet/Arrow file, folder or glob. */
  input: "builtin:back-translation.jsonl",
  /** Field holding the sentence. */
  textField: "text",
  /** Sentences read from the input. */
  count: 1000,
  sourceLanguage: "English",
  pivotLanguage: "German",
  /** Lowest chrF (0-1) between the sentence and its round trip that is kept. */
  minChrF: 0.5,
  /** minChrF when the built-in simulator answers: its placeholder translations never round-trip. */
  simulatorMinChrF: 0,
  /** Model on a real endpoint; "" = RXSYNTH_MODEL, else gpt-4o-mini. */
  model: "",
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  /** Low: translation wants the likeliest rendering, not variety. */
  temperature: 0.2,
  concurrency: 32,
  seed: 42,
};

const CHRF_ORDER = 6;
const CHRF_BETA = 2;

function charNgrams(text: string, n: number): Map<string, number> {
  const chars = Array.from(text.replace(/\s+/g, ""));
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= chars.length; i++) {
    const gram = chars.slice(i, i + n).join("");
    counts.set(gram, (counts.get(gram) ?? 0) + 1);
  }
  return counts;
}

/**
 * chrF of a hypothesis against a reference, on 0-1 (sacrebleu's CHRF with char_order 6, word_order 0,
 * beta 2): n-gram precision and recall averaged over the orders both sides have, then F-beta.
 */
export function chrF(hypothesis: string, reference: string): number {
  let precision = 0;
  let recall = 0;
  let orders = 0;
  for (let n = 1; n <= CHRF_ORDER; n++) {
    const hyp = charNgrams(hypothesis, n);
    const ref = charNgrams(reference, n);
    let hypTotal = 0;
    let refTotal = 0;
    let matches = 0;
    for (const count of hyp.values()) hypTotal += count;
    for (const count of ref.values()) refTotal += count;
    if (hypTotal === 0 || refTotal === 0) continue;
    for (const [gram, count] of hyp) matches += Math.min(count, ref.get(gram) ?? 0);
    precision += matches / hypTotal;
    recall += matches / refTotal;
    orders++;
  }
  if (orders === 0) return 0;
  precision /= orders;
  recall /= orders;
  if (precision + recall === 0) return 0;
  const factor = CHRF_BETA * CHRF_BETA;
  return ((1 + factor) * precision * recall) / (factor * precision + recall);
}

const Translation = z.strictObject({ translation: z.string().min(1) });

export function translationMessages(sentence: string, from: string, to: string) {
  return [
    {
      role: "user" as const,
      content: `Translate this ${from} text into ${to}. Keep the meaning, tone and any names or numbers exactly; add nothing.\n\n${sentence}\n\nReply as JSON: {"translation": "..."}.`,
    },
  ];
}

export default defineGraph({
  name: "back-translation",
  description: "Back-translation (Sennrich et al. 2016): sentences -> pivot language -> back, pairs kept by round-trip chrF",
  defaults,
  async build(options, env) {
    for (const key of ["minChrF", "simulatorMinChrF"] as const) {
      if (!(options[key] >= 0 && options[key] <= 1)) throw new ConfigError(`back-translation: ${key} must be in [0, 1], got ${options[key]}`);
    }
    const source = firstRecords(await openSource(options.input), options.count);
    const endpoint = await openEndpoint(env, { model: options.model || undefined, seed: options.seed, concurrency: options.concurrency, price: options.price });
    const { llm } = endpoint;
    const { sourceLanguage, pivotLanguage } = options;
    const minChrF = endpoint.simulated ? options.simulatorMinChrF : options.minChrF;
    if (endpoint.simulated && minChrF !== options.minChrF) {
      env.log(`back-translation: placeholder translations cannot round-trip, so pairs are kept from chrF ${minChrF} (simulatorMinChrF), not ${options.minChrF}`);
    }
    return {
      sources: [source],
      operators: [
        generate<{ translation: string }>({
          llm,
          name: "translate",
          prompt: (sample) => translationMessages(text(sample, options.textField), sourceLanguage, pivotLanguage),
          parse: Translation,
          write: (parsed, sample) => ({
            text: text(sample, options.textField),
            translation: parsed.translation.trim(),
            source_language: sourceLanguage,
            pivot_language: pivotLanguage,
          }),
          schemaName: "translation",
          temperature: options.temperature,
          seed: options.seed,
        }),
        llmMap({
          llm,
          name: "translate_back",
          prompt: (sample) => translationMessages(text(sample, "translation"), pivotLanguage, sourceLanguage),
          parse: Translation,
          write: (parsed, sample) => ({ ...sample.data, round_trip: parsed.translation.trim() }),
          reads: ["translation"],
          writes: ["round_trip"],
          schemaName: "translation",
          temperature: options.temperature,
          seed: options.seed,
        }),
        defineFilter({
          name: "round_trip_filter",
          params: { minChrF, metric: "chrF", order: CHRF_ORDER, beta: CHRF_BETA },
          reads: ["text", "round_trip"],
          test(sample) {
            const score = chrF(text(sample, "round_trip"), text(sample, "text"));
            if (score < minChrF) return drop("low_round_trip", { value: score, threshold: minChrF });
            return { keep: true, scores: { chrf: score } };
          },
        }),
        exactDedup({ name: "dedup_translations", fields: "translation", shared: env.shared }),
      ],
      dispose: () => endpoint.dispose(),
      // Each sample is judged alone; dedup is shared by the workers of a scaled-out run.
      chunkable: true,
    };
  },
});
