import { z } from "zod";
import { ConfigError, defineAsyncMap, drop, stableHash, type Operator, type RunContext, type Sample } from "../../src/index.ts";
import type { ChatMessage, Llm } from "../../src/llm/index.ts";
import { askVerdict, checkScale, verdictFormat, verdictMessages, type JudgeScale, type VerdictAnswer } from "./judge-verdict.ts";
import { fieldText } from "./text-fields.ts";

/** Where a text comes from: a data field, or a function of the sample. */
export type PairwiseText = string | ((sample: Sample) => string);

/** What the prompt shows the judge for one order: `first` and `second` are positions, not responses A and B. */
export interface PairwiseInput {
  readonly criteria: string;
  readonly instruction: string;
  readonly first: string;
  readonly second: string;
  /** Set when scores were asked for: each response also gets an integer score on this scale. */
  readonly scale?: JudgeScale;
}

export interface PairwiseJudgeOptions {
  /** Client of the judge model's endpoint (`createLlm`). */
  readonly llm: Llm;
  /** What makes one response better than the other, in plain words. */
  readonly criteria: string;
  /** The prompt both responses answer. Default field "prompt" (may be empty). */
  readonly instruction?: PairwiseText;
  /** Response A. Default field "response_a". */
  readonly first?: PairwiseText;
  /** Response B. Default field "response_b". */
  readonly second?: PairwiseText;
  /** Builds the prompt for one order; called twice per sample with the responses swapped. Default `pairwiseMessages`. */
  readonly prompt?: (input: PairwiseInput) => readonly ChatMessage[];
  /** Keep samples both orders call a tie (no chosen/rejected written, `scores.<prefix>_tie = 1`). Default false. */
  readonly keepTies?: boolean;
  /** Also ask each verdict for an integer score per response and write `scores.<prefix>_margin`. Default false. */
  readonly scores?: boolean;
  /** Scale of those scores. Default [1, 10]. */
  readonly scale?: JudgeScale;
  /** Field that receives the preferred response. Default "chosen". */
  readonly chosen?: string;
  /** Field that receives the other response. Default "rejected". */
  readonly rejected?: string;
  /** Prefix of the score keys. Default "judge" (`judge_agreement`, `judge_margin`). */
  readonly scorePrefix?: string;
  /** Operator name in metrics and rejects. Default "pairwise_judge". */
  readonly name?: string;
  /** Samples judged at once (each sends two requests). Default: half the client's concurrency, at least 1. */
  readonly concurrency?: number;
  /** Default 0. */
  readonly temperature?: number;
  /** Default: the server's. */
  readonly maxTokens?: number;
  /** Request seed. Default: the client's. */
  readonly seed?: number;
  /** Fresh requests after a bad answer before rejecting, per order. Default 0. */
  readonly retryBadAnswers?: number;
}

export const PAIRWISE_JUDGE_DEFAULTS = {
  instruction: "prompt",
  first: "response_a",
  second: "response_b",
  keepTies: false,
  scores: false,
  scale: [1, 10],
  chosen: "chosen",
  rejected: "rejected",
  scorePrefix: "judge",
  name: "pairwise_judge",
  temperature: 0,
  retryBadAnswers: 0,
} as const;

type Winner = "first" | "second" | "tie";
interface PairVerdict {
  readonly rationale: string;
  readonly first_score?: number;
  readonly second_score?: number;
  readonly winner: Winner;
}

/** The default pairwise prompt: criteria, the prompt, the two responses by position, and how to answer. */
export function pairwiseMessages(input: PairwiseInput): ChatMessage[] {
  const scored = input.scale
    ? ` Also score each response with an integer from ${input.scale[0]} (poor) to ${input.scale[1]} (excellent).`
    : "";
  const shape = input.scale
    ? '{"rationale": string, "first_score": integer, "second_score": integer, "winner": "first" | "second" | "tie"}'
    : '{"rationale": string, "winner": "first" | "second" | "tie"}';
  return [
    {
      role: "system",
      content:
        "You compare two responses to the same prompt and decide which one better meets the criteria. The order in " +
        "which the responses are shown says nothing about their quality, and neither does their length. Explain your " +
        `comparison in a short rationale, then name the winner: "first", "second", or "tie" if neither is better.${scored} ` +
        `Answer as JSON: ${shape}.`,
    },
    {
      role: "user",
      content:
        `Criteria:\n${input.criteria}\n\nPrompt:\n${input.instruction.length > 0 ? input.instruction : "(none)"}\n\n` +
        `First response:\n${input.first}\n\nSecond response:\n${input.second}`,
    },
  ];
}

