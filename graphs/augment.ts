// Data augmentation of labelled examples with an LLM: paraphrases, style transfer (formal, casual,
// technical) and seed expansion (new examples of the same label in the same domain, after LAMBADA,
// Anaby-Tavor et al. 2020, and the label-conditioned generation of Kumar et al. 2020, "Data Augmentation
// using Pre-trained Transformer Models"). Every variant keeps its example's label. Variants that are near
// copies of their original (ROUGE-L at or above `maxSimilarity`) are rejected, and with `checkLabel` a
// zero-shot classification of each variant must give back the label, as LAMBADA's filter does.
//
// Default input: data/augment.jsonl (builtin:augment.jsonl), 18 short product-review sentences labelled positive,
// negative or neutral, written for this repository. Any JSONL/JSON/Parquet/Arrow file with a text and a
// label field works (set `labels` to its label set).
//
// Output columns (data): text, label, augmentation ("original", "paraphrase", "style:<name>",
// "expansion"), original_text (the example it came from).
// Provenance: originals depth 0 (origin human); variants depth 1, origin synthetic, parents = the
// example; step augment (note: the kind, model, tokens).
// Rejects: near_copy (value = ROUGE-L, threshold), label_changed (message: what the classifier said),
// exact_duplicate, and bad LLM answers.
//
//   rxsynth run graphs/augment.ts --set paraphrases=3 --set 'styles=["formal","casual"]' --out out/augment
import { z } from "zod";
import { ConfigError, defineAsyncFilter, defineFanOut, defineFilter, defineGraph, drop, openSource, type Child, type DropVerdict } from "../src/index.ts";
import { exactDedup } from "../operators/dedup/exact-dedup.ts";
import { rougeL } from "../operators/diversity/rouge.ts";
import { asker, type Answer } from "../operators/generate/llm-map.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords, text } from "./lib/llm-steps.ts";

export const defaults = {
  /** Labelled examples: JSONL/JSON/Parquet/Arrow file, folder or glob. */
  input: "builtin:augment.jsonl",
  textField: "text",
  labelField: "label",
  /** The label set (for the label check and the expansion prompt). */
  labels: ["positive", "negative", "neutral"] as string[],
  /** Examples read from the input. */
  count: 1000,
  /** Paraphrases per example. */
  paraphrases: 2,
  /** Styles to rewrite each example in (one variant each). */
  styles: ["formal", "casual", "technical"] as string[],
  /** New examples of the same label per example. */
  expansions: 2,
  /** Keep the original examples in the output. */
  keepOriginals: true,
  /** ROUGE-L to the original at or above which a variant is a near copy. */
  maxSimilarity: 0.8,
  /** Classify each variant zero-shot and drop it when the label comes back different. */
  checkLabel: true,
  /** Model on a real endpoint; "" = RXSYNTH_MODEL, else gpt-4o-mini. */
  model: "",
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  /** High: variants should differ from each other. */
  temperature: 0.9,
  concurrency: 32,
  seed: 42,
};

const STYLE_HINTS: Record<string, string> = {
  formal: "formal written register, as in a business letter: no contractions or slang",
  casual: "casual spoken register, as in a text message to a friend",
  technical: "technical register, with precise terms and measurable details, as in a specification or engineering review",
};

interface Plan {
  readonly augmentation: string;
  readonly count: number;
  readonly instruction: (example: string, label: string, labels: readonly string[]) => string;
}

function plans(options: typeof defaults): Plan[] {
  const list: Plan[] = [];
  if (options.paraphrases > 0) {
    list.push({
      augmentation: "paraphrase",
      count: options.paraphrases,
      instruction: (example) =>
        `Paraphrase the text below ${options.paraphrases} times. Each paraphrase keeps the meaning and the sentiment exactly but uses different words and sentence structure from the text and from the other paraphrases.\n\nText: ${example}`,
    });
  }
  for (const style of options.styles) {
    list.push({
      augmentation: `style:${style}`,
      count: 1,
      instruction: (example) =>
        `Rewrite the text below in a ${STYLE_HINTS[style] ?? `${style} style`}. Keep its meaning and sentiment exactly.\n\nText: ${example}`,
    });
  }
  if (options.expansions > 0) {
    list.push({
      augmentation: "expansion",
      count: options.expansions,
      instruction: (example, label, labels) =>
        `Here is an example labelled "${label}" (labels: ${labels.join(", ")}):\n${example}\n\n` +
        `Write ${options.expansions} new, different examples of the same kind and domain that clearly deserve the label "${label}". Do not reuse its specific details.`,
    });
  }
  return list;
}

