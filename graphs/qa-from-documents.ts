// Question-answer pairs grounded in documents: documents are cut into overlapping chunks by token count
// (the tokenizer of the model in use, through the LLM layer), the model writes question-answer pairs
// about each chunk as structured output, and a judge rejects answers the chunk does not support (the
// generate-then-verify recipe of synthetic QA for retrieval and reading comprehension, e.g. Alberti et al.
// 2019 "Synthetic QA Corpora Generation with Roundtrip Consistency", with an LLM grader as the check).
//
// Chunking: whitespace-delimited words are packed into chunks of at most `chunkTokens` tokens, cut at
// the end of a sentence when one falls in the second half of the chunk, and each chunk starts with the
// last words of the one before, at most `overlapTokens` tokens of them, so a fact cut at a boundary is
// whole in one of the two. Chunks never split a word.
//
// Default input: data/qa-from-documents.jsonl (builtin:qa-from-documents.jsonl), three explainer articles (250-300 words: heat
// pumps, the printing press, sleep) written for this repository. Any JSONL/JSON/Parquet/Arrow file, or
// plain-text files (.txt/.md, one document each), folder or glob works.
//
// Output columns (data): question, answer, context (the chunk's text), chunk_id ("<document id>#<n>"),
// document_id, title ("" when the input has none).
// Scores: grounding (1-10, the judge's grade). Provenance: chunks are same-generation children of the
// document (depth 0, origin human; step chunk with the token span in its note); pairs are next-generation
// children of their chunk (depth 1, origin synthetic, parents = [the chunk's sample id]); steps chunk,
// generate_qa (note: the chunk id), grounding_judge (note: the judge's rationale).
// Rejects: empty_document, low_score (value = grade, threshold), exact_duplicate, and bad LLM answers.
//
//   rxsynth run graphs/qa-from-documents.ts --set input=manuals/ --set chunkTokens=400 --out out/qa
import { z } from "zod";
import { ConfigError, defineFanOut, defineGraph, drop, openSource, type Child } from "../src/index.ts";
import { countTokens } from "../src/llm/index.ts";
import { exactDedup } from "../operators/dedup/exact-dedup.ts";
import { rubricJudge } from "../operators/filter/judge.ts";
import { asker } from "../operators/generate/llm-map.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords, text } from "./lib/llm-steps.ts";

export const defaults = {
  /** Documents: JSONL/JSON/Parquet/Arrow/.txt/.md file, folder or glob. */
  input: "builtin:qa-from-documents.jsonl",
  textField: "text",
  /** Field with the document's title, shown to the model when present. */
  titleField: "title",
  /** Documents read from the input. */
  count: 1000,
  /** Most tokens in a chunk. */
  chunkTokens: 160,
  /** Most tokens a chunk repeats from the one before. */
  overlapTokens: 32,
  /** Question-answer pairs asked for per chunk. */
  questionsPerChunk: 3,
  /** Lowest grounding grade (1-10) kept. */
  threshold: 7,
  /** Model on a real endpoint; "" = RXSYNTH_MODEL, else gpt-4o-mini. */
  model: "",
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  temperature: 0.7,
  concurrency: 32,
  seed: 42,
};

export interface Chunk {
  readonly text: string;
  /** Tokens of `text`, counted whole. */
  readonly tokens: number;
  /** Index of the chunk's first and one past its last word in the document. */
  readonly firstWord: number;
  readonly endWord: number;
}

/**
 * Cuts `text` into chunks of at most `chunkTokens` tokens (a single longer word is a chunk of its own),
 * preferring to end at a sentence in the chunk's second half, each repeating at most `overlapTokens`
 * tokens of words from the end of the one before.
 */
