import { z } from "zod";
import {
  ConfigError,
  LlmError,
  defineFanOut,
  stopsRun,
  drop,
  isDrop,
  stableHash,
  type Child,
  type DropVerdict,
  type Operator,
  type RunContext,
  type Sample,
  type SampleData,
} from "../../src/index.ts";
import {
  isZodSchema,
  readAnswer,
  reportLlmMetrics,
  structuredFormat,
  type BadAnswer,
  type ChatChoice,
  type ChatMessage,
  type ChatRequest,
  type ChatResult,
  type Llm,
} from "../../src/llm/index.ts";
import { samplingRequest, type SamplingOptions } from "./sampling.ts";

/** Turns a parsed answer into data: the sample's data with the answer written to a field, or anything. */
export type GenerateWrite<T> = string | ((parsed: T, sample: Sample) => SampleData);

/** Reads an answer: the value to write, or a DropVerdict (reason and details) when the answer is unusable. */
export type GenerateParser<T> = (text: string, sample: Sample) => T | DropVerdict;

export interface GenerateOptions<T = unknown> extends SamplingOptions {
  /** The client of the endpoint to call (`createLlm`). */
  readonly llm: Llm;
  /** Builds the chat messages for one sample; kept apart from parsing. */
  readonly prompt: (sample: Sample) => readonly ChatMessage[];
  /**
   * A zod schema: the answer is requested as structured output (json_schema when `llm.supportsJsonSchema`,
   * else json_object with the schema in the prompt) and validated; or a function that reads the text.
   * Default: the answer text as it is.
   */
  readonly parse?: z.ZodType<T> | GenerateParser<T>;
  /** Completions per sample; each becomes its own sample. Default 1. */
  readonly n?: number;
  /** Default 0.7; `topP` and the penalties (SamplingOptions) are sent only when set. */
  readonly temperature?: number;
  /** Default: the server's. */
  readonly maxTokens?: number;
  /** Field that receives the parsed answer (the rest of the data is kept), or a function. Default "output". */
  readonly write?: GenerateWrite<T>;
  /** Fresh requests (new seed and cache slot) for a bad answer before rejecting it. Default 0. */
  readonly retryBadAnswers?: number;
  /** Samples in flight in this operator. Default: the client's concurrency. */
  readonly concurrency?: number;
  /** Operator name in ids, metrics and rejects. Default "generate". */
  readonly name?: string;
  /** Request seed; a retry after a bad answer uses seed + 1000 * retry + choice. Default: the client's. */
  readonly seed?: number;
  /** Name of the structured-output schema sent to the endpoint. Default "answer". */
  readonly schemaName?: string;
  /** One repair request for JSON that no lenient reading can parse. Default true. */
  readonly repair?: boolean;
}

export const GENERATE_DEFAULTS = {
  n: 1,
  temperature: 0.7,
  write: "output",
  retryBadAnswers: 0,
  name: "generate",
  schemaName: "answer",
  repair: true,
} as const;

/** Why an answer could not be used; the raw text always travels with it. */
interface Bad {
  readonly bad: true;
  readonly reason: string;
  readonly raw: string;
  readonly message?: string;
  readonly details?: Omit<DropVerdict, "keep" | "reason" | "raw" | "message">;
}
interface Good {
  readonly bad: false;
  readonly value: unknown;
  readonly completionTokens: number;
  readonly latencyMs: number;
  readonly repaired: boolean;
  /** The model's chain of thought: kept in the step record, never in the data. */
  readonly reasoning?: string;
}

/**
 * Asks an LLM for completions of a prompt built from each sample, and turns every completion into a new
 * sample (n completions fan out into n samples with ids from parent id + operator + index).
 *
 * Reads: whatever `prompt` reads. Writes: `write` (default `output`), and a step with model, prompt hash,
 * tokens and latency.
 * Drop reasons: `refusal`, `truncated` (finish_reason "length"), `empty`, `unparseable` (after a lenient
 * reading and one repair request), `schema_mismatch` (message names the path), a parser's own reasons,
 * `llm_error` (failed for good after retries). Every bad answer keeps its text in `raw`.
 *
 * @example
 * generate({
 *   llm,
 *   prompt: (s) => [{ role: "user", content: `Answer briefly: ${s.data.question}` }],
 *   parse: z.object({ answer: z.string() }),
 *   write: (parsed, s) => ({ ...s.data, answer: parsed.answer }),
 *   n: 2,
 * })
 */