function reader(source: PairwiseText): (sample: Sample) => string {
  return typeof source === "function" ? source : (sample) => fieldText(sample, source);
}

function sourceParam(source: PairwiseText): string {
  return typeof source === "function" ? `fn:${stableHash(source.toString())}` : source;
}

/** A verdict in terms of the responses: which of A and B won, whatever position each was shown in. */
function unswapped(winner: Winner, swapped: boolean): "a" | "b" | "tie" {
  if (winner === "tie") return "tie";
  return (winner === "first") !== swapped ? "a" : "b";
}

/**
 * Asks an LLM judge which of two responses is better, in both orders (A then B, and B then A) at the same
 * time, and keeps a sample only when the two verdicts agree once the swap is undone: a judge that prefers a
 * position rather than a response is caught here. Writes a DPO pair (`chosen`, `rejected`).
 *
 * Reads: `instruction` (default `prompt`), `first` (default `response_a`), `second` (default `response_b`).
 * Writes: `chosen` and `rejected` (the preferred and the other response), `scores.judge_agreement = 1`,
 * `scores.judge_margin` with `scores: true` (mean score of the chosen response minus the rejected one's, over
 * both orders; for a kept tie, A's minus B's); a step with model, hash of both prompts, both calls' tokens, the
 * slower call's latency, and a JSON note `{"ab": verdict, "ba": verdict}` with both rationales.
 * Drop reasons: `position_bias` (the orders disagree; message and `raw` hold both raw verdicts), `tie` (unless
 * `keepTies`), `missing_response`, `judge_refusal`, `judge_truncated`, `judge_empty`, `judge_unparseable`
 * (message names the order, `raw` holds its text), `llm_error`.
 *
 * @example
 * pairwiseJudge({
 *   llm: createLlm({ model: "gpt-4o" }),
 *   criteria: "Helpful, correct and honest; shorter is better when equally complete.",
 *   instruction: "prompt", first: "response_a", second: "response_b",
 * })
 */