export function chunkByTokens(text: string, chunkTokens: number, overlapTokens: number, model?: string): Chunk[] {
  // Each word carries the whitespace before it, as the tokenizer's pre-split does, so counts nearly add
  // up; a span is counted whole once chosen, since trimming its first word's space can add a token.
  const words = text.match(/\s*\S+/g) ?? [];
  const counts = words.map((word) => countTokens(word, model));
  const span = (from: number, to: number) => words.slice(from, to).join("").trim();
  const chunks: Chunk[] = [];
  let start = 0;
  while (start < words.length) {
    let end = start;
    let tokens = 0;
    while (end < words.length && (end === start || tokens + counts[end]! <= chunkTokens)) tokens += counts[end++]!;
    if (end < words.length) {
      // Ending at a sentence is worth a shorter chunk, down to half its length.
      for (let cut = end; cut > start + (end - start) / 2; cut--) {
        if (/[.!?]["')\]]*$/.test(words[cut - 1]!)) {
          end = cut;
          break;
        }
      }
    }
    while (end - start > 1 && countTokens(span(start, end), model) > chunkTokens) end--;
    const body = span(start, end);
    chunks.push({ text: body, tokens: countTokens(body, model), firstWord: start, endWord: end });
    if (end >= words.length) break;
    let next = end;
    let overlap = 0;
    while (next - 1 > start && overlap + counts[next - 1]! <= overlapTokens) overlap += counts[--next]!;
    while (next < end && countTokens(span(next, end), model) > overlapTokens) next++;
    start = next;
  }
  return chunks;
}

/** The grounding rubric for the judge. */
export const GROUNDING_RUBRIC =
  "Judge whether the answer is supported by the context and answers the question.\n" +
  "10: the question is answerable from the context alone, and every claim in the answer is stated in the context or follows directly from it.\n" +
  "7-9: supported and correct, with at most a harmless rewording or an obvious inference.\n" +
  "4-6: partly supported: some claim is missing from the context, or the answer is incomplete.\n" +
  "1-3: the answer contradicts the context, relies on outside knowledge, or does not answer the question.";

const Pairs = (count: number) =>
  z.strictObject({
    pairs: z.array(z.strictObject({ question: z.string().min(1), answer: z.string().min(1) })).min(1).max(count),
  });

export function qaMessages(context: string, title: string, count: number) {
  return [
    {
      role: "user" as const,
      content:
        `Write ${count} question-answer pairs about the passage below, for training a reading-comprehension assistant. ` +
        "Each question must be answerable from the passage alone and make sense without seeing it (name the subject instead of saying 'the passage'). " +
        "Each answer is one to three sentences and uses only facts stated in the passage. Cover different facts.\n\n" +
        `${title ? `Title: ${title}\n` : ""}Passage:\n${context}\n\nReply as JSON: {"pairs": [{"question": "...", "answer": "..."}]}.`,
    },
  ];
}

export default defineGraph({
  name: "qa-from-documents",
  description: "Documents -> token chunks with overlap -> grounded question-answer pairs -> grounding judge",
  defaults,
  async build(options, env) {
    if (!Number.isInteger(options.chunkTokens) || options.chunkTokens < 8) throw new ConfigError(`qa-from-documents: chunkTokens must be an integer >= 8, got ${options.chunkTokens}`);
    if (!Number.isInteger(options.overlapTokens) || options.overlapTokens < 0 || options.overlapTokens >= options.chunkTokens) {
      throw new ConfigError(`qa-from-documents: overlapTokens must be an integer in [0, chunkTokens), got ${options.overlapTokens}`);
    }
    if (!Number.isInteger(options.questionsPerChunk) || options.questionsPerChunk < 1) {
      throw new ConfigError(`qa-from-documents: questionsPerChunk must be a positive integer, got ${options.questionsPerChunk}`);
    }
    const source = firstRecords(await openSource(options.input), options.count);
    const endpoint = await openEndpoint(env, { model: options.model || undefined, seed: options.seed, concurrency: options.concurrency, price: options.price });
    const { llm } = endpoint;
    const ask = asker({ llm, parse: Pairs(options.questionsPerChunk), temperature: options.temperature, seed: options.seed, schemaName: "qa_pairs" });

    const chunk = defineFanOut({
      name: "chunk",
      params: { chunkTokens: options.chunkTokens, overlapTokens: options.overlapTokens, model: llm.model },
      reads: [options.textField],
      writes: ["text", "chunk_id", "document_id", "title"],
      expand(sample) {
        const body = text(sample, options.textField);
        if (body.trim().length === 0) return [drop("empty_document")];
        const chunks = chunkByTokens(body, options.chunkTokens, options.overlapTokens, llm.model);
        const title = text(sample, options.titleField);
        return chunks.map(
          (piece, index): Child => ({
            data: { document_id: sample.id, title, chunk_id: `${sample.id}#${index}`, chunk_index: index, chunk_tokens: piece.tokens, text: piece.text },
            generation: "same",
            step: { note: `chunk ${index + 1} of ${chunks.length}: words ${piece.firstWord}-${piece.endWord - 1}, ${piece.tokens} tokens` },
          }),
        );
      },
    });

    const generateQa = defineFanOut({
      name: "generate_qa",
      params: { ...ask.params, questionsPerChunk: options.questionsPerChunk },
      reads: ["text", "chunk_id"],
      writes: ["question", "answer", "context"],
      concurrency: llm.concurrency,
      async expand(sample, _state, context, signal) {
        const passage = text(sample, "text");
        const answer = await ask.ask(qaMessages(passage, text(sample, "title"), options.questionsPerChunk), context, signal);
        if (!answer.ok) return [answer.verdict];
        const chunkId = text(sample, "chunk_id");
        return answer.value.pairs.map(
          (pair, index): Child => ({
            data: {
              question: pair.question.trim(),
              answer: pair.answer.trim(),
              context: passage,
              chunk_id: chunkId,
              document_id: sample.data.document_id,
              title: sample.data.title,
            },
            step: { ...answer.step, note: `pair ${index + 1} of ${answer.value.pairs.length} from chunk ${chunkId}` },
          }),
        );
      },
    });

    return {
      sources: [source],
      operators: [
        chunk,
        generateQa,
        rubricJudge({
          llm,
          name: "grounding_judge",
          rubric: GROUNDING_RUBRIC,
          fields: ["context", "question", "answer"],
          threshold: options.threshold,
          scoreKey: "grounding",
          seed: options.seed,
        }),
        exactDedup({ name: "dedup_questions", fields: "question", shared: env.shared }),
      ],
      dispose: () => endpoint.dispose(),
      // Each sample is judged alone; dedup is shared by the workers of a scaled-out run.
      chunkable: true,
    };
  },
});