export default defineGraph({
  name: "augment",
  description: "Augment labelled examples: paraphrase, style transfer, seed expansion; label kept, near copies rejected",
  defaults,
  async build(options, env) {
    for (const key of ["paraphrases", "expansions"] as const) {
      if (!Number.isInteger(options[key]) || options[key] < 0) throw new ConfigError(`augment: ${key} must be an integer >= 0, got ${options[key]}`);
    }
    if (!(options.maxSimilarity > 0 && options.maxSimilarity <= 1)) throw new ConfigError(`augment: maxSimilarity must be in (0, 1], got ${options.maxSimilarity}`);
    if (options.checkLabel && options.labels.length < 2) throw new ConfigError("augment: checkLabel needs `labels`, the label set (at least two)");
    const kinds = plans(options);
    if (kinds.length === 0 && !options.keepOriginals) throw new ConfigError("augment: nothing to do: no paraphrases, styles or expansions, and keepOriginals is off");
    const source = firstRecords(await openSource(options.input), options.count);
    const endpoint = await openEndpoint(env, { model: options.model || undefined, seed: options.seed, concurrency: options.concurrency, price: options.price });
    const { llm } = endpoint;
    const askers = new Map(
      kinds.map((plan) => [
        plan.augmentation,
        asker({
          llm,
          parse: z.strictObject({ texts: z.array(z.string().min(1)).min(plan.count).max(plan.count) }),
          temperature: options.temperature,
          seed: options.seed,
          schemaName: "variants",
        }),
      ]),
    );
    const classify = asker({
      llm,
      parse: z.strictObject({ label: z.enum(options.labels as [string, ...string[]]) }),
      temperature: 0,
      seed: options.seed,
      schemaName: "label",
    });

    const augment = defineFanOut({
      name: "augment",
      params: { kinds: kinds.map((plan) => [plan.augmentation, plan.count]), keepOriginals: options.keepOriginals, ask: [...askers.values()][0]?.params ?? null },
      reads: [options.textField, options.labelField],
      writes: ["text", "label", "augmentation", "original_text"],
      concurrency: llm.concurrency,
      async expand(sample, _state, context, signal) {
        const example = text(sample, options.textField);
        const label = text(sample, options.labelField);
        const answers = await Promise.all(
          kinds.map(
            async (plan): Promise<[Plan, Answer<{ texts: string[] }>]> => [
              plan,
              await askers.get(plan.augmentation)!.ask([{ role: "user", content: `${plan.instruction(example, label, options.labels)}\n\nReply as JSON: {"texts": [...]}.` }], context, signal),
            ],
          ),
        );
        const children: (Child | DropVerdict)[] = [];
        if (options.keepOriginals) {
          children.push({ data: { text: example, label, augmentation: "original", original_text: example }, generation: "same", step: { note: "original" } });
        }
        for (const [plan, answer] of answers) {
          if (!answer.ok) {
            children.push(answer.verdict);
            continue;
          }
          for (const variant of answer.value.texts) {
            children.push({
              data: { text: variant.trim(), label, augmentation: plan.augmentation, original_text: example },
              step: { ...answer.step, note: plan.augmentation },
            });
          }
        }
        return children;
      },
    });

    const nearCopy = defineFilter({
      name: "near_copy_filter",
      params: { maxSimilarity: options.maxSimilarity, metric: "rougeL" },
      reads: ["text", "original_text", "augmentation"],
      test(sample) {
        if (sample.data.augmentation === "original") return true;
        const similarity = rougeL(text(sample, "text"), text(sample, "original_text"));
        return similarity >= options.maxSimilarity ? drop("near_copy", { value: similarity, threshold: options.maxSimilarity }) : true;
      },
    });

    const labelCheck = defineAsyncFilter({
      name: "check_label",
      params: { ...classify.params, labels: options.labels },
      reads: ["text", "label"],
      concurrency: llm.concurrency,
      async test(sample, _state, context, signal) {
        if (sample.data.augmentation === "original") return true;
        const answer = await classify.ask(
          [
            {
              role: "user",
              content: `Classify the text into exactly one of these labels: ${options.labels.join(", ")}.\n\nText: ${text(sample, "text")}\n\nReply as JSON: {"label": "..."}.`,
            },
          ],
          context,
          signal,
        );
        if (!answer.ok) return answer.verdict;
        const expected = text(sample, "label");
        return answer.value.label === expected ? true : drop("label_changed", { message: `labelled ${expected}, classified as ${answer.value.label}` });
      },
    });

    return {
      sources: [source],
      operators: [augment, nearCopy, ...(options.checkLabel ? [labelCheck] : []), exactDedup({ name: "dedup_texts", fields: "text", shared: env.shared })],
      dispose: () => endpoint.dispose(),
      // Each sample is judged alone; dedup is shared by the workers of a scaled-out run.
      chunkable: true,
    };
  },
});