export function generate<T = string>(options: GenerateOptions<T>): Operator {
  const { llm, prompt } = options;
  if (!llm || typeof llm.chat !== "function") throw new ConfigError("generate: `llm` must be a client made by createLlm()");
  if (typeof prompt !== "function") throw new ConfigError("generate: `prompt` must be a function (sample) => messages");
  const n = options.n ?? GENERATE_DEFAULTS.n;
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`generate: n must be an integer >= 1, got ${n}`);
  const retryBadAnswers = options.retryBadAnswers ?? GENERATE_DEFAULTS.retryBadAnswers;
  if (!Number.isInteger(retryBadAnswers) || retryBadAnswers < 0) {
    throw new ConfigError(`generate: retryBadAnswers must be an integer >= 0, got ${retryBadAnswers}`);
  }
  const name = options.name ?? GENERATE_DEFAULTS.name;
  const temperature = options.temperature ?? GENERATE_DEFAULTS.temperature;
  const sampling = samplingRequest(options, "generate");
  const write = options.write ?? (GENERATE_DEFAULTS.write as GenerateWrite<T>);
  const repair = options.repair ?? GENERATE_DEFAULTS.repair;
  const schemaName = options.schemaName ?? GENERATE_DEFAULTS.schemaName;
  const schema = isZodSchema(options.parse) ? (options.parse as z.ZodType<T>) : undefined;
  const parser = typeof options.parse === "function" ? (options.parse as GenerateParser<T>) : undefined;
  const format = schema ? structuredFormat(llm, schema, schemaName) : undefined;
  const structured = format?.structured ?? "text";
  const jsonSchema = format?.jsonSchema;
  const responseFormat = format?.responseFormat;

  const messagesFor = (sample: Sample): ChatMessage[] => (format ? format.messages(prompt(sample)) : [...prompt(sample)]);

  const writeData = (value: unknown, sample: Sample): SampleData =>
    typeof write === "string" ? { ...sample.data, [write]: value } : write(value as T, sample);

  return defineFanOut({
    name,
    version: "1",
    params: {
      model: llm.model,
      temperature,
      ...sampling,
      n,
      maxTokens: options.maxTokens ?? null,
      seed: options.seed ?? null,
      retryBadAnswers,
      structured,
      schema: jsonSchema ?? null,
      parse: parser ? stableHash(parser.toString()) : null,
      prompt: stableHash(prompt.toString()),
      write: typeof write === "string" ? write : stableHash(write.toString()),
      repair,
    },
    writes: typeof write === "string" ? [write] : undefined,
    concurrency: options.concurrency ?? llm.concurrency,
    async expand(sample: Sample, _state: undefined, context: RunContext, signal: AbortSignal) {
      const messages = messagesFor(sample);
      const promptHash = stableHash(messages);
      const meter = (delta: Parameters<typeof reportLlmMetrics>[1]) => reportLlmMetrics(context.metrics, delta);
      const base: ChatRequest = {
        messages,
        temperature,
        ...sampling,
        ...(options.maxTokens !== undefined ? { max_tokens: options.maxTokens } : {}),
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
        ...(responseFormat ? { response_format: responseFormat } : {}),
      };
      const call = (request: ChatRequest, cacheIndex?: string) =>
        llm.chat(request, { signal, meter, log: (line) => context.log(line), ...(cacheIndex ? { cacheIndex } : {}) });

      /** Asks once for a fix of JSON that no lenient reading could parse; the reject keeps the first text. */
      const repairJson = async (first: BadAnswer, choice: number, retry: number): Promise<{ value: unknown } | Bad> => {
        const fix: ChatRequest = {
          ...base,
          n: 1,
          messages: [
            ...messages,
            { role: "assistant", content: first.raw },
            { role: "user", content: `That was not valid JSON (${first.message}). Reply with only the corrected JSON object, nothing else.` },
          ],
        };
        const fixed = await call(fix, `repair:${choice}:${retry}`);
        const second = readAnswer(fixed.choices[0], schema);
        if (second.ok) return { value: second.value };
        if (second.bad.reason === "schema_mismatch") return { bad: true, reason: "schema_mismatch", raw: first.raw, message: second.bad.message };
        return { bad: true, reason: "unparseable", raw: first.raw, message: `${first.message}; repair failed: ${second.bad.message}` };
      };

      const reader = schema ?? (parser ? (text: string) => parser(text, sample) : undefined);
      const judge = async (choice: ChatChoice | undefined, result: ChatResult, index: number, retry: number): Promise<Good | Bad> => {
        if (!choice) return { bad: true, reason: "empty", raw: "", message: `the endpoint returned ${result.choices.length} of ${n} choices` };
        const good = (value: unknown, repaired: boolean): Good => ({
          bad: false,
          value,
          completionTokens: choice.completionTokens,
          latencyMs: result.latencyMs,
          repaired,
          ...(choice.reasoning ? { reasoning: choice.reasoning } : {}),
        });
        const read = readAnswer<unknown>(choice, reader);
        if (!read.ok) {
          if (!(schema && repair && read.bad.reason === "unparseable")) return { bad: true, ...read.bad };
          const fixed = await repairJson(read.bad, index, retry);
          return "bad" in fixed ? fixed : good(fixed.value, true);
        }
        if (isDrop(read.value)) {
          const { keep: _keep, reason, raw: ownRaw, message, ...details } = read.value;
          return { bad: true, reason, raw: ownRaw ?? read.raw, ...(message !== undefined ? { message } : {}), details };
        }
        return good(read.value, false);
      };

      const failed = (error: unknown): DropVerdict => {
        // An endpoint that cannot serve the run (EndpointError) is no verdict on the sample: it stops the run.
        if (error instanceof LlmError && !stopsRun(error)) return drop(error.reason, { message: error.message });
        throw error;
      };

      let first: ChatResult;
      try {
        first = await call({ ...base, n });
      } catch (error) {
        if (signal.aborted) throw error;
        const verdict = failed(error);
        return Array.from({ length: n }, () => verdict);
      }

      const outcomes = await Promise.all(
        Array.from({ length: n }, async (_, index): Promise<Child | DropVerdict> => {
          let result = first;
          let verdict: Good | Bad;
          let retry = 0;
          try {
            verdict = await judge(first.choices[index], first, index, 0);
            while (verdict.bad && retry < retryBadAnswers) {
              retry++;
              const seed = (options.seed ?? 0) + 1000 * retry + index;
              result = await call({ ...base, n: 1, seed }, `bad:${index}:${retry}`);
              verdict = await judge(result.choices[0], result, index, retry);
            }
          } catch (error) {
            if (signal.aborted) throw error;
            return failed(error);
          }
          if (verdict.bad) {
            const note = retry > 0 ? ` (after ${retry} retr${retry === 1 ? "y" : "ies"})` : "";
            return drop(verdict.reason, {
              ...verdict.details,
              raw: verdict.raw,
              ...(verdict.message !== undefined || note ? { message: `${verdict.message ?? verdict.reason}${note}` } : {}),
            });
          }
          const notes = [retry > 0 ? `bad answer retries: ${retry}` : "", verdict.repaired ? "json repaired" : "", result.cached ? "cached" : ""].filter(Boolean);
          return {
            data: writeData(verdict.value, sample),
            step: {
              model: result.model,
              promptHash,
              promptTokens: result.usage.promptTokens,
              completionTokens: verdict.completionTokens,
              latencyMs: Math.round(verdict.latencyMs),
              ...(notes.length > 0 ? { note: notes.join("; ") } : {}),
              ...(verdict.reasoning ? { reasoning: verdict.reasoning } : {}),
            },
          };
        }),
      );
      return outcomes;
    },
  });
}