export function pairwiseJudge(options: PairwiseJudgeOptions): Operator {
  const { llm, criteria } = options;
  if (!llm || typeof llm.chat !== "function") throw new ConfigError("pairwiseJudge: `llm` must be a client made by createLlm()");
  if (typeof criteria !== "string" || criteria.trim().length === 0) {
    throw new ConfigError("pairwiseJudge: `criteria` must be non-empty text (what makes a response better)");
  }
  if (options.prompt !== undefined && typeof options.prompt !== "function") {
    throw new ConfigError("pairwiseJudge: `prompt` must be a function (input) => messages");
  }
  const withScores = options.scores ?? PAIRWISE_JUDGE_DEFAULTS.scores;
  const scale = options.scale ?? PAIRWISE_JUDGE_DEFAULTS.scale;
  checkScale("pairwiseJudge", scale);
  const retryBadAnswers = options.retryBadAnswers ?? PAIRWISE_JUDGE_DEFAULTS.retryBadAnswers;
  if (!Number.isInteger(retryBadAnswers) || retryBadAnswers < 0) {
    throw new ConfigError(`pairwiseJudge: retryBadAnswers must be an integer >= 0, got ${retryBadAnswers}`);
  }
  const instructionSource = options.instruction ?? PAIRWISE_JUDGE_DEFAULTS.instruction;
  const firstSource = options.first ?? PAIRWISE_JUDGE_DEFAULTS.first;
  const secondSource = options.second ?? PAIRWISE_JUDGE_DEFAULTS.second;
  const chosenKey = options.chosen ?? PAIRWISE_JUDGE_DEFAULTS.chosen;
  const rejectedKey = options.rejected ?? PAIRWISE_JUDGE_DEFAULTS.rejected;
  if (chosenKey === rejectedKey) throw new ConfigError(`pairwiseJudge: chosen and rejected must be different fields, both are "${chosenKey}"`);
  const prefix = options.scorePrefix ?? PAIRWISE_JUDGE_DEFAULTS.scorePrefix;
  const keepTies = options.keepTies ?? PAIRWISE_JUDGE_DEFAULTS.keepTies;
  const name = options.name ?? PAIRWISE_JUDGE_DEFAULTS.name;
  const template = options.prompt ?? pairwiseMessages;
  const readInstruction = reader(instructionSource);
  const readFirst = reader(firstSource);
  const readSecond = reader(secondSource);
  const settings = {
    temperature: options.temperature ?? PAIRWISE_JUDGE_DEFAULTS.temperature,
    maxTokens: options.maxTokens,
    seed: options.seed,
    retryBadAnswers,
  };
  const score = z.int().min(scale[0]).max(scale[1]);
  const winner = z.enum(["first", "second", "tie"]);
  const schema: z.ZodType<PairVerdict> = withScores
    ? z.strictObject({ rationale: z.string(), first_score: score, second_score: score, winner })
    : z.strictObject({ rationale: z.string(), winner });
  const format = verdictFormat(llm, schema, "pairwise_verdict");

  return defineAsyncMap({
    name,
    version: "1",
    params: {
      model: llm.model,
      criteria,
      instruction: sourceParam(instructionSource),
      first: sourceParam(firstSource),
      second: sourceParam(secondSource),
      prompt: options.prompt ? stableHash(options.prompt.toString()) : null,
      keepTies,
      scores: withScores,
      scale: withScores ? [...scale] : null,
      chosen: chosenKey,
      rejected: rejectedKey,
      scorePrefix: prefix,
      temperature: settings.temperature,
      maxTokens: settings.maxTokens ?? null,
      seed: settings.seed ?? null,
      retryBadAnswers,
      structured: format.structured,
    },
    reads: [instructionSource, firstSource, secondSource].filter((source): source is string => typeof source === "string"),
    writes: [chosenKey, rejectedKey],
    concurrency: options.concurrency ?? Math.max(1, Math.floor(llm.concurrency / 2)),
    async map(sample: Sample, _state: undefined, context: RunContext, signal: AbortSignal) {
      const instruction = readInstruction(sample);
      const a = readFirst(sample);
      const b = readSecond(sample);
      if (a.trim().length === 0 || b.trim().length === 0) {
        return drop("missing_response", { message: `response ${a.trim().length === 0 ? "A" : "B"} is empty` });
      }
      const shown = (first: string, second: string) =>
        verdictMessages(format, template({ criteria, instruction, first, second, ...(withScores ? { scale } : {}) }));
      const messagesAB = shown(a, b);
      const messagesBA = shown(b, a);
      const [ab, ba] = await Promise.all([
        askVerdict(llm, format, messagesAB, settings, context, signal),
        askVerdict(llm, format, messagesBA, settings, context, signal),
      ]);
      for (const [order, outcome] of [["A/B", ab], ["B/A", ba]] as const) {
        if (!outcome.ok) {
          const { verdict } = outcome;
          return { ...verdict, message: `${order} order: ${verdict.message ?? verdict.reason}` };
        }
      }
      const first = ab as VerdictAnswer<PairVerdict>;
      const second = ba as VerdictAnswer<PairVerdict>;
      const pick = unswapped(first.value.winner, false);
      const raw = JSON.stringify({ ab: first.raw, ba: second.raw });
      if (pick !== unswapped(second.value.winner, true)) {
        return drop("position_bias", { message: `A/B order: ${first.raw}; B/A order: ${second.raw}`, raw });
      }
      if (pick === "tie" && !keepTies) {
        return drop("tie", { message: `A/B order: ${first.value.rationale}; B/A order: ${second.value.rationale}`, raw });
      }

      const scores: Record<string, number> = { [`${prefix}_agreement`]: 1 };
      if (withScores) {
        // Undo the swap: in the B/A order the first position holds response B.
        const meanA = (first.value.first_score! + second.value.second_score!) / 2;
        const meanB = (first.value.second_score! + second.value.first_score!) / 2;
        scores[`${prefix}_margin`] = pick === "b" ? meanB - meanA : meanA - meanB;
      }
      if (pick === "tie") scores[`${prefix}_tie`] = 1;
      const data = pick === "tie" ? sample.data : { ...sample.data, [chosenKey]: pick === "a" ? a : b, [rejectedKey]: pick === "a" ? b : a };
      const models = first.result.model === second.result.model ? first.result.model : `${first.result.model},${second.result.model}`;
      return {
        data,
        scores,
        step: {
          model: models,
          promptHash: stableHash([messagesAB, messagesBA]),
          promptTokens: first.result.usage.promptTokens + second.result.usage.promptTokens,
          completionTokens: first.completionTokens + second.completionTokens,
          // The two calls run side by side: the sample waited for the slower one.
          latencyMs: Math.round(Math.max(first.result.latencyMs, second.result.latencyMs)),
          note: JSON.stringify({ ab: first.value, ba: second.value }),
        },
      };
    },
  });
}
