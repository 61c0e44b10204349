import type { z } from "zod";
import {
  ConfigError,
  LlmError,
  defineAsyncMap,
  stopsRun,
  drop,
  isDrop,
  stableHash,
  type DropVerdict,
  type Operator,
  type RunContext,
  type Sample,
  type SampleData,
  type StepExtras,
} from "../../src/index.ts";
import {
  isZodSchema,
  readAnswer,
  reportLlmMetrics,
  structuredFormat,
  type AnswerReader,
  type ChatMessage,
  type ChatRequest,
  type ChatResult,
  type Llm,
} from "../../src/llm/index.ts";
import { samplingRequest, type SamplingOptions } from "./sampling.ts";

/** How an answer is read: a zod schema (asked for as structured output) or a function of the text. */
export type AnswerParser<T> = z.ZodType<T> | ((text: string) => T | DropVerdict);

export interface AskOptions<T> extends SamplingOptions {
  /** The client of the endpoint to call (`createLlm`). */
  readonly llm: Llm;
  /** Default: the answer text as it is. */
  readonly parse?: AnswerParser<T>;
  /** Default 0.7. */
  readonly temperature?: number;
  /** Default: the server's. */
  readonly maxTokens?: number;
  /** Request seed. Default: the client's. */
  readonly seed?: number;
  /** Name of the structured-output schema sent to the endpoint. Default "answer". */
  readonly schemaName?: string;
}

export interface LlmMapOptions<T = string> extends AskOptions<T> {
  /** Builds the chat messages for one sample; kept apart from parsing. */
  readonly prompt: (sample: Sample) => readonly ChatMessage[];
  /** Field that receives the parsed answer (the rest of the data is kept), or the sample's new data from it. Default "output". */
  readonly write?: string | ((value: T, sample: Sample) => SampleData);
  /** A note for the step (why this answer, which variant). Default: none. */
  readonly note?: (value: T, sample: Sample) => string | undefined;
  /** Fields the prompt reads, checked when the graph is built. Default: none declared. */
  readonly reads?: readonly string[];
  /** Fields written. Default: `write` when it names a field, else none declared. */
  readonly writes?: readonly string[];
  /** Samples in flight in this operator. Default: the client's concurrency. */
  readonly concurrency?: number;
  /** Operator name in metrics, rejects and steps. Default "llm_map". */
  readonly name?: string;
  /** Further serialisable settings to hash into provenance (a graph's own options). Default: none. */
  readonly params?: Record<string, unknown>;
}

export const LLM_MAP_DEFAULTS = {
  temperature: 0.7,
  schemaName: "answer",
  write: "output",
  name: "llm_map",
} as const;

/** A usable answer with the step fields it earned, or the drop it became. */
export type Answer<T> =
  | { readonly ok: true; readonly value: T; readonly text: string; readonly step: StepExtras }
  | { readonly ok: false; readonly verdict: DropVerdict };

/** One way of asking, resolved once per operator: the response format and the parser. */
export interface Asker<T> {
  ask(messages: readonly ChatMessage[], context: RunContext, signal: AbortSignal): Promise<Answer<T>>;
  /** Serialisable settings, to hash into the calling operator's params. */
  readonly params: Record<string, unknown>;
}

/**
 * One LLM call and its answer, for operators that make their own calls (custom fan-outs, judges inside a
 * graph): the same structured output and bad-answer reasons as `generate`, without an operator around it.
 * A reject keeps the raw answer; an endpoint that fails for good is `llm_error`; an abort is thrown on.
 */
