// The UltraFeedback recipe (Cui et al. 2023, OpenBMB/UltraFeedback) as pure parts: which models answer a
// prompt, the principle in each completion's system prompt, the four-aspect rating request and its schema,
// and the binarisation of HuggingFaceH4/ultrafeedback_binarized (best mean vs a random strictly lower one).
// The wording of principles and rubrics is ours, shorter than the paper's.
import { z } from "zod";
import { stableHash, type ChatMessage } from "../../src/index.ts";

/** The aspects UltraFeedback's annotator rates, each 1-5, in the order they are asked. */
export const ASPECTS = ["instruction_following", "honesty", "truthfulness", "helpfulness"] as const;
export type Aspect = (typeof ASPECTS)[number];
export type AspectRatings = Record<Aspect, number>;

/** UltraFeedback's principles, each as one system prompt for the completion model. */
export const PRINCIPLES = {
  helpfulness:
    "You are a helpful assistant. Give an accurate, relevant and complete answer that is useful to the user, and no longer than it needs to be.",
  honesty:
    "You are an honest assistant. Say plainly when you do not know or the question cannot be answered, and never pretend to knowledge you lack.",
  truthfulness:
    "You are a truthful assistant. State only facts you are sure of, do not invent names, numbers or sources, and correct false premises in the question.",
  verbalized_calibration:
    "You are a calibrated assistant. Answer, then say how confident you are in your answer as a percentage, and why.",
} as const;
export type Principle = keyof typeof PRINCIPLES;
export const PRINCIPLE_NAMES = Object.keys(PRINCIPLES) as Principle[];

const RUBRICS: Record<Aspect, string> = {
  instruction_following: "does the response do what the prompt asks, in the form it asks for",
  honesty: "does the response express uncertainty where it should, and refuse only what it cannot answer",
  truthfulness: "is the response free of invented or false facts and of contradictions with the prompt",
  helpfulness: "is the response correct, informative and useful, without needless length or repetition",
};

/** Items in a seeded order that depends on `key`: the same key gives the same order. */
function seededOrder<T>(items: readonly T[], key: unknown): T[] {
  return items
    .map((item, index) => ({ item, rank: stableHash([key, index]) }))
    .sort((x, y) => (x.rank < y.rank ? -1 : x.rank > y.rank ? 1 : 0))
    .map(({ item }) => item);
}

/** One completion slot of a prompt: which model answers, and which round of the cycle (0 unless models are fewer than slots). */
export interface Slot {
  readonly model: string;
  readonly round: number;
}

/**
 * The `count` models that answer a prompt: a seeded sample without replacement from the pool. With fewer
 * models than slots, the shuffled pool is cycled and each further round is its own sampling seed.
 */
export function sampleSlots(models: readonly string[], count: number, key: unknown): Slot[] {
  const pool = seededOrder(models, [key, "models"]);
  return Array.from({ length: count }, (_, i) => ({ model: pool[i % pool.length]!, round: Math.floor(i / pool.length) }));
}

/** The principle of one completion, drawn uniformly (UltraFeedback weights them by source data set). */
export function samplePrinciple(principles: readonly Principle[], key: unknown): Principle {
  return seededOrder(principles, [key, "principle"])[0]!;
}

/** The key of completion `index` in the rating answer. */
export function responseKey(index: number): string {
  return `response_${index + 1}`;
}

const rating = z.number().int().min(1).max(5);
const aspectRatings = z.strictObject(Object.fromEntries(ASPECTS.map((aspect) => [aspect, rating])) as Record<Aspect, typeof rating>);

/** The rating answer for `count` completions: response_1..response_count, each with the four aspects 1-5. */
export function ratingSchema(count: number) {
  return z.strictObject(Object.fromEntries(Array.from({ length: count }, (_, i) => [responseKey(i), aspectRatings])));
}

/** One call rates every completion of a prompt on all four aspects together, so each is rated beside the others. */
export function ratingMessages(prompt: string, completions: readonly string[]): ChatMessage[] {
  const rubric = ASPECTS.map((aspect) => `- ${aspect}: ${RUBRICS[aspect]}`).join("\n");
  const responses = completions.map((text, i) => `<${responseKey(i)}>\n${text}\n</${responseKey(i)}>`).join("\n\n");
  return [
    {
      role: "system",
      content:
        "You are an impartial annotator. Rate each response to the prompt from 1 (poor) to 5 (excellent) on each aspect, " +
        "independently of the other aspects and of the order the responses are shown in.",
    },
    {
      role: "user",
      content:
        `Aspects:\n${rubric}\n\n<prompt>\n${prompt}\n</prompt>\n\n${responses}\n\n` +
        `Answer with ${completions.map((_, i) => responseKey(i)).join(", ")}, each with the four aspects ${ASPECTS.join(", ")}.`,
    },
  ];
}

/** The four ratings of each completion, in completion order, from a rating answer. */
export function ratingsOf(answer: Record<string, AspectRatings>, count: number): AspectRatings[] {
  return Array.from({ length: count }, (_, i) => answer[responseKey(i)]!);
}

export function meanRating(ratings: AspectRatings): number {
  return ASPECTS.reduce((sum, aspect) => sum + ratings[aspect], 0) / ASPECTS.length;
}

export type Binarised =
  | { readonly ok: true; readonly chosen: number; readonly rejected: number }
  | { readonly ok: false; readonly reason: "no_clear_best"; readonly message: string };

/**
 * ultrafeedback_binarized's choice: chosen = the completion with the highest mean rating, rejected = a
 * seeded random one with a strictly lower mean. A tie for best (all-equal included) gives no pair.
 */
export function binarise(means: readonly number[], key: unknown): Binarised {
  const best = Math.max(...means);
  const top = means.flatMap((mean, i) => (mean === best ? [i] : []));
  if (top.length !== 1) {
    return { ok: false, reason: "no_clear_best", message: `responses ${top.map((i) => i + 1).join(", ")} tie for best at ${best}` };
  }
  const lower = means.flatMap((mean, i) => (mean < best ? [i] : []));
  if (lower.length === 0) return { ok: false, reason: "no_clear_best", message: "no response rates below the best" };
  return { ok: true, chosen: top[0]!, rejected: seededOrder(lower, [key, "rejected"])[0]! };
}
