import { z } from "zod";
import { ConfigError, defineAsyncMap, drop, stableHash, type Operator, type RunContext, type Sample } from "../../src/index.ts";
import type { ChatMessage, Llm } from "../../src/llm/index.ts";
import { askVerdict, verdictFormat, verdictMessages, verdictStep, checkScale, type JudgeScale } from "./judge-verdict.ts";
import { fieldNames, fieldsParam, fieldText, type TextFields } from "./text-fields.ts";

export { pairwiseJudge, pairwiseMessages, PAIRWISE_JUDGE_DEFAULTS } from "./judge-pairwise.ts";
export type { PairwiseJudgeOptions, PairwiseInput, PairwiseText } from "./judge-pairwise.ts";
export type { JudgeScale } from "./judge-verdict.ts";

export interface RubricJudgeOptions {
  /** Client of the judge model's endpoint (`createLlm`). */
  readonly llm: Llm;
  /** The criteria the judge grades against, in plain words (what a 10 looks like, what a 1 looks like). */
  readonly rubric: string;
  /**
   * Data fields shown to the judge, each under its name as a heading (missing or empty fields are left
   * out), or a function of the sample. Default ["instruction", "input", "output"]. Ignored with `prompt`.
   */
  readonly fields?: TextFields;
  /** Builds the whole prompt instead of `fields`; the verdict format is still enforced by the schema. */
  readonly prompt?: (sample: Sample, rubric: string, scale: JudgeScale) => readonly ChatMessage[];
  /** Lowest score kept. Default 7. */
  readonly threshold?: number;
  /** Default [1, 10]. */
  readonly scale?: JudgeScale;
  /** Operator name in metrics and rejects. Default "rubric_judge". */
  readonly name?: string;
  /** Key of the score in `scores`. Default "judge". */
  readonly scoreKey?: string;
  /** Samples judged at once. Default: the client's concurrency. */
  readonly concurrency?: number;
  /** Default 0: a judge should grade the same sample the same way. */
  readonly temperature?: number;
  /** Default: the server's. */
  readonly maxTokens?: number;
  /** Request seed. Default: the client's. */
  readonly seed?: number;
  /** Fresh requests after a bad answer (refusal, truncation, unreadable JSON) before rejecting. Default 0. */
  readonly retryBadAnswers?: number;
}

export const RUBRIC_JUDGE_DEFAULTS = {
  fields: ["instruction", "input", "output"],
  threshold: 7,
  scale: [1, 10],
  name: "rubric_judge",
  scoreKey: "judge",
  temperature: 0,
  retryBadAnswers: 0,
} as const;

/** The sample as the judge sees it: each named field under a heading, so the judge can tell them apart. */
function renderSample(sample: Sample, fields: TextFields): string {
  if (typeof fields === "function") return fields(sample);
  const names = typeof fields === "string" ? [fields] : fields;
  const parts: string[] = [];
  for (const field of names) {
    const text = fieldText(sample, field);
    if (text.trim().length > 0) parts.push(`### ${field}\n${text}`);
  }
  return parts.join("\n\n");
}

/** The default rubric prompt: criteria, the sample, and how to answer (rationale before score, so it reasons first). */
export function rubricMessages(rubric: string, sampleText: string, scale: JudgeScale = RUBRIC_JUDGE_DEFAULTS.scale): ChatMessage[] {
  const [min, max] = scale;
  return [
    {
      role: "system",
      content:
        "You are a strict, impartial grader of training data for language models. Judge only against the rubric; " +
        "length, style and confidence earn nothing the rubric does not ask for. First explain your judgement in a short " +
        `rationale, then give an integer score from ${min} (fails the rubric) to ${max} (meets it fully). ` +
        'Answer as JSON: {"rationale": string, "score": integer}.',
    },
    { role: "user", content: `Rubric:\n${rubric}\n\nSample to grade:\n${sampleText}` },
  ];
}

