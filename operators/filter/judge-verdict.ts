import { z } from "zod";
import { ConfigError, LlmError, drop, stopsRun, type DropVerdict, type RunContext, type StepExtras } from "../../src/index.ts";
import {
  readAnswer,
  reportLlmMetrics,
  structuredFormat,
  type BadAnswerReason,
  type ChatMessage,
  type ChatRequest,
  type ChatResult,
  type Llm,
  type StructuredFormat,
} from "../../src/llm/index.ts";

/** Lowest and highest score a judge may give, both integers. */
export type JudgeScale = readonly [min: number, max: number];

export function checkScale(operator: string, scale: JudgeScale): void {
  const [min, max] = scale;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min >= max) {
    throw new ConfigError(`${operator}: scale must be two integers [min, max] with min < max, got [${min}, ${max}]`);
  }
}

/** How a judge asks for its verdict, resolved once per operator, with the schema its answer must fit. */
export interface VerdictFormat<T> extends StructuredFormat {
  readonly schema: z.ZodType<T>;
}

/** Request settings a judge shares between its calls. */
export interface VerdictSettings {
  readonly temperature: number;
  readonly maxTokens: number | undefined;
  readonly seed: number | undefined;
  /** Fresh requests (new seed and cache slot) after a bad answer before giving up on it. */
  readonly retryBadAnswers: number;
}

/** A usable verdict with what it cost; `raw` is the answer text it was read from. */
export interface VerdictAnswer<T> {
  readonly ok: true;
  readonly value: T;
  readonly raw: string;
  readonly result: ChatResult;
  readonly completionTokens: number;
  /** Bad answers retried before this one. */
  readonly retries: number;
}
export interface VerdictFailure {
  readonly ok: false;
  readonly verdict: DropVerdict;
}
export type VerdictOutcome<T> = VerdictAnswer<T> | VerdictFailure;

export function verdictFormat<T>(llm: Llm, schema: z.ZodType<T>, name: string): VerdictFormat<T> {
  return { ...structuredFormat(llm, schema, name), schema };
}

/** The messages as sent: in json_object mode the schema travels in a system message, since nothing else carries it. */
export function verdictMessages(format: VerdictFormat<unknown>, messages: readonly ChatMessage[]): ChatMessage[] {
  return format.messages(messages);
}

/** The judges' names for bad answers; a verdict that does not fit its schema is as unusable as one that does not parse. */
const JUDGE_REASONS: Record<BadAnswerReason, string> = {
  refusal: "judge_refusal",
  truncated: "judge_truncated",
  incomplete: "judge_incomplete",
  empty: "judge_empty",
  unparseable: "judge_unparseable",
  schema_mismatch: "judge_unparseable",
};

/** Reads one answer into a verdict, or says what was wrong with it; the raw text always travels along. */
function readVerdict<T>(format: VerdictFormat<T>, result: ChatResult): { value: T; raw: string } | DropVerdict {
  const read = readAnswer(result.choices[0], format.schema);
  if (read.ok) return { value: read.value, raw: read.raw };
  const { reason, raw, message } = read.bad;
  return drop(JUDGE_REASONS[reason], { raw, message: reason === "schema_mismatch" ? `verdict does not fit the schema: ${message}` : message });
}

/**
 * Sends one judging request and reads its verdict, retrying bad answers as `settings` allow. An endpoint
 * that fails for good becomes `llm_error`; an abort (the run stopping) is thrown on as it is.
 */
export async function askVerdict<T>(
  llm: Llm,
  format: VerdictFormat<T>,
  messages: readonly ChatMessage[],
  settings: VerdictSettings,
  context: RunContext,
  signal: AbortSignal,
): Promise<VerdictOutcome<T>> {
  const meter = (delta: Parameters<typeof reportLlmMetrics>[1]) => reportLlmMetrics(context.metrics, delta);
  const base: ChatRequest = {
    messages,
    temperature: settings.temperature,
    response_format: format.responseFormat,
    ...(settings.maxTokens !== undefined ? { max_tokens: settings.maxTokens } : {}),
    ...(settings.seed !== undefined ? { seed: settings.seed } : {}),
  };
  let last: DropVerdict | undefined;
  for (let retry = 0; retry <= settings.retryBadAnswers; retry++) {
    const request: ChatRequest = retry === 0 ? base : { ...base, seed: (settings.seed ?? 0) + 1000 * retry };
    let result: ChatResult;
    try {
      result = await llm.chat(request, {
        signal,
        meter,
        log: (line) => context.log(line),
        ...(retry > 0 ? { cacheIndex: `bad:${retry}` } : {}),
      });
    } catch (error) {
      if (signal.aborted || !(error instanceof LlmError) || stopsRun(error)) throw error;
      return { ok: false, verdict: drop(error.reason, { message: error.message }) };
    }
    const read = readVerdict(format, result);
    if (!("keep" in read)) {
      return { ok: true, value: read.value, raw: read.raw, result, completionTokens: result.usage.completionTokens, retries: retry };
    }
    last = read;
  }
  const retries = settings.retryBadAnswers;
  const note = retries > 0 ? ` (after ${retries} retr${retries === 1 ? "y" : "ies"})` : "";
  return { ok: false, verdict: { ...last!, message: `${last!.message ?? last!.reason}${note}` } };
}

/** The step fields every judge records: model, prompt hash, tokens and latency. */
export function verdictStep(answer: VerdictAnswer<unknown>, promptHash: string): StepExtras {
  return {
    model: answer.result.model,
    promptHash,
    promptTokens: answer.result.usage.promptTokens,
    completionTokens: answer.completionTokens,
    latencyMs: Math.round(answer.result.latencyMs),
  };
}
