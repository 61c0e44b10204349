import { z } from "zod";
import { ConfigError, LlmError, drop, type DropVerdict, type RunContext, type StepExtras } from "../../src/index.ts";
import {
  extractJson,
  looksLikeRefusal,
  reportLlmMetrics,
  type ChatMessage,
  type ChatRequest,
  type ChatResult,
  type Llm,
  type ResponseFormat,
} from "../../src/llm/index.ts";

/** Lowest and highest score a judge may give, both integers. */
export type JudgeScale = readonly [min: number, max: number];

export function checkScale(operator: string, scale: JudgeScale): void {
  const [min, max] = scale;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min >= max) {
    throw new ConfigError(`${operator}: scale must be two integers [min, max] with min < max, got [${min}, ${max}]`);
  }
}

/**
 * How a judge asks for its verdict, resolved once per operator: json_schema structured output when the
 * endpoint honours it, else json_object with the schema written into a system message.
 */
export interface VerdictFormat<T> {
  readonly schema: z.ZodType<T>;
  readonly jsonSchema: Record<string, unknown>;
  readonly structured: "json_schema" | "json_object";
  readonly responseFormat: ResponseFormat;
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

/** Schemas whose objects list every property as required and allow no others are the ones strict mode accepts. */
function strictCompatible(node: unknown): boolean {
  if (Array.isArray(node)) return node.every(strictCompatible);
  if (!node || typeof node !== "object") return true;
  const schema = node as Record<string, unknown>;
  if (schema.properties && typeof schema.properties === "object") {
    const keys = Object.keys(schema.properties);
    const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
    if (schema.additionalProperties !== false || !keys.every((key) => required.has(key))) return false;
  }
  return Object.values(schema).every(strictCompatible);
}

export function verdictFormat<T>(llm: Llm, schema: z.ZodType<T>, name: string): VerdictFormat<T> {
  const { $schema: _ignored, ...jsonSchema } = z.toJSONSchema(schema, { io: "input" }) as Record<string, unknown>;
  const structured = llm.supportsJsonSchema ? "json_schema" : "json_object";
  const responseFormat: ResponseFormat =
    structured === "json_schema"
      ? { type: "json_schema", json_schema: { name, schema: jsonSchema, strict: strictCompatible(jsonSchema) } }
      : { type: "json_object" };
  return { schema, jsonSchema, structured, responseFormat };
}

/** The messages as sent: in json_object mode the schema travels in a system message, since nothing else carries it. */
export function verdictMessages(format: VerdictFormat<unknown>, messages: readonly ChatMessage[]): ChatMessage[] {
  if (format.structured === "json_schema") return [...messages];
  const instruction = `Reply with a single JSON object and nothing else. It must satisfy this JSON schema:\n${JSON.stringify(format.jsonSchema)}`;
  return [{ role: "system", content: instruction }, ...messages];
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
}

/** Reads one answer into a verdict, or says what was wrong with it; the raw text always travels along. */
function readAnswer<T>(format: VerdictFormat<T>, result: ChatResult): { value: T; raw: string } | DropVerdict {
  const choice = result.choices[0];
  if (!choice) return drop("judge_empty", { raw: "", message: "the endpoint returned no choice" });
  const raw = choice.text;
  if (choice.refusal) return drop("judge_refusal", { raw: choice.refusal, message: "the judge declined (refusal field)" });
  // A JSON answer may quote a refusal inside its rationale; only plain text that opens with one is a refusal.
  if (!/^\s*[[{]/.test(raw) && looksLikeRefusal(raw)) return drop("judge_refusal", { raw, message: "the judge declined" });
  if (choice.finishReason === "length") return drop("judge_truncated", { raw, message: "finish_reason: length" });
  if (raw.trim().length === 0) return drop("judge_empty", { raw, message: "the judge returned no text" });
  const json = extractJson(raw);
  if (!json) return drop("judge_unparseable", { raw, message: "no JSON object in the answer" });
  const checked = format.schema.safeParse(json.value);
  if (!checked.success) return drop("judge_unparseable", { raw, message: `verdict does not fit the schema: ${describeIssues(checked.error)}` });
  return { value: checked.data, raw };
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
      if (signal.aborted || !(error instanceof LlmError)) throw error;
      return { ok: false, verdict: drop("llm_error", { message: error.message }) };
    }
    const read = readAnswer(format, result);
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