/**
 * Grades each sample against a rubric with an LLM judge and keeps those scoring at least `threshold`.
 * The verdict is structured output `{rationale, score}` (integer on `scale`), validated with zod.
 *
 * Reads: `fields` (default instruction, input, output), or what `prompt` reads.
 * Writes: `scores[scoreKey]` (default `scores.judge`); a step with model, prompt hash, tokens, latency and
 * the rationale as its note.
 * Drop reasons: `low_score` (value = score, threshold; message = rationale), `no_text` (nothing to judge),
 * `judge_refusal`, `judge_truncated`, `judge_empty`, `judge_unparseable` (bad answers, with the raw text),
 * `llm_error` (the endpoint failed for good after retries).
 *
 * @example
 * rubricJudge({
 *   llm: createLlm({ model: "gpt-4o-mini" }),
 *   rubric: "The output answers the instruction correctly, completely and without padding.",
 *   threshold: 8,
 * })
 */
export function rubricJudge(options: RubricJudgeOptions): Operator {
  const { llm, rubric } = options;
  if (!llm || typeof llm.chat !== "function") throw new ConfigError("rubricJudge: `llm` must be a client made by createLlm()");
  if (typeof rubric !== "string" || rubric.trim().length === 0) throw new ConfigError("rubricJudge: `rubric` must be non-empty text (the criteria)");
  if (options.prompt !== undefined && typeof options.prompt !== "function") {
    throw new ConfigError("rubricJudge: `prompt` must be a function (sample, rubric, scale) => messages");
  }
  const scale = options.scale ?? RUBRIC_JUDGE_DEFAULTS.scale;
  checkScale("rubricJudge", scale);
  const threshold = options.threshold ?? RUBRIC_JUDGE_DEFAULTS.threshold;
  if (typeof threshold !== "number" || !(threshold >= scale[0] && threshold <= scale[1])) {
    throw new ConfigError(`rubricJudge: threshold must lie on the scale [${scale[0]}, ${scale[1]}], got ${threshold}`);
  }
  const retryBadAnswers = options.retryBadAnswers ?? RUBRIC_JUDGE_DEFAULTS.retryBadAnswers;
  if (!Number.isInteger(retryBadAnswers) || retryBadAnswers < 0) {
    throw new ConfigError(`rubricJudge: retryBadAnswers must be an integer >= 0, got ${retryBadAnswers}`);
  }
  const name = options.name ?? RUBRIC_JUDGE_DEFAULTS.name;
  const scoreKey = options.scoreKey ?? RUBRIC_JUDGE_DEFAULTS.scoreKey;
  const fields = options.fields ?? RUBRIC_JUDGE_DEFAULTS.fields;
  const custom = options.prompt;
  const settings = {
    temperature: options.temperature ?? RUBRIC_JUDGE_DEFAULTS.temperature,
    maxTokens: options.maxTokens,
    seed: options.seed,
    retryBadAnswers,
  };
  const format = verdictFormat(
    llm,
    z.strictObject({ rationale: z.string(), score: z.int().min(scale[0]).max(scale[1]) }),
    "rubric_verdict",
  );

  return defineAsyncMap({
    name,
    version: "1",
    params: {
      model: llm.model,
      rubric,
      fields: custom ? null : fieldsParam(fields),
      prompt: custom ? stableHash(custom.toString()) : null,
      threshold,
      scale: [...scale],
      scoreKey,
      temperature: settings.temperature,
      maxTokens: settings.maxTokens ?? null,
      seed: settings.seed ?? null,
      retryBadAnswers,
      structured: format.structured,
    },
    // "input" is optional in Alpaca-style data, so the default does not demand it of the graph's sources.
    reads: custom ? undefined : options.fields === undefined ? ["instruction", "output"] : fieldNames(fields),
    concurrency: options.concurrency ?? llm.concurrency,
    async map(sample: Sample, _state: undefined, context: RunContext, signal: AbortSignal) {
      let prompt: readonly ChatMessage[];
      if (custom) {
        prompt = custom(sample, rubric, scale);
      } else {
        const text = renderSample(sample, fields);
        if (text.trim().length === 0) return drop("no_text", { message: "the judged fields are empty" });
        prompt = rubricMessages(rubric, text, scale);
      }
      const messages = verdictMessages(format, prompt);
      const answer = await askVerdict(llm, format, messages, settings, context, signal);
      if (!answer.ok) return answer.verdict;
      const { score, rationale } = answer.value;
      if (score < threshold) return drop("low_score", { value: score, threshold, message: rationale });
      const step = verdictStep(answer, stableHash(messages));
      return { scores: { [scoreKey]: score }, step: { ...step, note: rationale } };
    },
  });
}
