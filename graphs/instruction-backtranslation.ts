// Instruction backtranslation (Li et al. 2023, "Self-Alignment with Instruction Backtranslation", the
// Humpback model): unlabelled human-written documents become answers, and the model writes the
// instruction each document would answer (self-augmentation). The same model then grades each pair
// (self-curation) and only high-scoring pairs are kept.
//
// As in the paper: self-curation grades on its 5-point scale, each point with the paper's cues (5: a
// perfect, focused assistant answer with expert content; 4: an assistant's complete answer with room to
// be more concise; 3: complete but written from someone else's perspective, a blog or web page; 2:
// addresses most of the request, not directly; 1: incomplete, off-topic, promotional or navigational), and
// keeps score 5 (its A5 set; threshold 4 gives A4). Each kept row carries the tag the paper fine-tunes
// augmented data with (`augmentation_tag`: "Answer with knowledge from web search"; seed data gets
// "Answer in the style of an AI Assistant"), so the data can be trained as the paper did.
// Deliberately different: the paper trains a backward model on seed (output -> instruction) pairs; here
// the endpoint's model is prompted with `shots` such pairs instead (human-written Self-Instruct seed tasks,
// data/self_instruct_seed_tasks.jsonl); and it iterates curation with the fine-tuned model, where one
// pass with the endpoint's model is done here.
//
// Default input: data/instruction-backtranslation.jsonl (builtin:instruction-backtranslation.jsonl), 12 short how-to and explainer paragraphs
// written for this repository. Any JSONL/JSON/Parquet/Arrow file, plain-text files (.txt/.md, one
// document each), folder or glob works; `textField` names the document field.
//
// Output columns (data): instruction (generated), output (the document, unchanged), augmentation_tag.
// Scores: quality (1-5, the self-curation grade). Provenance: depth 1, origin synthetic, parents = the
// document; steps: backtranslate (model, tokens), self_curation (note: the grader's rationale).
// Rejects: document rules (too_few_words, ... from the Gopher set), refusal/unparseable answers,
// low_score (value = grade, threshold), exact_duplicate.
//
//   rxsynth run graphs/instruction-backtranslation.ts --set input=docs/ --set threshold=4 --out out/humpback
import { z } from "zod";
import { ConfigError, defineGraph, openSource } from "../src/index.ts";
import { exactDedup } from "../operators/dedup/exact-dedup.ts";
import { rubricJudge } from "../operators/filter/judge.ts";
import { heuristicFilter } from "../operators/filter/heuristics.ts";
import { generate } from "../operators/generate/generate.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords, text, wordCount } from "./lib/llm-steps.ts";
import { readSeedTasks } from "./lib/self-instruct-steps.ts";

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
  /** Lowest self-curation grade kept, on the paper's 1-5 scale (5 = its A5 set, 4 = A4). */
  threshold: 5,
  /** Human-written (output -> instruction) examples in the backtranslation prompt, from the Self-Instruct seed tasks; 0 = none. */
  shots: 3,
  /** Model on a real endpoint; "" = RXSYNTH_MODEL, else gpt-4o-mini. */
  model: "",
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  temperature: 0.7,
  concurrency: 32,
  seed: 42,
};

/** The self-curation rubric: the paper's 5-point scale and its cues, in our words. */
export const CURATION_RUBRIC =
  "Grade whether the output is a good example of how an AI assistant should answer the instruction.\n" +
  "5: a perfect assistant answer: written on purpose to address the instruction, with no irrelevant sentence; expert, well written, logical, easy to follow and insightful.\n" +
  "4: written from an assistant's perspective with a clear focus on the instruction; complete, clear, well organised and self-contained, with minor room to be more concise or focused.\n" +
  "3: helpful and complete, but not written by an assistant: it reads like a blog post, web page or search result, with personal experience or opinion, comments or sharing prompts.\n" +
  "2: addresses most of what was asked, but not directly: e.g. a high-level method instead of the exact answer.\n" +
  "1: incomplete, vague, off-topic or not what was asked: missing content, a list that starts midway, an opening that repeats the question, another person's story, a forum reply, or promotional or navigational text.";

/** The tag the paper fine-tunes augmented (backtranslated) data with; seed data gets "Answer in the style of an AI Assistant". */
export const AUGMENTATION_TAG = "Answer with knowledge from web search";

/** A human-written pair shown to the model: the answer, then the request it answers. */
export interface BacktranslationShot {
  readonly output: string;
  readonly instruction: string;
}

/** The first `count` seed tasks that need no input and whose answer reads like a document (30-200 words). */
export async function backtranslationShots(count: number): Promise<BacktranslationShot[]> {
  if (count === 0) return [];
  const seeds = await readSeedTasks("builtin:self_instruct_seed_tasks.jsonl");
  return seeds
    .flatMap((task) => {
      const instance = task.instances[0];
      const words = instance ? wordCount(instance.output) : 0;
      return instance && instance.input === "" && words >= 30 && words <= 200 ? [{ output: instance.output, instruction: task.instruction }] : [];
    })
    .slice(0, count);
}

export function backtranslationMessages(document: string, shots: readonly BacktranslationShot[] = []) {
  const examples = shots.map((shot) => `Text:\n${shot.output}\n\nRequest: ${JSON.stringify({ instruction: shot.instruction })}`).join("\n\n---\n\n");
  return [
    {
      role: "user" as const,
      content:
        "Below is a text that could be an AI assistant's answer to a user. Infer the single request the user made that this text answers best. " +
        "State it as the user would, in one or two sentences, without referring to 'the text' or 'the passage'.\n\n" +
        (examples ? `Examples, each a text and the request it answers:\n\n${examples}\n\n---\n\n` : "") +
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
    if (!(Number.isInteger(options.shots) && options.shots >= 0)) throw new ConfigError(`instruction-backtranslation: shots must be an integer >= 0, got ${options.shots}`);
    const shots = await backtranslationShots(options.shots);
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
          prompt: (sample) => backtranslationMessages(text(sample, options.textField), shots),
          parse: z.strictObject({ instruction: z.string().min(1) }),
          write: (parsed, sample) => ({ instruction: parsed.instruction.trim(), output: text(sample, options.textField), augmentation_tag: AUGMENTATION_TAG }),
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
          scale: [1, 5],
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