export function asker<T = string>(options: AskOptions<T>): Asker<T> {
  const { llm } = options;
  if (!llm || typeof llm.chat !== "function") throw new ConfigError("asker: `llm` must be a client made by createLlm()");
  const schema = isZodSchema(options.parse) ? (options.parse as z.ZodType<T>) : undefined;
  const parser = typeof options.parse === "function" ? options.parse : undefined;
  const temperature = options.temperature ?? LLM_MAP_DEFAULTS.temperature;
  const sampling = samplingRequest(options, "asker");
  const format = schema ? structuredFormat(llm, schema, options.schemaName ?? LLM_MAP_DEFAULTS.schemaName) : undefined;
  const reader = (schema ?? parser) as AnswerReader<T | DropVerdict> | undefined;

  return {
    params: {
      model: llm.model,
      temperature,
      ...sampling,
      maxTokens: options.maxTokens ?? null,
      seed: options.seed ?? null,
      structured: format?.structured ?? "text",
      schema: format?.jsonSchema ?? null,
      parse: parser ? stableHash(parser.toString()) : null,
    },
    async ask(prompt, context, signal) {
      const messages = format ? format.messages(prompt) : [...prompt];
      const request: ChatRequest = {
        messages,
        temperature,
        ...sampling,
        ...(options.maxTokens !== undefined ? { max_tokens: options.maxTokens } : {}),
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
        ...(format ? { response_format: format.responseFormat } : {}),
      };
      let result: ChatResult;
      try {
        result = await llm.chat(request, {
          signal,
          meter: (delta) => reportLlmMetrics(context.metrics, delta),
          log: (line) => context.log(line),
        });
      } catch (error) {
        if (signal.aborted || !(error instanceof LlmError) || stopsRun(error)) throw error;
        return { ok: false, verdict: drop(error.reason, { message: error.message }) };
      }
      const read = readAnswer(result.choices[0], reader);
      if (!read.ok) return { ok: false, verdict: drop(read.bad.reason, { raw: read.bad.raw, message: read.bad.message }) };
      if (isDrop(read.value)) return { ok: false, verdict: { ...read.value, raw: read.value.raw ?? read.raw } };
      return {
        ok: true,
        value: read.value as T,
        text: read.raw,
        step: {
          model: result.model,
          promptHash: stableHash(messages),
          promptTokens: result.usage.promptTokens,
          completionTokens: result.usage.completionTokens,
          latencyMs: Math.round(result.latencyMs),
          ...(result.cached ? { note: "cached" } : {}),
          ...(result.choices[0]?.reasoning ? { reasoning: result.choices[0].reasoning } : {}),
        },
      };
    },
  };
}

/**
 * Annotates each sample with one LLM call (a label, a translation back, a reply): a map, so the sample
 * keeps its id and depth; `generate` is for answers that become new samples.
 *
 * Reads: `reads` (whatever `prompt` reads). Writes: `write` (default `output`), and a step with model,
 * prompt hash, tokens and latency.
 * Drop reasons: `refusal`, `truncated` (finish_reason "length"), `empty`, `unparseable`, `schema_mismatch`
 * (message names the path), a parser's own reasons, `llm_error` (failed for good after retries). Every bad
 * answer keeps its text in `raw`.
 *
 * @example
 * llmMap({
 *   llm,
 *   name: "topic_label",
 *   prompt: (s) => [{ role: "user", content: `Name the topic of this text in one word:\n${s.data.text}` }],
 *   parse: z.object({ topic: z.string() }),
 *   write: (parsed, s) => ({ ...s.data, topic: parsed.topic }),
 *   reads: ["text"],
 *   writes: ["topic"],
 * })
 */
export function llmMap<T = string>(options: LlmMapOptions<T>): Operator {
  const { prompt } = options;
  if (typeof prompt !== "function") throw new ConfigError("llmMap: `prompt` must be a function (sample) => messages");
  const ask = asker(options);
  const write = options.write ?? LLM_MAP_DEFAULTS.write;
  const writeData = (value: T, sample: Sample): SampleData =>
    typeof write === "string" ? { ...sample.data, [write]: value } : write(value, sample);
  return defineAsyncMap({
    name: options.name ?? LLM_MAP_DEFAULTS.name,
    version: "1",
    params: {
      ...ask.params,
      prompt: stableHash(prompt.toString()),
      write: typeof write === "string" ? write : stableHash(write.toString()),
      ...options.params,
    },
    reads: options.reads,
    writes: options.writes ?? (typeof write === "string" ? [write] : undefined),
    concurrency: options.concurrency ?? options.llm.concurrency,
    async map(sample, _state, context, signal) {
      const answer = await ask.ask(prompt(sample), context, signal);
      if (!answer.ok) return answer.verdict;
      const note = options.note?.(answer.value, sample);
      const step = note ? { ...answer.step, note: answer.step.note ? `${note}; ${answer.step.note}` : note } : answer.step;
      return { data: writeData(answer.value, sample), step };
    },
  });
}
