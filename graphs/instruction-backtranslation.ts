// Instruction backtranslation (Li et al. 2023, "Self-Alignment with Instruction Backtranslation", the
// Humpback model): unlabelled human-written documents become answers, and the model writes the
// instruction each document would answer (self-augmentation). The same model then grades each pair
// (self-curation) and only high-scoring pairs are kept.
//
// Score scale: the paper's curation prompt grades on a 5-point scale and keeps score 5 (its A5 set;
// A4 = score >= 4 also studied). rubricJudge grades 1-10 here; a 5-point score s covers 2s-1..2s on
// this scale, so the default threshold 9 keeps the paper's A5 set and 7 its A4 set. The paper iterates
// curation with the fine-tuned model; one pass with the endpoint's model is done here.
//
// Default input: data/instruction-backtranslation.jsonl (builtin:instruction-backtranslation.jsonl), 12 short how-to and explainer paragraphs
// written for this repository. Any JSONL/JSON/Parquet/Arrow file, plain-text files (.txt/.md, one
// document each), folder or glob works; `textField` names the document field.
//
// Output columns (data): instruction (generated), output (the document, unchanged).
// Scores: quality (1-10, the self-curation grade). Provenance: depth 1, origin synthetic, parents = the
// document; steps: backtranslate (model, tokens), self_curation (note: the grader's rationale).
// Rejects: document rules (too_few_words, ... from the Gopher set), refusal/unparseable answers,
// low_score (value = grade, threshold), exact_duplicate.
//
//   rxsynth run graphs/instruction-backtranslation.ts --set input=docs/ --set threshold=7 --out out/humpback
import { z } from "zod";
import { defineGraph, openSource } from "../src/index.ts";
import { exactDedup } from "../operators/dedup/exact-dedup.ts";
import { rubricJudge } from "../operators/filter/judge.ts";
import { heuristicFilter } from "../operators/filter/heuristics.ts";
import { generate } from "../operators/generate/generate.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords, text } from "./lib/llm-steps.ts";

export const defaults = {
  /** Unlabelled documents: JSONL/JSON/Parquet/Arrow/.txt/.md file, folder or glob. */
  input: "builtin:instruction-backtranslation.jsonl",
  /** Field holding the document (plain-text files give `text`). */
  textField: "text",
  /** Documents read from the input. */
  count: 1000,
  /** Documents shorter or longer than this (in words) are not used as answers. */
  minDocumentWords: 30,
  maxDocumentWords: 1500,
  /** Lowest self-curation grade kept, on 1-10 (9 = the paper's 5 of 5, 7 = its 4 of 5). */
  threshold: 9,
  /** Model on a real endpoint; "" = RXSYNTH_MODEL, else gpt-4o-mini. */
  model: "",
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  temperature: 0.7,
  concurrency: 32,
  seed: 42,
};

/** The self-curation rubric (ours, after the paper's 5-point grading instructions). */
export const CURATION_RUBRIC =
  "Grade how well the output serves as an AI assistant's answer to the instruction.\n" +
  "10: a perfect assistant answer: it addresses the instruction directly and completely, is well organised and self-contained, and holds nothing irrelevant.\n" +
  "7-8: written from an assistant's perspective and answers the instruction helpfully, though it could be more concise or focused.\n" +
  "5-6: answers the instruction but reads like a blog post, web page or personal account rather than an assistant's reply.\n" +
  "3-4: addresses the instruction only partly, or is mostly about something else.\n" +
  "1-2: does not answer the instruction, is promotional or navigational text, or the instruction does not fit the output.";

export function backtranslationMessages(document: string) {
  return [
    {
      role: "user" as const,
      content:
        "Below is a text that could be an AI assistant's answer to a user. Infer the single request the user made that this text answers best. " +
        "State it as the user would, in one or two sentences, without referring to 'the text' or 'the passage'.\n\n" +
        `Text:\n${document}\n\nReply as JSON: {"instruction": "..."}.`,
    },
  ];
}

export default defineGraph({
  name: "instruction-backtranslation",
  description: "Instruction backtranslation (Humpback, Li et al. 2023): documents -> the instruction each answers -> self-curation by an LLM grade",
  defaults,
  async build(options, env) {
    const source = firstRecords(await openSource(options.input), options.count);
    const endpoint = await openEndpoint(env, { model: options.model || undefined, seed: options.seed, concurrency: options.concurrency, price: options.price });
    const { llm } = endpoint;
    return {
      sources: [source],
      operators: [
        heuristicFilter({
          name: "document_heuristics",
          fields: options.textField,
          minWords: options.minDocumentWords,
          maxWords: options.maxDocumentWords,
        }),
        generate<{ instruction: string }>({
          llm,
          name: "backtranslate",
          prompt: (sample) => backtranslationMessages(text(sample, options.textField)),
          parse: z.strictObject({ instruction: z.string().min(1) }),
          write: (parsed, sample) => ({ instruction: parsed.instruction.trim(), output: text(sample, options.textField) }),
          schemaName: "backtranslation",
          temperature: options.temperature,
          seed: options.seed,
        }),
        rubricJudge({
          llm,
          name: "self_curation",
          rubric: CURATION_RUBRIC,
          fields: ["instruction", "output"],
          threshold: options.threshold,
          scale: [1, 10],
          scoreKey: "quality",
          seed: options.seed,
        }),
        exactDedup({ name: "dedup_instructions", fields: "instruction", shared: env.shared }),
      ],
      dispose: () => endpoint.dispose(),
      // Each sample is judged alone; dedup is shared by the workers of a scaled-out run.
      chunkable: true,
    };
  },
});
